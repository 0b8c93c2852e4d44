"""A text summary of a composed model: components and parameter counts."""

from __future__ import annotations

from torch import nn

from hashkit.model.hashing_model import HashingModel


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def model_summary(model: HashingModel) -> str:
    rows = [("backbone", model.backbone)]
    rows += [(f"attention[{i}]", a) for i, a in enumerate(model.attention)]
    rows.append(("aggregation", model.aggregation))
    if model.hash_head is not None:
        rows.append(("hash_head", model.hash_head))
    lines = ["# model", f"{'role':<16} {'component':<22} {'parameters':>14}"]
    for role, mod in rows:
        name = getattr(mod, "registered_name", type(mod).__name__)
        lines.append(f"{role:<16} {name:<22} {count_parameters(mod):>14,}")
    lines.append(f"{'total':<16} {'':<22} {count_parameters(model):>14,}")
    specs = ", ".join(f"{t} ({model.backbone.stage_specs[t].channels} ch, stride {model.backbone.stage_specs[t].stride})"
                      for t in model.taps)
    lines.append(f"taps: {specs}; attention input: {model.tap}")
    lines.append(f"descriptors: {dict(model.aggregation.descriptor_dims)}")
    if model.code_length:
        lines.append(f"code length: {model.code_length} bits")
    return "\n".join(lines)
