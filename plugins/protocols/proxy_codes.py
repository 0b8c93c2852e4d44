"""``proxy_codes``: sampled rounds towards fixed label-derived target codes; the database *is* those codes.

FISH (Chen et al., TIP 2022) and CHN (Zeng & Zheng, arXiv 2303.11274) regress the network's code onto a
target ("proxy") code per training item, computed once before training from the label matrix alone:

    Y (C, n) labels, sigma = 1, delta = 1e-4, T = 15 iterations
    V ~ N(0, 1) (L, n);  B0 = sign(N(0, 1)) (L, n);  R = Procrustes(B0 V^T)
    repeat T times:
        B  = sgn+(R V)                                    (sgn+(0) = +1)
        Ul = sigma Y V^T (sigma V V^T)^+                  (C, L)
        V  = (sigma Ul^T Ul + delta R^T R)^+ (sigma Ul^T Y + delta R^T B)
        R  = Procrustes(B V^T)
    targets = B^T (n, L), from the last B step

with ``X^+`` the Moore-Penrose pseudo-inverse and ``Procrustes(X) = U Vh`` for the SVD ``X = U S Vh``. The
items of a class end with (almost always) one shared code, so the targets are class codes.

- ``solver = "numpy"`` (default): float64 numpy, as aassxun/DSH_Analysis @ 44271bc (``utils/fish_tools.py``)
  and chenzhenduo/FISH compute it; ``"torch"``: float32 torch with torch's generator, as the official CHN
  code (kaiba007/FG-CHN @ 3375298, ``datacsv/fg_dataset.py``) does — including its rotation, which
  multiplies ``U`` by ``V`` as ``torch.svd`` returns it (``U V``, not ``U Vh``).
- Seeding: by default the random draws come from a seed taken from the run's generator (one per code
  length; recorded in the state as ``seed``). ``parity_rng = true`` reproduces the reference exactly:
  numpy's legacy generator seeded ``parity_seed`` (68) once, with the draws of the code lengths trained
  before this one in ``parity_lengths`` replayed first (the reference trains 12, 24, 32, 48 in one process).

Training: rounds as ``sampled_rounds`` (``randperm(n)[:m]`` per round, ``epochs`` epochs over it). Losses
receive ``protocol.targets`` = the batch items' rows of the targets (``(b, L)`` ±1 float; see
``proxy_code_mse``). Evaluation: ``database_codes()`` returns the targets, which ``eval.database = ["label"]``
scores the queries against (the kind for codes a protocol derives from the labels, ``database = "label"``):
what the reference reports, a class-level, oracle-like figure. ``"encoded"`` scores the queries against the
network's codes of the database images. The two are not comparable.
The targets are saved with the protocol state (``T``) and restored on resume.
"""

from __future__ import annotations

from typing import Literal

import attrs
import numpy as np
import torch
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext
from hashkit_plugins.protocols.sampled_rounds import SampledRounds, SampledRoundsConfig


@attrs.frozen
class ProxyCodesConfig(SampledRoundsConfig):
    #: "numpy" (float64, DSH_Analysis / FISH) or "torch" (float32, the official CHN code)
    solver: Literal["numpy", "torch"] = "numpy"
    #: alternating-optimisation steps (reference: 15)
    iterations: int = attrs.field(default=15, validator=attrs.validators.ge(0))
    #: label-regression weight sigma (reference: 1)
    sigma: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))
    #: weight delta of the pull towards the rotated binary code (reference: 1e-4)
    delta: float = attrs.field(default=1e-4, validator=attrs.validators.ge(0.0))
    #: reproduce the reference's numpy global RNG stream (numpy solver only; see the module docstring)
    parity_rng: bool = False
    #: numpy seed of the reference process (run.py: seed_everything(68))
    parity_seed: int = 68
    #: code lengths the reference trains one after the other in its process, in order
    parity_lengths: tuple[int, ...] = (12, 24, 32, 48)


def _procrustes_numpy(x: np.ndarray) -> np.ndarray:
    u, _, vh = np.linalg.svd(x)
    return np.dot(u, vh)


def proxy_codes_numpy(labels: np.ndarray, bits: int, rng: np.random.RandomState, *, sigma: float = 1.0,
                      delta: float = 1e-4, iterations: int = 15) -> np.ndarray:
    """``labels (n, C)`` -> targets ``(n, bits)`` of ±1 (float64), drawing V and B0 from ``rng`` (in that order)."""
    n = labels.shape[0]
    V = rng.randn(bits, n)
    B = np.sign(rng.randn(bits, n))
    R = _procrustes_numpy(np.dot(B, V.T))
    Y = np.asarray(labels, dtype=np.float64).T
    for _ in range(iterations):
        B = -1 * np.ones((bits, n))
        B[np.dot(R, V) >= 0] = 1
        Ul = np.dot(sigma * np.dot(Y, V.T), np.linalg.pinv(sigma * np.dot(V, V.T)))
        V = np.dot(np.linalg.pinv(sigma * np.dot(Ul.T, Ul) + delta * np.dot(R.T, R)),
                   sigma * np.dot(Ul.T, Y) + delta * np.dot(R.T, B))
        R = _procrustes_numpy(np.dot(B, V.T))
    return B.T


