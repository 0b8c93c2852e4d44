"""The component kinds: one table with everything hashkit knows about each kind (torch-free).

The registry takes its sections from it, the recipe loader the recipe key of each kind, the conformance
checks (:mod:`hashkit.testing`) the default example and the contract check of each kind, and the tests which
kinds are ``nn.Module``s. Adding a kind means adding a row here, an interface module, and its example and
check functions in :mod:`hashkit.testing`.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Kind:
    """One component kind.

    - ``name``: the kind as plugins register it;
    - ``interface``: the class in :mod:`hashkit.interfaces` its components implement (or return);
    - ``recipe_key``: where a recipe chooses it (``"model.attention[]"``: a list); ``""`` when it is only
      nested in other components;
    - ``module``: components are ``nn.Module``s with a state dict;
    - ``context``: the :class:`~hashkit.interfaces.BuildContext` fields its factories may read;
    - ``contract``: the tensor contract in one line;
    - ``example``, ``check``: names of the default conformance example and of the contract check in
      :mod:`hashkit.testing`.
    """

    name: str
    interface: str
    recipe_key: str
    module: bool
    context: tuple[str, ...]
    contract: str
    example: str
    check: str


KIND_TABLE: tuple[Kind, ...] = (
    Kind("backbone", "Backbone", "model.backbone", True, (),
         "forward(x (B,3,H,W), taps) -> {stage: (B,C,H/s,W/s)}; stage_specs, build_stage, stage_builder()",
         "backbone_example", "check_backbone"),
    Kind("attention", "Attention", "model.attention[]", True, ("in_spec",),
         "(B,C,H,W) -> AttentionOutput(features (B,C',H,W), maps (B,K,H,W) >= 0 or None, extras)",
         "attention_example", "check_attention"),
    Kind("channel_interaction", "ChannelInteraction", "", True, ("in_spec",),
         "(B,C,H,W) -> (B,C,H,W)", "channel_interaction_example", "check_channel_interaction"),
    Kind("aggregation", "Aggregation", "model.aggregation", True,
         ("in_spec", "stages", "num_maps", "stage_builder", "code_length", "num_classes"),
         "AggregationInput -> AggregationOutput(descriptors {name: (B,D)} as descriptor_dims, extras)",
         "aggregation_example", "check_aggregation"),
    Kind("hash_head", "HashHead", "model.hash_head", True, ("descriptor_dims", "code_length", "num_classes"),
         "{name: (B,D)} -> HeadOutput(logits (B,L), codes (B,L) in [-1,1], class_logits (B,C) or None)",
         "hash_head_example", "check_hash_head"),
    Kind("loss", "Loss", "losses[]", True, ("code_length", "num_classes", "descriptor_dims", "head_classes"),
         "LossInputs -> LossResult(value 0-dim, parts); requires names its inputs", "loss_example", "check_loss"),
    Kind("training_protocol", "TrainingProtocol", "protocol", False, ("code_length", "num_classes", "num_train"),
         "rounds, per-batch state, learned database codes or None, state_dict of tensors",
         "protocol_example", "check_protocol"),
    Kind("dataset", "RetrievalData", "data.dataset", False, (),
         "returns RetrievalData: splits train, query, database (items, multi-hot targets, RGB reader)",
         "dataset_example", "check_dataset"),
    Kind("metric", "Metric", "eval.metrics[]", False, (),
         "RetrievalProblem -> {name: value}; kinds of problems it applies to", "metric_example", "check_metric"),
)

#: the kind names, in the order data flows through a model and its training
KINDS: tuple[str, ...] = tuple(kind.name for kind in KIND_TABLE)

#: kind name -> :class:`Kind`
KIND: dict[str, Kind] = {kind.name: kind for kind in KIND_TABLE}
