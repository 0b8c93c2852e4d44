"""Compatibility with the generic baselines' reference code: state-dict names and checkpoints.

Not a component package (no hook): :mod:`hashkit_plugins.generic_compat.checkpoint` maps the networks of
swuxyj/DeepHash-pytorch (``network.AlexNet``, ``network.ResNet``) and aassxun/DSH_Analysis
(``models/resnet.resnet50(num_classes = L)``) onto the hashkit models of ``recipes/generic/``.
"""

from hashkit_plugins.generic_compat.checkpoint import hashkit_name, load_reference_state_dict

__all__ = ["hashkit_name", "load_reference_state_dict"]
