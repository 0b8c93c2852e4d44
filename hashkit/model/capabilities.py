"""Optional declarations of components that the core reads outside training (serving, export).

A component (any ``nn.Module`` inside a :class:`~hashkit.model.HashingModel`) may declare:

- ``eval_batch_dependent`` (bool attribute or property, default false): in eval mode the output for one image
  depends on the other images of its batch (SEM with ``sigma = "batch"`` normalises over the batch). The
  search service then encodes every query image alone, and ``hashkit export`` records it in the ONNX file;
- ``onnx_export_blocker()`` (method returning ``str | None``): why this component, as configured, cannot
  be exported to ONNX (e.g. a kNN graph whose neighbour search torch's exporter cannot convert). ``hashkit
  export`` refuses such a model up front with one line naming every blocking component.

Both are read from every submodule, so a component made of sub-components may declare them on either level.
"""

from __future__ import annotations

import re

from torch import nn


def _label(path: str, module: nn.Module) -> str:
    name = getattr(module, "registered_name", None) or type(module).__name__
    where = re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", path)  # attention.0.trunk -> attention[0].trunk
    return f"{where} {name!r}" if where else repr(name)


def batch_dependent_components(model: nn.Module) -> list[str]:
    """Labels (``"attention[0] 'sem'"``) of the submodules whose eval output depends on their batch-mates."""
    return [_label(path, m) for path, m in model.named_modules() if bool(getattr(m, "eval_batch_dependent", False))]


def onnx_export_blockers(model: nn.Module) -> list[str]:
    """``"<component>: <reason>"`` for every submodule that declares it cannot be exported to ONNX."""
    out = []
    for path, m in model.named_modules():
        check = getattr(m, "onnx_export_blocker", None)
        reason = check() if callable(check) else None
        if reason:
            out.append(f"{_label(path, m)}: {reason}")
    return out
