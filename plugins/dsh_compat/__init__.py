"""Compatibility with the reference PyTorch models of A2-Net, ExchNet, AGMH and DAHNet (the ADSH family of the
DSH_Analysis benchmark): state-dict names and checkpoints.

Not a component package (no hook). :mod:`hashkit_plugins.dsh_compat.maps` declares, per method, the one-to-one
prefix map between the reference model's state-dict names and those of the hashkit model built from the
method's recipe; :mod:`hashkit_plugins.dsh_compat.checkpoint` loads a reference ``model.state_dict()`` file into
that model strictly and writes one back (docs/methods/<method>.md has each name table).
"""

from hashkit_plugins.dsh_compat.checkpoint import (
    hashkit_name,
    load_reference_checkpoint,
    reference_name,
    to_reference_state_dict,
)
from hashkit_plugins.dsh_compat.maps import REFERENCE_MAPS, NameMap

__all__ = ["REFERENCE_MAPS", "NameMap", "hashkit_name", "load_reference_checkpoint", "reference_name",
           "to_reference_state_dict"]
