"""Encoding splits with a trained model and scoring them: what the trainer reports after training.

- Query codes: ``sign(codes)`` of the model in eval mode on the query split (eval transform, dataset order).
- Database codes per ``recipe.eval.database``: ``"learned"`` takes the protocol's learned matrix
  (``protocol.database_codes()``, ADSH's ``B``; its rows are the *training* split, so its labels are the
  training split's), ``"label"`` the codes a label-derived protocol assigns to the training items (same
  rows, ``protocol.database = "label"``), ``"encoded"`` runs the database split through the network.
- A dataset split into seen and unseen classes is scored under the four open-set protocols
  (:func:`evaluate_data` -> :func:`hashkit.training.open_set_eval.evaluate_open_set`).
- ``recipe.eval.descriptor``: the real-valued descriptor (aggregation output) of query and database, ranked
  by cosine similarity.

Each database kind gives one result dict: the ``[eval] metrics`` components merged
(:mod:`hashkit.evaluation.scoring`).
"""

from __future__ import annotations

from typing import Any, Callable

import attrs
import torch
from torch import Tensor, nn

from hashkit.codes.binarize import binarize
from hashkit.errors import ContractError
from hashkit.interfaces import RetrievalData, RetrievalProblem, Split
from hashkit.recipe.schema import Recipe


@attrs.define
class Encoded:
    """Codes ``(n, L)`` float ±1 (``None`` without hash head), descriptors ``(n, D)`` (when asked), labels."""

    labels: Tensor
    codes: Tensor | None = None
    descriptors: Tensor | None = None


def _loader(split: Split, recipe: Recipe, limit: int):
    from torch.utils.data import DataLoader, Subset

    from hashkit.data.image_dataset import ImageDataset
    from hashkit.data.transforms import build_transform

    dataset = ImageDataset(split, build_transform(recipe.data.eval_transform),
                           skip_bad_images=recipe.data.skip_bad_images)
    if limit and limit < len(dataset):
        dataset = Subset(dataset, range(limit))
    return DataLoader(dataset, batch_size=recipe.data.eval_batch_size, shuffle=False,
                      num_workers=recipe.data.num_workers)


@torch.no_grad()
def embed_items(model: nn.Module, split: Split, indices: Tensor, recipe: Recipe, device: torch.device,
                output: str = "codes") -> Tensor:
    """Relaxed codes ``(n, L)`` (or descriptors ``(n, D)`` without hash head, or with ``output =
    "descriptor"``) of ``split`` items ``indices``, from ``model`` in eval mode with the evaluation transform
    (for protocols that mine with the current model or average its descriptors)."""
    from torch.utils.data import DataLoader, Subset

    from hashkit.data.image_dataset import ImageDataset
    from hashkit.data.transforms import build_transform

    dataset = Subset(ImageDataset(split, build_transform(recipe.data.eval_transform),
                                  skip_bad_images=recipe.data.skip_bad_images), indices.tolist())
    loader = DataLoader(dataset, batch_size=recipe.data.eval_batch_size, shuffle=False,
                        num_workers=recipe.data.num_workers)
    was_training = model.training
    model.eval()
    out_rows = []
    try:
        for images, _, _ in loader:
            out = model(images.to(device))
            rows = out.codes if out.codes is not None and output == "codes" else out.descriptor
            out_rows.append(rows.float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out_rows)


@torch.no_grad()
def encode_split(model: nn.Module, split: Split, recipe: Recipe, device: torch.device, *, limit: int = 0,
                 descriptors: bool = False, progress: bool = False, desc: str = "encode") -> Encoded:
    """Run ``split`` through ``model`` (switched to eval mode for the call, restored after)."""
    from hashkit.progress import progress_bar

    was_training = model.training
    model.eval()
    codes, descs, labels = [], [], []
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(recipe.train.amp)
    try:
        loader = _loader(split, recipe, limit)
        for images, targets, _ in progress_bar(loader, desc=desc, leave=False, enabled=progress, unit="batch"):
            images = images.to(device, non_blocking=True)
            if recipe.train.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                out = model(images)
            if out.codes is not None:
                codes.append(binarize(out.codes.float(), zero_to=getattr(model, "zero_to", "plus_one")).cpu())
            if descriptors:
                descs.append(out.descriptor.float().cpu())
            labels.append(targets.float())
    finally:
        model.train(was_training)
    return Encoded(labels=torch.cat(labels),
                   codes=torch.cat(codes) if codes else None,
                   descriptors=torch.cat(descs) if descs else None)


def recipe_metrics(recipe: Recipe) -> list[tuple[str, Any]]:
    """The metric components ``[eval]`` asks for (:func:`hashkit.evaluation.scoring.metric_set`)."""
    from hashkit.evaluation.scoring import metric_set

    ev = recipe.eval
    return metric_set(ev.metrics, topk=ev.topk, drop_last_item=ev.drop_last_item)


def score_problem(problem: RetrievalProblem, recipe: Recipe, metrics: list[tuple[str, Any]] | None = None
                  ) -> dict[str, Any]:
    """``[eval] metrics`` of one retrieval problem, through the registry (``metrics`` built once by the
    caller with :func:`recipe_metrics`, or here)."""
    from hashkit.evaluation.scoring import score as run_metrics

    return run_metrics(problem, metrics if metrics is not None else recipe_metrics(recipe))


def score(query: Tensor, database: Tensor, query_labels: Tensor, database_labels: Tensor, recipe: Recipe,
          kind: str = "hamming", metrics: list[tuple[str, Any]] | None = None) -> dict[str, Any]:
    """``[eval] metrics`` of one query/database pair (:func:`score_problem`)."""
    problem = RetrievalProblem(query=query, database=database, query_labels=query_labels,
                               database_labels=database_labels, kind=kind)
    return score_problem(problem, recipe, metrics)


