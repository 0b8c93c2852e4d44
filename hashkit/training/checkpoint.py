"""Training checkpoints in safetensors, written atomically and validated on load.

One checkpoint file holds everything needed to continue a run exactly where it stopped:

==========================  =====================================================================
tensor key prefix           content
==========================  =====================================================================
``model.``                  the model's ``state_dict`` (parameters and buffers)
``losses.``                 parameters of losses that have some (proxies, centres)
``optim.state.<i>.<name>``  the optimiser's per-parameter state (momentum buffers, Adam moments)
``protocol.``               the training protocol's ``state_dict`` (ADSH's ``B``, sample indices, ``U``)
``rng.``                    torch CPU / CUDA generator states, numpy's MT19937 key, python's MT state
``trainer.``                trainer tensors (the current round's visiting order)
==========================  =====================================================================

Non-tensor data (step counters, optimiser hyper-parameters, the scalar parts of the numpy/python RNG states,
the metrics-log line count) goes into the safetensors header metadata as JSON strings, so nothing is ever
unpickled. The header also holds a SHA-256 digest (``sha256``) over the format fields, the whole JSON
metadata string and every tensor (name, dtype, shape, bytes); :func:`load_checkpoint` recomputes it, so a
truncated file, a flipped bit in a tensor and an edited header value (``log_lines``, the position, the
optimiser or RNG state) all raise :class:`~hashkit.errors.CheckpointError` instead of resuming from
garbage. Format 1 files (digest over the tensors only) are refused.

Writing: temp file in the same directory -> ``fsync`` -> ``os.replace`` -> ``fsync`` of the directory, so a
process killed at any moment leaves either the previous checkpoint or the new one, never a partial file.
A JSON sidecar (``checkpoint.json``) repeats the counters for people and scripts; it is informational (the
safetensors file is self-validating), so a kill between the two writes cannot make a run unresumable.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from hashkit.atomic_io import atomic_write_bytes, atomic_write_text
from hashkit.errors import CheckpointError
from hashkit.integrity import content_digest

FORMAT = "hashkit-checkpoint"
FORMAT_VERSION = 2


# --------------------------------------------------------------------------------------- optimiser state
def flatten_optimizer_state(state: Mapping[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``optimizer.state_dict()`` -> (tensors ``optim.state.<i>.<name>``, JSON-able rest)."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in state["state"].items():
        for name, value in per_param.items():
            key = f"optim.state.{idx}.{name}"
            if isinstance(value, Tensor):
                tensors[key] = value
            else:  # python numbers and None (e.g. an unused momentum buffer)
                scalars.setdefault(str(idx), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer_state(tensors: Mapping[str, Tensor], meta: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if not key.startswith("optim.state."):
            continue
        idx, name = key[len("optim.state."):].split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    for idx, values in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        for k in ("betas",):
            if isinstance(g.get(k), list):
                g[k] = tuple(g[k])
        groups.append(g)
    return {"state": state, "param_groups": groups}


# ------------------------------------------------------------------------------------------- RNG states
def capture_rng() -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The global RNG states (torch CPU/CUDA, numpy, python) as tensors + JSON-able scalars."""
    tensors: dict[str, Tensor] = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64))
    version, internal, gauss_next = random.getstate()
    tensors["rng.python"] = torch.tensor(internal, dtype=torch.int64)
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(cached)], "python": [version, gauss_next]}
    return tensors, meta


def restore_rng(tensors: Mapping[str, Tensor], meta: Mapping[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"].to(torch.uint8))
    cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    if cuda and torch.cuda.is_available():
        states = [tensors[k].to(torch.uint8) for k in cuda]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, gauss_next = meta["python"]
    random.setstate((version, tuple(int(x) for x in tensors["rng.python"].tolist()), gauss_next))


# ------------------------------------------------------------------------------------------- save / load
def _digest(tensors: Mapping[str, Tensor], header: Mapping[str, str]) -> str:
    """The :func:`~hashkit.integrity.content_digest` of the header fields and every tensor."""
    def raw(t: Tensor) -> bytes:
        return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()

    return content_digest(header, ((k, str(t.dtype), tuple(t.shape), raw(t)) for k, t in tensors.items()))


def _prepare(tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    out = {}
    for key, t in tensors.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"checkpoint entry {key!r} is not a tensor ({type(t).__name__})")
        out[key] = t.detach().to("cpu").contiguous().clone()
    return out


def save_checkpoint(path: Path, tensors: Mapping[str, Tensor], meta: Mapping[str, Any],
                    sidecar: Mapping[str, Any] | None = None) -> None:
    """Write ``tensors`` + JSON ``meta`` atomically to ``path``; then the informational sidecar ``.json``."""
    from safetensors.torch import save

    path = Path(path)
    prepared = _prepare(tensors)
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "meta": json.dumps(meta, sort_keys=True, allow_nan=True),
    }
    header["sha256"] = _digest(prepared, header)
    atomic_write_bytes(path, save(prepared, metadata=header))
    if sidecar is not None:
        info = {"file": path.name, "sha256": header["sha256"], **sidecar}
        atomic_write_text(path.with_suffix(".json"), json.dumps(info, indent=2, sort_keys=True) + "\n")


def load_checkpoint(path: Path, *, with_digest: bool = False):
    """Read and validate a checkpoint: ``(tensors, meta)``, plus its content digest with ``with_digest``;
    :class:`CheckpointError` on any problem."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        tensors: dict[str, Tensor] = {}
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            for key in fh.keys():
                tensors[key] = fh.get_tensor(key)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for damaged files
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({type(exc).__name__}: {exc})") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a hashkit checkpoint (format {header.get('format')!r})")
    version = header.get("format_version", "0")
    if version != str(FORMAT_VERSION):
        newer = version.isdigit() and int(version) > FORMAT_VERSION
        raise CheckpointError(f"{path}: checkpoint format {version!r} is "
                              + (f"newer than this hashkit ({FORMAT_VERSION})" if newer else
                                 f"older than this hashkit's ({FORMAT_VERSION}; its checksum does not cover the "
                                 "metadata): retrain, or load it with the hashkit version that wrote it"))
    digest = _digest(tensors, header)
    if digest != header.get("sha256"):
        raise CheckpointError(f"{path}: checksum mismatch (stored {header.get('sha256')}, computed {digest}); "
                              "the file is corrupt")
    try:
        meta = json.loads(header["meta"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: checkpoint metadata unreadable ({exc})") from None
    return (tensors, meta, digest) if with_digest else (tensors, meta)


def split_prefix(tensors: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries under ``prefix`` (``"model."``) with the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def with_prefix(tensors: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {prefix + k: v for k, v in tensors.items()}


def load_module_state(module: torch.nn.Module, state: Mapping[str, Tensor], *, what: str, path: Path) -> None:
    """``module.load_state_dict(state)`` with a one-line :class:`CheckpointError` on missing/extra/shape."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise CheckpointError(f"{path}: {what} does not match the recipe's model: missing {missing[:5]}"
                              f"{'...' if len(missing) > 5 else ''}, unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}")
    for key, value in state.items():
        if tuple(own[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{path}: {what} entry {key!r} has shape {tuple(value.shape)}, the model expects "
                                  f"{tuple(own[key].shape)}")
    module.load_state_dict(dict(state))
