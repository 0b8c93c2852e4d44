"""ONNX export of a model's encoder: normalised images ``(B, 3, crop, crop)`` -> codes, with a dynamic batch.

Graph contract
--------------
- input ``images``: float32 ``(B, 3, crop, crop)``, the output of the recipe's eval transform (RGB, resize,
  centre crop, ``ToTensor``, ``Normalize(mean, std)``; the values are stored in the file's metadata);
- output ``codes``: float32 ``(B, L)`` in ``{-1, +1}``, ``sign`` of the relaxed codes with ``sign(0) = +1``
  (``zero_to = "zero"`` models keep 0), exactly :meth:`HashingModel.encode`;
- output ``relaxed``: float32 ``(B, L)``, the hash head's relaxed codes in ``[-1, 1]``;
- ``B`` is a dynamic dimension (any batch size).

Metadata (``metadata_props``, strings): ``format = "hashkit.onnx_encoder"``, ``hashkit_version``, ``recipe``,
``code_length``, ``crop``, ``resize``, ``mean``, ``std`` (JSON lists), ``zero_to``, ``batch_dependent``
(``"true"`` when a component's eval output depends on its batch-mates, e.g. SEM with ``sigma = "batch"``: the
graph then reproduces that, so encode with the batch size you want the codes for).

The graph is produced by ``torch.onnx.export(..., dynamo=True)`` (torch.export, then onnxscript); models
whose components declare :func:`~hashkit.model.capabilities.onnx_export_blockers` are refused up front, and
any other failure of the exporter becomes one :class:`ExportError` line naming the model's components.
:func:`check_onnx` runs the file with onnxruntime against the PyTorch model; :func:`export_onnx` writes the
file only after that check passed (atomically).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import attrs
import numpy as np
import torch
from torch import Tensor, nn

from hashkit.errors import HashkitError

FORMAT = "hashkit.onnx_encoder"
#: tolerance on the relaxed codes between onnxruntime and PyTorch
RELAXED_ATOL = 1e-4


class ExportError(HashkitError):
    """The model cannot be exported, or the exported graph does not reproduce the PyTorch codes."""


def require_onnx():
    """``(onnx, onnxruntime)``, or an :class:`ExportError` naming the extra to install."""
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401 - torch.onnx's dynamo exporter needs it
    except ImportError as exc:
        raise ExportError(f"ONNX export needs onnx, onnxscript and onnxruntime: pip install 'hashkit[onnx]' "
                          f"({exc})") from None
    return onnx, onnxruntime


class EncoderGraph(nn.Module):
    """The exported function: ``images (B,3,H,W) -> (codes (B,L) ±1, relaxed (B,L))`` of a hashing model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.zero_to = getattr(model, "zero_to", "plus_one")

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        relaxed = self.model(images).codes.float()
        signed = torch.sign(relaxed)
        if self.zero_to == "plus_one":
            signed = torch.where(signed == 0, torch.ones_like(signed), signed)
        return signed, relaxed


@attrs.frozen
class CheckResult:
    """onnxruntime against PyTorch on the same batches."""

    num_images: int
    batch_sizes: tuple[int, ...]
    max_relaxed_diff: float
    binary_mismatches: int

    @property
    def ok(self) -> bool:
        return self.max_relaxed_diff <= RELAXED_ATOL and self.binary_mismatches == 0

    def describe(self) -> str:
        verdict = "binary codes identical" if self.binary_mismatches == 0 else \
            f"{self.binary_mismatches} binary code bits differ"
        return (f"onnxruntime vs PyTorch on {self.num_images} images (batch sizes "
                f"{', '.join(map(str, self.batch_sizes))}): relaxed codes max |diff| {self.max_relaxed_diff:.2e} "
                f"(tolerance {RELAXED_ATOL:g}), {verdict}")


def _model_label(model: nn.Module) -> str:
    parts = [getattr(model, "backbone", None), *getattr(model, "attention", ()), getattr(model, "aggregation", None),
             getattr(model, "hash_head", None)]
    return " -> ".join(getattr(p, "registered_name", None) or type(p).__name__ for p in parts if p is not None)


