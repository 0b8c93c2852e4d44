"""Where and how the network runs: device choice, determinism switches, mixed precision, channels-last,
DDP wrapping and ``torch.compile``."""

from __future__ import annotations

import os

import torch
from torch import nn

from hashkit.errors import RecipeError
from hashkit.recipe.schema import TrainSection
from hashkit.training import ddp

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(preference: str, info: ddp.DistInfo) -> torch.device:
    """``auto`` = CUDA when present (this rank's local GPU under DDP), else CPU."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(preference)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RecipeError("train.device asks for CUDA but no GPU is available", key="train.device")
        if device.index is None:
            device = torch.device("cuda", info.local_rank if info.enabled else torch.cuda.current_device())
    return device


def configure_determinism(enabled: bool) -> None:
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def amp_dtype(train: TrainSection) -> torch.dtype | None:
    """The autocast dtype of ``train.amp`` (``None``: full precision)."""
    return AMP_DTYPES.get(train.amp)


def grad_scaler(train: TrainSection, device: torch.device) -> torch.amp.GradScaler:
    """A loss scaler, enabled for fp16 only."""
    return torch.amp.GradScaler(device.type, enabled=train.amp == "fp16")


def place_model(model: nn.Module, train: TrainSection, device: torch.device) -> nn.Module:
    """``model`` on ``device``, in channels-last memory format when ``train.channels_last``."""
    model = model.to(device)
    if train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def forward_wrapper(model: nn.Module, train: TrainSection, info: ddp.DistInfo, device: torch.device) -> nn.Module:
    """What the training step calls: ``model`` wrapped in DDP under ``torchrun``, compiled if ``train.compile``."""
    wrapped = ddp.wrap_model(model, info, device)
    return torch.compile(wrapped) if train.compile else wrapped