PROVIDED_KINDS = ("learned", "label")


def provided_database(kind: str, provided_kind: str, learned: tuple[Tensor, Tensor] | None,
                      recipe: Recipe) -> tuple[Tensor, Tensor]:
    """The protocol's database ``(codes, labels)`` for ``eval.database`` kind ``kind`` (cut to
    ``eval.max_database``); the kind must be the one the protocol provides."""
    check_provided(kind, provided_kind, learned, recipe)
    codes, labels = learned
    limit = recipe.eval.max_database
    return (codes[:limit], labels[:limit]) if limit else (codes, labels)


def check_provided(kind: str, provided_kind: str, learned: Any, recipe: Recipe) -> None:
    """``eval.database`` may name the protocol's own database codes only as the kind the protocol provides."""
    if learned is None:
        raise ContractError(f"eval.database includes {kind!r} but the training protocol {recipe.protocol.name!r} "
                            "provides no database codes (it is an encoded-database protocol)")
    if kind != provided_kind:
        raise ContractError(f"eval.database includes {kind!r} but the training protocol {recipe.protocol.name!r} "
                            f"provides {provided_kind!r} database codes")


@attrs.define
class EvalResult:
    """Scores by database kind (``"learned"``, ``"label"``, ``"encoded"``, ``"descriptor"``) and the codes scored.

    For a seen/unseen split ``scores`` are those of ``seen@seen`` and ``protocols`` holds all four
    (``{protocol: {kind: metrics}}``); it is empty otherwise.
    """

    scores: dict[str, dict[str, Any]]
    codes: dict[str, Tensor]
    protocols: dict[str, dict[str, dict[str, Any]]] = attrs.field(factory=dict)


def evaluate_model(model: nn.Module, recipe: Recipe, *, query: Split, database: Split | None,
                   learned: tuple[Tensor, Tensor] | None, device: torch.device, progress: bool = False,
                   kinds: tuple[str, ...] | None = None, provided_kind: str = "learned",
                   encode: Callable[..., Encoded] = encode_split) -> EvalResult:
    """Score ``model`` with ``query`` against the database kinds of ``recipe.eval.database``.

    ``learned`` is ``(codes (n, L), labels (n, C))`` from the protocol, or ``None`` when it provides none;
    ``provided_kind`` says what they are (``"learned"`` or ``"label"``, the protocol's ``database``);
    ``database`` is the split to encode for ``"encoded"``.
    """
    kinds = tuple(kinds or recipe.eval.database)
    ev = recipe.eval
    metrics = recipe_metrics(recipe)
    real_valued = getattr(model, "hash_head", None) is None
    want_desc = ev.descriptor or real_valued
    q = encode(model, query, recipe, device, limit=ev.max_queries, descriptors=want_desc, progress=progress,
               desc="encode query")
    scores: dict[str, dict[str, Any]] = {}
    codes: dict[str, Tensor] = {"query_labels": q.labels}
    db = None
    if database is not None and ("encoded" in kinds or want_desc):
        db = encode(model, database, recipe, device, limit=ev.max_database, descriptors=want_desc,
                    progress=progress, desc="encode database")
    if not real_valued:
        codes["query"] = q.codes
        for kind in kinds:
            if kind in PROVIDED_KINDS:
                db_codes, db_labels = provided_database(kind, provided_kind, learned, recipe)
                scores[kind] = score(q.codes, db_codes, q.labels, db_labels, recipe, metrics=metrics)
                codes[f"database_{kind}"], codes[f"database_{kind}_labels"] = db_codes, db_labels
            elif kind == "encoded":
                if db is None:
                    raise ContractError("eval.database includes 'encoded' but there is no database split")
                scores["encoded"] = score(q.codes, db.codes, q.labels, db.labels, recipe, metrics=metrics)
                codes["database_encoded"], codes["database_encoded_labels"] = db.codes, db.labels
    if want_desc:
        if db is None:
            raise ContractError("descriptor evaluation needs a database split to encode")
        scores["descriptor"] = score(q.descriptors, db.descriptors, q.labels, db.labels, recipe, kind="cosine",
                                    metrics=metrics)
    return EvalResult(scores=scores, codes=codes)


def evaluate_data(model: nn.Module, recipe: Recipe, data: RetrievalData, *, codes: Tensor | None,
                  provided_kind: str = "learned", train_data: RetrievalData | None = None,
                  device: torch.device, progress: bool = False) -> EvalResult:
    """Score ``model`` on ``data``: query against database, or the four open-set protocols of a seen/unseen split.

    ``codes`` are the training protocol's database codes (rows = the training split of ``train_data``, default
    ``data``; ``train_data`` differs when ``best_val`` carved a validation split out of training), or None.
    """
    train_data = train_data or data
    if data.open_set is None:
        learned = (codes.float(), train_data.split("train").targets.float()) if codes is not None else None
        return evaluate_model(model, recipe, query=data.split("query"), database=data.split("database"),
                              learned=learned, provided_kind=provided_kind, device=device, progress=progress)
    from hashkit.training.open_set_eval import evaluate_open_set

    learned = (codes.float(), train_data.open_set.train_seen.targets.float()) if codes is not None else None
    return evaluate_open_set(model, recipe, data.open_set, learned=learned, provided_kind=provided_kind,
                             device=device, progress=progress)


def headline(scores: dict[str, dict[str, Any]], recipe: Recipe) -> float:
    """The figure used for model selection: mAP (or tie-aware mAP) of the first database kind scored."""
    key = "map_tie_aware" if recipe.eval.ties == "tie_aware" else "map"
    for kind in (*recipe.eval.database, "descriptor"):
        if kind in scores:
            return float(scores[kind][key])
    raise ContractError("nothing was scored")
