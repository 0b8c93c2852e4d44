"""BuildContext: what the model builder tells a component factory about its neighbours."""

from __future__ import annotations

from typing import Any

import attrs

from hashkit.interfaces.component_ref import ComponentRef
from hashkit.interfaces.feature_spec import FeatureSpec
from hashkit.interfaces.stage_builder import StageBuilder


@attrs.frozen
class BuildContext:
    """Passed as the second argument of every component factory: ``factory(config, ctx)``.

    Fields are filled as far as the builder knows them when the component is built; each interface says
    which fields its factories may read. Components must not keep a reference to the context.

    - ``code_length``: L, bits of the code (hash heads, losses, protocols).
    - ``num_classes``: classes of the training data (classifier heads, proxy/centre losses, protocols).
    - ``in_spec``: the feature map this component receives (attention, channel interaction, aggregation).
    - ``stages``: every backbone tap by name (aggregations that read several stages).
    - ``num_maps``: K, the number of attention maps the attention cascade produces (0 if none).
    - ``stage_builder``: the backbone's :class:`StageBuilder` (specs of all its stages, fresh stage
      copies), for aggregations that run their own copies of a later stage.
    - ``descriptor_dims``: ordered ``name -> dim`` of the aggregation output (hash heads, losses).
    - ``head_classes``: classes of the hash head's classifier, 0 when it has none (losses).
    - ``num_train``: number of training items (training protocols; losses with a memory bank of the training set).

    :meth:`input_channels` reads ``in_spec.channels`` (an error naming the component when it is unknown);
    :meth:`build` builds a nested component (a :class:`ComponentRef` field of the caller's config).
    """

    code_length: int | None = None
    num_classes: int | None = None
    in_spec: FeatureSpec | None = None
    stages: dict[str, FeatureSpec] = attrs.field(factory=dict)
    num_maps: int = 0
    stage_builder: StageBuilder | None = None
    descriptor_dims: dict[str, int] = attrs.field(factory=dict)
    head_classes: int = 0
    num_train: int | None = None

    def evolve(self, **changes: Any) -> "BuildContext":
        return attrs.evolve(self, **changes)

    def input_channels(self, who: str) -> int:
        """``in_spec.channels``; a :class:`~hashkit.errors.ContractError` naming ``who`` when it is unknown."""
        if self.in_spec is None:
            from hashkit.errors import ContractError

            raise ContractError(f"{who} needs the spec of its input feature map (BuildContext.in_spec)")
        return self.in_spec.channels

    def build(self, ref: ComponentRef, **changes: Any) -> Any:
        """Build the nested component ``ref`` through the registry with this context, changed by ``changes``.

        Call it once per instance you need (``ctx.build(cfg.interaction, in_spec=FeatureSpec(channels))``
        after each block that gets one). A :class:`~hashkit.errors.ContractError` names ``ref``'s recipe key.
        """
        from hashkit.components import build_ref

        return build_ref(ref, attrs.evolve(self, **changes) if changes else self)
