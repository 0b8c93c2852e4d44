"""StageBuilder: what a backbone offers the components built after it (fresh copies of its stages).

Some aggregations run their own copies of a later backbone stage (SEMICON: a layer4 copy per branch on a
conv1..layer3 trunk, with a channel interaction inserted between its blocks). They do not receive the
backbone itself, only this capability: the declared specs of every stage the backbone can produce, and a
function that builds a fresh copy of one (initialised as the backbone's recipe says).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import attrs

from hashkit.errors import ContractError
from hashkit.interfaces.feature_spec import FeatureSpec

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


@attrs.frozen
class StageBuilder:
    """Stage specs and stage copies of one backbone.

    - ``backbone``: how errors name the backbone (``"backbone 'resnet50'"``);
    - ``specs``: every stage in order, the trunk's first, then those the backbone only builds on request;
    - ``trunk``: the names of the stages its trunk holds (a prefix of ``specs``);
    - ``build(name)``: a fresh ``nn.Sequential`` of the stage's blocks.
    """

    backbone: str
    specs: dict[str, FeatureSpec]
    trunk: tuple[str, ...]
    _make: Callable[[str], "nn.Sequential"] = attrs.field(alias="make", repr=False)

    def spec(self, name: str, who: str) -> FeatureSpec:
        """The spec of stage ``name``; ``ContractError`` naming ``who`` asked and the stages there are."""
        if name not in self.specs:
            raise ContractError(f"{who}: {self.backbone} has no stage {name!r}; its stages are {list(self.specs)}")
        return self.specs[name]

    def input_spec(self, name: str) -> FeatureSpec | None:
        """The spec of the stage that feeds stage ``name`` (``None`` for the first stage)."""
        names = list(self.specs)
        position = names.index(name)
        return self.specs[names[position - 1]] if position > 0 else None

    def build(self, name: str) -> "nn.Sequential":
        """A fresh copy of stage ``name`` as a sequence of blocks."""
        return self._make(name)
