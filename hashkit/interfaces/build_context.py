"""BuildContext: what the model builder tells a component factory about its neighbours."""

from __future__ import annotations

from typing import Any, Callable

import attrs

from hashkit.interfaces.feature_spec import FeatureSpec


@attrs.frozen
class BuildContext:
    """Passed as the second argument of every component factory: ``factory(config, ctx)``.

    Fields are filled as far as the builder knows them when the component is built; each interface says
    which fields its factories may read. Components must not keep a reference to the context.

    - ``code_length``: L, bits of the code (hash heads, losses, protocols).
    - ``num_classes``: classes of the training data (classifier heads, proxy/centre losses, protocols).
    - ``in_spec``: the feature map this component receives (attention, channel interaction).
    - ``stages``: every backbone tap by name (aggregations that read several stages).
    - ``num_maps``: K, the number of attention maps the attention cascade produces (0 if none).
    - ``backbone``: the built backbone, for aggregations that build fresh copies of later stages.
    - ``channel_interaction``: ``channels -> nn.Module`` factory of the recipe's channel interaction
      component, or ``None``; aggregations insert it where their config says.
    - ``descriptor_dims``: ordered ``name -> dim`` of the aggregation output (hash heads, losses).
    - ``head_classes``: classes of the hash head's classifier, 0 when it has none (losses).
    - ``num_train``: number of training items (training protocols; losses with a memory bank of the training set).
    - ``extra``: free-form values a recipe section passes down (documented by the component).
    """

    code_length: int | None = None
    num_classes: int | None = None
    in_spec: FeatureSpec | None = None
    stages: dict[str, FeatureSpec] = attrs.field(factory=dict)
    num_maps: int = 0
    backbone: Any = None
    channel_interaction: Callable[[int], Any] | None = None
    descriptor_dims: dict[str, int] = attrs.field(factory=dict)
    head_classes: int = 0
    num_train: int | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)

    def evolve(self, **changes: Any) -> "BuildContext":
        return attrs.evolve(self, **changes)
