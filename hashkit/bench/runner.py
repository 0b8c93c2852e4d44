"""``run_bench``: train every cell of a bench (or of one shard of it) that is not done yet.

- **Resumable**: a done cell (``cell.json``) is never rerun; an interrupted one continues from its last
  checkpoint (``hashkit train --resume`` semantics: the same weights, codes and metrics as an uninterrupted
  run); a cell killed before its run directory held a recipe starts again.
- **Shards**: ``shard = (i, n)`` takes cells ``i-1, i-1+n, i-1+2n, ...`` of the bench's cell order, so ``n``
  processes (GPUs, cluster jobs) cover the bench between them; each cell is locked while it runs, and a cell
  locked by another process is skipped, so shards (even overlapping ones) can share one output folder.
- **Guarded**: a cell that was started or finished with other settings (another recipe content, seed or code
  length under the same name) is refused with one line instead of being mixed into the tables.
- **Progress**: one line per cell on ``log`` — cells done over all shards / total, this cell's time, the
  mean time per cell in this process and the estimated time left for this shard.
- **Failures**: a cell that stops with a user-facing error (a missing dataset, a non-finite loss: a
  :class:`~hashkit.errors.HashkitError`) is reported in one line and the bench goes on with the next cell;
  the failed cell stays unfinished, so the next run retries it. Anything else (a bug) stops the bench.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import attrs

from hashkit.bench import cell_dir as cells
from hashkit.bench.spec import Bench, Cell, recipe_digest
from hashkit.errors import HashkitError
from hashkit.recipe.toml_writer import dumps_value


@attrs.define
class BenchProgress:
    """What a call of :func:`run_bench` did."""

    total: int
    shard_cells: int
    ran: list[str] = attrs.field(factory=list)
    skipped_done: list[str] = attrs.field(factory=list)
    skipped_locked: list[str] = attrs.field(factory=list)
    failed: list[tuple[str, str]] = attrs.field(factory=list)
    seconds: list[float] = attrs.field(factory=list)


def shard_cells(bench: Bench, shard: tuple[int, int]) -> list[Cell]:
    i, n = shard
    return bench.cells()[i - 1::n]


@attrs.frozen
class PreparedCell:
    """A cell with its full ``--set`` list, its validated recipe and its spec (what it computes)."""

    cell: Cell
    overrides: tuple[str, ...]
    recipe: Any
    spec: dict[str, Any]


def prepare(bench: Bench, cell: Cell, extra: tuple[str, ...] = ()) -> PreparedCell:
    """The cell's ``--set`` list (quiet training, the bench's overrides, then the metrics the report draws),
    its recipe loaded with them (a bad recipe or override raises here) and its spec."""
    from hashkit.recipe import load_recipe

    overrides = ["train.progress=false", *cell.overrides, *extra]
    metrics = list(load_recipe(cell.recipe, overrides).raw.get("eval", {}).get("metrics", ["map"]))
    if "pr_curve" not in metrics:
        metrics.append("pr_curve")
    if bench.file.precision_at:
        metrics.append({"name": "precision@k", "k": list(bench.file.precision_at)})
    overrides.append(f"eval.metrics={dumps_value(metrics)}")
    recipe = load_recipe(cell.recipe, overrides)
    if recipe.hash_head is None:
        from hashkit.errors import RecipeError

        raise RecipeError("the recipe has no hash head: hashkit bench tabulates hash codes per code length "
                          "(score real-valued descriptors with `hashkit train`)", file=str(cell.recipe),
                          key="model.hash_head")
    spec = {"dataset": cell.dataset, "method": cell.method, "seed": cell.seed, "code_length": cell.code_length,
            "recipe_digest": recipe_digest(recipe.raw)}
    return PreparedCell(cell=cell, overrides=tuple(overrides), recipe=recipe, spec=spec)


def native_kind(recipe) -> str:
    """The database kind a method is reported under: its protocol's own codes, else the network's (every
    bench recipe has a hash head)."""
    for kind in recipe.eval.database:
        if kind in ("learned", "label"):
            return kind
    return "encoded"


def _pick(result: dict[str, Any], which: str) -> dict[str, dict[str, Any]]:
    if "protocols" in result:
        return result["protocols"][which]
    return {"all": result[which]}


def summarise(prepared: PreparedCell, report: dict[str, Any], run: Path, wall: float, cpu: float) -> dict[str, Any]:
    """The cell's ``cell.json``: its coordinates, the method's database kind, the split, every protocol's
    results of the last and the selected model, timings and the recipe's published numbers."""
    cell, recipe = prepared.cell, prepared.recipe
    res = report["results"][str(cell.code_length)]
    split = cells.read_json(run / "split.json", "split record")
    ev = recipe.eval
    return {
        "format": cells.CELL_FORMAT, "version": cells.CELL_VERSION, "key": cell.key, "index": cell.index,
        "dataset": cell.dataset, "method": cell.method, "seed": cell.seed, "code_length": cell.code_length,
        "recipe": recipe.name, "recipe_file": str(cell.recipe), "overrides": list(prepared.overrides),
        "spec": prepared.spec,
        "dataset_component": report["dataset"], "split": split,
        "seen_fraction": split.get("open_set", {}).get("seen_fraction", 1.0),
        "native": native_kind(recipe), "selection": recipe.train.selection,
        "selected_round": res.get("selected_round"),
        "eval": {"metrics": recipe.raw.get("eval", {}).get("metrics", ["map"]), "topk": list(ev.topk),
                 "drop_last_item": ev.drop_last_item, "ties": ev.ties},
        "results": {"selected": _pick(res, "selected"), "last": _pick(res, "last")},
        "train_time_s": res.get("train_time_s"), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "published": list(recipe.provenance.get("published", [])),
        "run_dir": "run",
    }


