"""One reader for outside weight files (.pth with weights_only, .safetensors): used by the backbones and the
official SEMICON checkpoint loader."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from hashkit.errors import CheckpointError
from hashkit.weights_file import read_weights


class NotATensor:
    pass


def test_pth_safetensors_wrapper_and_prefix(tmp_path):
    state = {"a.weight": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2])}
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pth")
    save_file(state, str(tmp_path / "w.safetensors"))
    for name in ("w.pth", "w.safetensors"):
        got = read_weights(tmp_path / name)
        assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)


def test_bad_files_are_checkpoint_errors_naming_what_and_where(tmp_path):
    with pytest.raises(CheckpointError, match=r"^resnet weights .*nope\.pth does not exist$"):
        read_weights(tmp_path / "nope.pth", "resnet weights")
    torch.save({"x": NotATensor()}, tmp_path / "code.pth")  # would need unpickling a class
    with pytest.raises(CheckpointError, match=r"cannot read weights file .*code\.pth \(hint\): "):
        read_weights(tmp_path / "code.pth", hint=" (hint)")
    torch.save({"x": [1, 2]}, tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="does not hold a flat state dict of tensors"):
        read_weights(tmp_path / "list.pth")
