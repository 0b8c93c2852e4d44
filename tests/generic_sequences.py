"""Shared harness of the generic-loss exactness tests (tests/test_generic_*_losses.py).

A *sequence* is what a training loop feeds a loss: a fixed permutation of ``n`` training items split into
batches (a short last batch), repeated for a few epochs so bank rows are revisited. Raw outputs ``u`` are
N(0, 9) with a few exact zeros; the first batch is all one class, the last one has no two items sharing a
label. :func:`check_sequence` feeds the same sequence to a hashkit loss and to a reference written in the
test and compares, after every batch, the value, the gradient w.r.t. ``u`` (and w.r.t. extra pairs of
leaves), and the state the test names, in float64 (relative tolerance 1e-6).
"""

from __future__ import annotations

from typing import Callable, Iterable

import attrs
import torch
from torch import Tensor

from hashkit.interfaces import EpochStart, LossInputs

N, L, C, B = 44, 12, 5, 8
RTOL = 1e-6


@attrs.frozen
class Step:
    at: EpochStart
    first_of_epoch: bool
    indices: Tensor
    u: Tensor
    labels: Tensor


def item_labels(n: int, classes: int, order: Tensor, batch: int, multi: bool, g: torch.Generator) -> Tensor:
    """Labels per training item: random (multi-hot: each class with probability 0.35, at least one), the first
    batch of ``order`` all class 0, the last batch pairwise disjoint single labels."""
    if multi:
        y = (torch.rand(n, classes, generator=g) < 0.35).double()
        y[y.sum(1) == 0, 0] = 1.0
    else:
        y = torch.nn.functional.one_hot(torch.randint(0, classes, (n,), generator=g), classes).double()
    chunks = order.split(batch)
    y[chunks[0]] = torch.nn.functional.one_hot(torch.zeros(len(chunks[0]), dtype=torch.long), classes).double()
    last = chunks[-1]
    assert len(last) <= classes
    y[last] = torch.nn.functional.one_hot(torch.arange(len(last)) % classes, classes).double()
    return y


def sequence(*, n: int = N, length: int = L, classes: int = C, batch: int = B, epochs: int = 3,
             rounds: int = 1, multi: bool = False, seed: int = 0) -> list[Step]:
    """``rounds`` x ``epochs`` epochs over the same permutation of ``n`` items (``EpochStart`` per epoch)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)
    labels = item_labels(n, classes, order, batch, multi, g)
    steps = []
    for r in range(rounds):
        for e in range(epochs):
            at = EpochStart.at(r, e, epochs, rounds)
            for k, chunk in enumerate(order.split(batch)):
                u = torch.randn(len(chunk), length, generator=g, dtype=torch.float64) * 3.0
                u[0, :2] = 0.0
                steps.append(Step(at, k == 0, chunk.clone(), u, labels[chunk].clone()))
    return steps


def grad_of(value: Tensor, leaves: Iterable[Tensor]) -> tuple[Tensor, ...]:
    return torch.autograd.grad(value, list(leaves), allow_unused=True)


def assert_close(actual: Tensor, expected: Tensor, what: str, rtol: float = RTOL) -> None:
    """Elementwise ``|a − b| <= rtol·|b| + 1e-9·max|b|``: relative, with a floor for entries that are
    round-off-sized next to the tensor's largest (cancellations in a gradient)."""
    floor = 1e-9 * float(expected.abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=max(floor, 1e-15), msg=lambda m: f"{what}: {m}")


def check_sequence(loss, reference, steps: list[Step], *, state: Callable[[object, object], dict] | None = None,
                   extra_leaves: Callable[[object, object], list[tuple[str, Tensor, Tensor]]] | None = None,
                   protocol: Callable[[Step], dict] | None = None, codes_from: Callable[[Tensor], Tensor] = torch.tanh,
                   begin_epoch: bool = True) -> int:
    """Feed ``steps`` to ``loss`` (``LossInputs(codes=codes_from(u), logits=u, ...)``) and to
    ``reference(u, labels, indices, step)``; compare value, ∂/∂u, the named extra leaves' gradients and
    ``state(loss, reference)`` (``{name: (hashkit tensor, reference tensor)}``) after every batch.
    ``reference.begin_epoch(step)`` runs before the first batch of each epoch when it exists."""
    assert torch.get_default_dtype() == torch.float64
    for i, step in enumerate(steps):
        if step.first_of_epoch and begin_epoch:
            loss.begin_epoch(step.at)
            hook = getattr(reference, "begin_epoch", None)
            if hook is not None:
                hook(step)
        u = step.u.clone().requires_grad_()
        inputs = LossInputs(codes=codes_from(u), logits=u, labels=step.labels.clone(), indices=step.indices.clone(),
                            protocol=protocol(step) if protocol else {})
        result = loss(inputs)
        assert result.value.dtype == torch.float64 and result.value.ndim == 0
        u_ref = step.u.clone().requires_grad_()
        expected = reference(u_ref, step.labels.clone(), step.indices.clone(), step)
        extras = extra_leaves(loss, reference) if extra_leaves else []
        got = grad_of(result.value, [u, *(a for _, a, _ in extras)])
        want = grad_of(expected, [u_ref, *(b for _, _, b in extras)])
        where = f"batch {i} (round {step.at.round}, epoch {step.at.epoch_in_round})"
        assert_close(result.value.detach(), expected.detach(), f"{where} value")
        assert got[0] is not None and got[0].abs().sum() > 0, f"{where}: no gradient w.r.t. u"
        assert_close(got[0], want[0], f"{where} d/du")
        for (name, _, _), a, b in zip(extras, got[1:], want[1:]):
            assert_close(a, b, f"{where} d/d{name}")
        if state is not None:
            for name, (mine, theirs) in state(loss, reference).items():
                assert not mine.requires_grad, f"{where}: {name} carries a gradient"
                assert_close(mine, theirs, f"{where} state {name}")
    return len(steps)
