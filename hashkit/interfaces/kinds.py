"""The component kinds (torch-free, so the registry and CLI parsing stay light)."""

KINDS: tuple[str, ...] = (
    "backbone",
    "attention",
    "channel_interaction",
    "aggregation",
    "hash_head",
    "loss",
    "training_protocol",
    "dataset",
    "metric",
)