def _rotation_torch(x: Tensor) -> Tensor:
    u, _, vh = torch.linalg.svd(x)
    return u @ vh.mT  # U V with V as torch.svd returns it: the official code's rotation (not U Vh)


def proxy_codes_torch(labels: Tensor, bits: int, generator: torch.Generator, *, sigma: float = 1.0,
                      delta: float = 1e-4, iterations: int = 15) -> Tensor:
    """The official CHN variant in float32: ``labels (n, C)`` -> targets ``(n, bits)`` of ±1."""
    n = labels.shape[0]
    Y = labels.float().t()
    V = torch.randn(bits, n, generator=generator)
    B = torch.sign(torch.randn(bits, n, generator=generator))
    R = _rotation_torch(B @ V.t())
    for _ in range(iterations):
        B = -torch.ones(bits, n)
        B[R @ V >= 0] = 1
        Ul = (sigma * (Y @ V.t())) @ torch.linalg.pinv(sigma * (V @ V.t()))
        V = torch.linalg.pinv(sigma * (Ul.t() @ Ul) + delta * (R.t() @ R)) @ (sigma * (Ul.t() @ Y) + delta * (R.t() @ B))
        R = _rotation_torch(B @ V.t())
    return torch.sign(B.t())


def parity_random_state(code_length: int, seed: int = 68, lengths: tuple[int, ...] = (12, 24, 32, 48),
                        num_items: int = 0) -> np.random.RandomState:
    """numpy's legacy generator as the reference process holds it when it computes the codes of
    ``code_length``: seeded once, after the V and B0 draws of the lengths before it in ``lengths``."""
    if code_length not in lengths:
        raise ContractError(f"proxy_codes: parity_rng needs the code length ({code_length}) in parity_lengths "
                            f"{list(lengths)}")
    rng = np.random.RandomState(seed)
    for earlier in lengths[: lengths.index(code_length)]:
        rng.randn(earlier, num_items)
        rng.randn(earlier, num_items)
    return rng


class ProxyCodes(SampledRounds):
    """Sampled rounds with fixed label-derived targets; database = the targets."""

    #: the codes this protocol provides for the training items are derived from the labels alone
    database = "label"
    provides: tuple[str, ...] = ("targets",)

    def __init__(self, cfg: ProxyCodesConfig, code_length: int):
        super().__init__(cfg)
        self.cfg = cfg
        self.code_length = code_length
        self.targets: Tensor | None = None
        self.seed: int | None = None

    def setup(self, train_labels: Tensor, generator: torch.Generator) -> None:
        super().setup(train_labels, generator)
        cfg, n, L = self.cfg, self.num_train, self.code_length
        labels = train_labels.detach().float().cpu()
        options = dict(sigma=cfg.sigma, delta=cfg.delta, iterations=cfg.iterations)
        if cfg.parity_rng:
            if cfg.solver != "numpy":
                raise ContractError("proxy_codes: parity_rng reproduces the numpy solver's stream; set solver = \"numpy\"")
            self.seed = cfg.parity_seed
            rng = parity_random_state(L, cfg.parity_seed, cfg.parity_lengths, n)
            codes = torch.from_numpy(proxy_codes_numpy(labels.double().numpy(), L, rng, **options))
        else:
            self.seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
            if cfg.solver == "numpy":
                rng = np.random.RandomState(self.seed)
                codes = torch.from_numpy(proxy_codes_numpy(labels.double().numpy(), L, rng, **options))
            else:
                codes = proxy_codes_torch(labels, L, torch.Generator().manual_seed(self.seed), **options)
        self.targets = codes.float().contiguous()

    def _require_setup(self) -> Tensor:
        if self.targets is None:
            raise ContractError("proxy_codes protocol: setup(train_labels, generator) must run first")
        return self.targets

    def batch_state(self, indices: Tensor) -> dict[str, Tensor]:
        targets = self._require_setup()
        return {"targets": targets[indices.cpu()].to(indices.device)}

    def database_codes(self) -> Tensor | None:
        return self.targets

    def state_dict(self) -> dict[str, Tensor]:
        if self.targets is None:
            return {}
        return {"T": self.targets.clone(), "seed": torch.tensor(self.seed, dtype=torch.long)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if not state:
            return
        if "T" not in state:
            raise ContractError("proxy_codes protocol state lacks 'T' (the target codes)")
        targets = state["T"].detach().float().cpu()
        if targets.shape[1] != self.code_length:
            raise ContractError(f"proxy_codes protocol state has {targets.shape[1]}-bit targets, "
                                f"the model has {self.code_length}")
        self.targets = targets.clone()
        self.num_train = self.targets.shape[0]
        self.num_samples = min(self.cfg.num_samples, self.num_train)
        self.seed = int(state["seed"]) if "seed" in state else None


def build_proxy_codes(cfg: ProxyCodesConfig, ctx: BuildContext) -> ProxyCodes:
    """Sampled rounds towards fixed label-derived target codes (FISH, CHN); database = those codes."""
    if not ctx.code_length:
        raise ContractError("the proxy_codes protocol needs a code length (recipe code_lengths)")
    return ProxyCodes(cfg, ctx.code_length)


def components(register):
    register("training_protocol", "proxy_codes", build_proxy_codes, config=ProxyCodesConfig)
