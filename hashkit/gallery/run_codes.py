"""The codes a finished run scored, with the images and labels behind every row.

:func:`load_run_codes` reads ``L{bits}/codes.safetensors`` (written by the trainer's final evaluation: query
codes and, per database kind, database codes and labels) for the weights :func:`hashkit.runs.load_run` loads
(``selected.*`` when the run selected a model, else ``last.*``) and pairs each row with its image:

- query rows are the dataset's ``query`` split (its first ``eval.max_queries`` items when that is set);
- ``encoded`` database rows are the ``database`` split;
- ``learned`` database rows (ADSH's ``B``) are the ``train`` split, after the validation carve-out when the
  run used ``train.selection = "best_val"`` (exactly the rows the protocol learned).

A run without the codes file (interrupted before its final evaluation) is encoded again with the model.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from torch import Tensor

from hashkit.errors import CheckpointError
from hashkit.interfaces import RetrievalData, Split

DatabaseKind = Literal["auto", "encoded", "learned", "label"]


@attrs.define
class RunCodes:
    """±1 codes of one code length with their splits (``query`` rows = ``query_split.items[:len(query)]``)."""

    code_length: int
    database_kind: str
    query: Tensor  # (Q, L) float ±1
    query_labels: Tensor  # (Q, C)
    database: Tensor  # (N, L) float ±1
    database_labels: Tensor  # (N, C)
    query_split: Split
    database_split: Split
    class_names: tuple[str, ...]
    #: every database kind the run scored: {kind: (codes, labels)} (for the report's tables and plots)
    kinds: dict[str, tuple[Tensor, Tensor]] = attrs.field(factory=dict)

    def label_name(self, labels: Tensor) -> str:
        """Class names of a multi-hot label row, joined by ``+`` (indices when the dataset has no names)."""
        idx = torch.nonzero(labels > 0).flatten().tolist()
        return "+".join(self.class_names[i] if i < len(self.class_names) else str(i) for i in idx) or "-"


def _training_split(loaded, data: RetrievalData) -> Split:
    recipe = loaded.recipe
    if recipe.train.selection == "best_val":
        from hashkit.training.validation import carve_validation

        data = carve_validation(data, recipe.train.val_fraction, recipe.seed)[0]
    return data.split("train")


def _codes_file(loaded) -> dict[str, Tensor] | None:
    from hashkit.training.checkpoint import load_checkpoint
    from hashkit.training.run_dir import length_dir
    from hashkit.training.selection import CODES

    path = length_dir(loaded.run_dir, loaded.code_length) / CODES
    if not path.is_file():
        return None
    tensors, _ = load_checkpoint(path)
    prefix = "selected." if loaded.which == "selected" and any(k.startswith("selected.") for k in tensors) else "last."
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _encode_again(loaded, data: RetrievalData) -> dict[str, Tensor]:
    from hashkit.training.evaluate import evaluate_model

    learned = None
    if loaded.database_codes is not None:
        learned = (loaded.database_codes.float(), _training_split(loaded, data).targets.float())
    res = evaluate_model(loaded.model, loaded.recipe, query=data.split("query"), database=data.split("database"),
                         learned=learned, provided_kind=loaded.database_source, device=torch.device("cpu"),
                         progress=loaded.recipe.train.progress)
    return res.codes


def load_run_codes(loaded, data: RetrievalData, database: DatabaseKind = "auto") -> RunCodes:
    """Codes of the run ``loaded`` (a :class:`hashkit.runs.LoadedRun`) paired with ``data``'s splits.

    ``database = "auto"`` takes the encoded database when the run scored one, else the protocol's own codes
    (learned or label-derived)."""
    if loaded.code_length is None:
        raise CheckpointError(f"{loaded.run_dir}: a real-valued run (no hash head) has no codes to show")
    codes = _codes_file(loaded)
    if codes is None:
        codes = _encode_again(loaded, data)
    kinds: dict[str, tuple[Tensor, Tensor]] = {}
    for kind in ("encoded", "learned", "label"):
        if f"database_{kind}" in codes:
            kinds[kind] = (codes[f"database_{kind}"].float(), codes[f"database_{kind}_labels"].float())
    if not kinds or "query" not in codes:
        raise CheckpointError(f"{loaded.run_dir}: the run's codes file holds no query and database codes")
    kind = next(iter(kinds)) if database == "auto" else database
    if kind not in kinds:
        raise CheckpointError(f"{loaded.run_dir}: the run scored no {kind!r} database (it has "
                              f"{', '.join(sorted(kinds))})")
    split = data.split("database") if kind == "encoded" else _training_split(loaded, data)
    db_codes, db_labels = kinds[kind]
    return RunCodes(code_length=int(loaded.code_length), database_kind=kind, query=codes["query"].float(),
                    query_labels=codes["query_labels"].float(), database=db_codes, database_labels=db_labels,
                    query_split=data.split("query"), database_split=split, class_names=tuple(data.class_names),
                    kinds=kinds)

