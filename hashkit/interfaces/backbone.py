"""Backbone: image -> named stage feature maps.

Tensor contract
---------------
- input ``x``: float32 (or autocast dtype) ``(B, 3, H, W)``, normalised images.
- ``forward(x, taps)`` returns ``{name: (B, C_name, ceil(H / stride_name), ceil(W / stride_name))}`` for
  every name in ``taps`` (an ordered subset of ``stage_specs``), running the trunk only as deep as the
  deepest requested tap. An unknown tap raises :class:`~hashkit.errors.ContractError`.
- Same outputs in train and eval mode (BatchNorm uses batch statistics in train mode).
- ``stage_specs`` lists, in order, every stage the *trunk* holds, with channels and stride.
- ``extra_stage_specs`` lists stages the backbone can build fresh copies of (``build_stage``) but does not
  hold in its trunk: SEMICON keeps conv1..layer3 in the trunk and builds a layer4 copy per branch.
  ``build_stage(name)`` returns an ``nn.Sequential`` of the stage's blocks, initialised as the recipe says
  (pretrained blocks loaded from the same weights file as the trunk).
- ``stage_builder()`` hands components built after the backbone this capability (all stage specs and fresh
  stage copies) as ``BuildContext.stage_builder``, never the backbone itself.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces.feature_spec import FeatureSpec
from hashkit.interfaces.stage_builder import StageBuilder


class Backbone(nn.Module):
    """Base class of backbones. Subclasses fill ``stage_specs`` and implement ``forward``."""

    stage_specs: dict[str, FeatureSpec]
    extra_stage_specs: dict[str, FeatureSpec] = {}

    def forward(self, x: Tensor, taps: Sequence[str]) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def build_stage(self, name: str) -> nn.Sequential:
        """A fresh copy of stage ``name`` (trunk or extra) as a sequence of blocks."""
        raise ContractError(f"backbone {type(self).__name__} cannot build a copy of stage {name!r}")

    def run_stages(self, x: Tensor, stages: Iterable[tuple[str, nn.Module]], taps: Sequence[str]) -> dict[str, Tensor]:
        """Run ``(name, module)`` stages in order, stopping after the deepest tap; return the taps in order.

        ``stages`` may be lazy, so a trunk is never asked for a stage it stops before.
        """
        self.check_taps(taps)
        wanted = set(taps)
        out: dict[str, Tensor] = {}
        for name, module in stages:
            x = module(x)
            if name in wanted:
                out[name] = x
                if wanted <= out.keys():
                    break
        return {tap: out[tap] for tap in taps}

    def all_stage_specs(self) -> dict[str, FeatureSpec]:
        return {**self.stage_specs, **self.extra_stage_specs}

    def stage_builder(self) -> StageBuilder:
        """Specs of every stage (trunk, then extra) and fresh copies of them, for later components."""
        name = getattr(self, "registered_name", None) or type(self).__name__
        return StageBuilder(backbone=f"backbone {name!r}", specs=self.all_stage_specs(),
                            trunk=tuple(self.stage_specs), make=self.build_stage)

    def check_taps(self, taps: Sequence[str]) -> None:
        for tap in taps:
            if tap not in self.stage_specs:
                raise ContractError(
                    f"backbone {type(self).__name__} has no trunk stage {tap!r}; "
                    f"its stages are {list(self.stage_specs)}"
                )