def build_graph(model: nn.Module, crop: int, opset: int | None = None):
    """The ``torch.onnx.ONNXProgram`` of ``model``'s encoder (model on the CPU, eval mode)."""
    import warnings

    from hashkit.model.capabilities import onnx_export_blockers

    require_onnx()
    if getattr(model, "hash_head", "missing") is None:
        raise ExportError("the model has no hash head (a real-valued descriptor model): nothing to export as codes")
    blockers = onnx_export_blockers(model)
    if blockers:
        raise ExportError(f"model {_model_label(model)} cannot be exported to ONNX: {'; '.join(blockers)}")
    graph = EncoderGraph(model.cpu().eval()).eval()
    example = torch.zeros(2, 3, crop, crop)
    example[1].normal_(generator=torch.Generator().manual_seed(0))  # two different images: no degenerate batch
    kwargs = {"opset_version": opset} if opset else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                graph, (example,), dynamo=True, input_names=["images"], output_names=["codes", "relaxed"],
                dynamic_shapes={"images": {0: torch.export.Dim("batch")}}, verbose=False, **kwargs)
    except Exception as exc:  # noqa: BLE001 - torch.export / onnxscript raise many types; one line for the user
        summary = " ".join(str(exc).split())
        at = summary.find("Exception summary")
        detail = summary[at + len("Exception summary"):] if at >= 0 else summary
        raise ExportError(f"torch.onnx could not export model {_model_label(model)}: {type(exc).__name__}: "
                          f"{detail.strip(' :#')[:400]}") from None
    return program


def metadata(model: nn.Module, section, recipe_name: str) -> dict[str, str]:
    """The ``metadata_props`` written into the file (see the module docstring)."""
    from hashkit import __version__
    from hashkit.model.capabilities import batch_dependent_components

    return {
        "format": FORMAT, "hashkit_version": __version__, "recipe": recipe_name,
        "code_length": str(model.code_length), "crop": str(section.crop), "resize": str(section.resize),
        "mean": json.dumps(list(section.mean)), "std": json.dumps(list(section.std)),
        "zero_to": getattr(model, "zero_to", "plus_one"),
        "batch_dependent": "true" if batch_dependent_components(model) else "false",
    }


def check_onnx(model_bytes: bytes, model: nn.Module, images: Tensor, batch_sizes: Sequence[int] = (1, 16)
               ) -> CheckResult:
    """Run the serialised graph with onnxruntime and the PyTorch model on the same batches of ``images``."""
    _, ort = require_onnx()
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    model = model.cpu().eval()
    graph = EncoderGraph(model)
    diff, mismatches, used = 0.0, 0, []
    for bs in batch_sizes:
        bs = max(1, min(int(bs), len(images)))
        if bs in used:
            continue
        used.append(bs)
        for start in range(0, len(images), bs):
            batch = images[start:start + bs]
            with torch.no_grad():
                ref_codes, ref_relaxed = graph(batch)
            codes, relaxed = session.run(["codes", "relaxed"], {"images": batch.numpy()})
            diff = max(diff, float(np.abs(relaxed - ref_relaxed.numpy()).max()))
            mismatches += int((codes != ref_codes.numpy()).sum())
    return CheckResult(len(images), tuple(used), diff, mismatches)


def export_onnx(model: nn.Module, path: str | Path, *, section, recipe_name: str, check_images: Tensor | None,
                batch_sizes: Sequence[int] = (1, 16), opset: int | None = None) -> CheckResult | None:
    """Export, check against ``check_images`` (unless ``None``) and write ``path`` atomically.

    ``section`` is the recipe's eval transform section (its crop is the graph's input size). Raises
    :class:`ExportError` when the model cannot be exported or the check fails (nothing is written then)."""
    from hashkit.atomic_io import atomic_write_bytes

    program = build_graph(model, section.crop, opset)
    proto = program.model_proto
    for key, value in metadata(model, section, recipe_name).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    data = proto.SerializeToString()
    result = None
    if check_images is not None:
        result = check_onnx(data, model, check_images, batch_sizes)
        if not result.ok:
            raise ExportError(f"{path}: not written, the exported graph does not reproduce the model: "
                              f"{result.describe()}")
    atomic_write_bytes(Path(path), data)
    return result


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an exported file."""
    onnx, _ = require_onnx()
    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such ONNX file")
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
