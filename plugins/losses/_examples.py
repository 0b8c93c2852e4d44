"""Conformance examples for the losses that need the training-set size (memory banks)."""

from __future__ import annotations

from hashkit.interfaces import BuildContext
from hashkit.testing import ComponentExample

#: the default loss example context plus the training-set size (the example batch holds indices 0..5)
BANK_CTX = BuildContext(code_length=12, num_classes=5, descriptor_dims={"global": 32}, head_classes=5, num_train=10)


def bank_example() -> ComponentExample:
    return ComponentExample(ctx=BANK_CTX)