def run_cell(out: Path, prepared: PreparedCell, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Train (or resume) one cell and write its ``cell.json``; the caller holds the cell's lock."""
    from hashkit.training import train

    started, cpu_started = time.time(), time.process_time()
    cell = prepared.cell
    cells.check_spec(out, cell, prepared.spec)
    run = cells.run_dir(out, cell)
    if (run / "recipe.toml").is_file():
        report = train(None, run, resume=True, overrides=["train.progress=false", *extra],
                       code_lengths=[cell.code_length], echo=False)
    else:
        if run.exists():  # killed before its recipe was written: nothing to keep
            shutil.rmtree(run)
        report = train(cell.recipe, run, overrides=list(prepared.overrides), code_lengths=[cell.code_length],
                       echo=False)
    summary = summarise(prepared, report, run, time.time() - started, time.process_time() - cpu_started)
    cells.write_json(cells.cell_dir(out, cell) / "cell.json", summary)
    return summary


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


def _count(items, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def write_definition(bench: Bench, out: Path) -> None:
    """``OUT/bench.json``: the bench definition the report reads (labels, order, display options)."""
    cells.write_json(Path(out) / "bench.json", {"format": "hashkit-bench", "name": bench.name,
                                                "file": str(bench.path), "definition": bench.raw})


def run_bench(bench: Bench, out: str | Path, *, shard: tuple[int, int] = (1, 1), extra: tuple[str, ...] = (),
              log: TextIO | None = None) -> BenchProgress:
    """Run every cell of ``shard`` that is not done (module docstring); returns what happened."""
    log = log or sys.stderr
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    everything = bench.cells()
    # a bad recipe or override, or a cell started with other settings, fails now, before hours of training
    prepared = {c.index: prepare(bench, c, extra) for c in everything}
    for c in everything:
        if (cells.cell_dir(out, c) / "spec.json").is_file():
            cells.check_spec(out, c, prepared[c.index].spec)
    write_definition(bench, out)
    mine = shard_cells(bench, shard)
    f = bench.file
    progress = BenchProgress(total=len(everything), shard_cells=len(mine))
    done_before = sum(cells.state(out, c) == "done" for c in mine)
    print(f"hashkit bench {bench.name}: {len(everything)} cells ({_count(f.methods, 'method')} x "
          f"{_count(f.datasets, 'dataset')} x {_count(f.seeds, 'seed')} x {_count(f.code_lengths, 'code length')}) "
          f"in {out}; shard "
          f"{shard[0]}/{shard[1]}: {len(mine)} cells, {done_before} already done", file=log, flush=True)
    for position, cell in enumerate(mine):
        if cells.state(out, cell) == "done":
            progress.skipped_done.append(cell.key)
            continue
        with cells.CellLock(cells.cell_dir(out, cell)) as locked:
            if not locked:
                progress.skipped_locked.append(cell.key)
                print(f"  {cell.describe()}: running in another process, skipped", file=log, flush=True)
                continue
            if cells.state(out, cell) == "done":  # finished by another process meanwhile
                progress.skipped_done.append(cell.key)
                continue
            how = "resumed" if cells.state(out, cell) == "interrupted" else "trained"
            t0 = time.time()
            try:
                summary = run_cell(out, prepared[cell.index], extra)
            except HashkitError as exc:
                progress.failed.append((cell.key, str(exc)))
                print(f"  {cell.describe()}: FAILED after {_duration(time.time() - t0)}: {exc}", file=log, flush=True)
                continue
            seconds = time.time() - t0
        progress.ran.append(cell.key)
        progress.seconds.append(seconds)
        left = sum(cells.state(out, c) != "done" for c in mine[position + 1:])
        mean = sum(progress.seconds) / len(progress.seconds)
        done_all = sum(cells.state(out, c) == "done" for c in everything)
        eta = f"ETA {_duration(mean * left)}" if left else "shard finished"
        print(f"[{done_all}/{len(everything)} done] {cell.describe()}: {how} in {_duration(seconds)} "
              f"(CPU {_duration(summary['cpu_s'])}); "
              f"{_duration(mean)} per cell; {left} left in this shard, {eta}", file=log, flush=True)
    return progress
