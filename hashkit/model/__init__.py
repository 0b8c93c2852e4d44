"""The composed model and its outputs."""

from hashkit.model.hashing_model import HashingModel, check_contracts
from hashkit.model.outputs import ModelOutput

__all__ = ["HashingModel", "ModelOutput", "check_contracts"]
