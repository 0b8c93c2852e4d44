"""Conformance checks for components: ``check_component(kind, name)`` builds a registered component on a
tiny example and checks its declared tensor contract (for model components also that an image's eval-mode
output does not depend on its batch-mates, :func:`check_batch_independence`) (each kind's default example and check are named in
:data:`hashkit.interfaces.kinds.KIND_TABLE`; failures raise ``AssertionError``, also under ``python -O``).
hashkit's own registry-parametrised tests use it, and plugin authors can call it from theirs.

A component may register ``example=`` (a zero-argument callable returning :class:`ComponentExample`) when
the default example of its kind does not fit (a dataset needs files on disk, an aggregation needs maps).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import attrs
import torch

from hashkit.interfaces import (
    AggregationInput,
    AggregationOutput,
    AttentionOutput,
    BuildContext,
    FeatureSpec,
    HeadOutput,
    LossInputs,
    LossResult,
    RetrievalData,
    RetrievalProblem,
)
from hashkit.interfaces.kinds import KIND


@attrs.frozen
class ComponentExample:
    """A tiny, fast example for a component's conformance test.

    - ``config``: overrides of the default config (keep widths and sizes tiny);
    - ``ctx``: the build context, or ``None`` for the kind's default;
    - ``inputs``: positional arguments of ``forward`` / ``__call__``, or ``None`` for the kind's default
      (a callable ``(component) -> tuple`` is allowed when inputs depend on the built component);
    - ``prepare``: ``(tmp_dir) -> dict`` of extra config values (datasets write miniature files here);
    - ``check``: ``(component, output) -> None`` extra assertions.
    """

    config: dict[str, Any] = attrs.field(factory=dict)
    ctx: BuildContext | None = None
    inputs: Any = None
    prepare: Callable[[Path], dict[str, Any]] | None = None
    check: Callable[[Any, Any], None] | None = None


def _tiny_backbone():
    from hashkit.assemble import make_component

    return make_component("backbone", "tiny_cnn", {"width": 4, "until": "stage3"})


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def backbone_example() -> ComponentExample:
    g = _generator()
    return ComponentExample(inputs=lambda comp: (torch.randn(2, 3, 64, 64, generator=g), list(comp.stage_specs)))


def attention_example() -> ComponentExample:
    return ComponentExample(ctx=BuildContext(in_spec=FeatureSpec(16, 8)),
                            inputs=(torch.randn(2, 16, 8, 8, generator=_generator()),))


def channel_interaction_example() -> ComponentExample:
    return ComponentExample(ctx=BuildContext(in_spec=FeatureSpec(64, 16)),
                            inputs=(torch.randn(2, 64, 4, 4, generator=_generator()),))


def aggregation_example() -> ComponentExample:
    g = _generator()
    spec = FeatureSpec(16, 8)
    return ComponentExample(
        ctx=BuildContext(in_spec=spec, stages={"stage3": spec}, code_length=12, num_classes=5),
        inputs=(AggregationInput(features=torch.randn(2, 16, 8, 8, generator=g),
                                 stages={"stage3": torch.randn(2, 16, 8, 8, generator=g)},
                                 image=torch.randn(2, 3, 64, 64, generator=g)),),
    )


def hash_head_example() -> ComponentExample:
    return ComponentExample(ctx=BuildContext(code_length=12, num_classes=5, descriptor_dims={"global": 32}),
                            inputs=({"global": torch.randn(2, 32, generator=_generator())},))


def loss_example() -> ComponentExample:
    return ComponentExample(ctx=BuildContext(code_length=12, num_classes=5, descriptor_dims={"global": 32},
                                             head_classes=5),
                            inputs=lambda comp: (example_loss_inputs(),))


def protocol_example() -> ComponentExample:
    return ComponentExample(ctx=BuildContext(code_length=12, num_classes=3, num_train=24))


def dataset_example() -> ComponentExample:
    return ComponentExample()


def metric_example() -> ComponentExample:
    g = _generator()
    q = torch.randint(0, 2, (6, 12), generator=g).float() * 2 - 1
    d = torch.randint(0, 2, (20, 12), generator=g).float() * 2 - 1
    ql = torch.nn.functional.one_hot(torch.randint(0, 3, (6,), generator=g), 3).float()
    dl = torch.nn.functional.one_hot(torch.randint(0, 3, (20,), generator=g), 3).float()
    return ComponentExample(inputs=(RetrievalProblem(q, d, ql, dl),))


def default_example(kind: str) -> ComponentExample:
    """The kind's default tiny example (named in :data:`hashkit.interfaces.kinds.KIND_TABLE`)."""
    return globals()[KIND[kind].example]()


def example_loss_inputs(batch: int = 6, code_length: int = 12, num_classes: int = 5, dim: int = 32,
                        seed: int = 0) -> LossInputs:
    """Random loss inputs with gradients enabled on codes, logits, descriptor and class logits."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, code_length, generator=g).requires_grad_()
    labels = torch.nn.functional.one_hot(torch.arange(batch) % 3, num_classes).float()
    return LossInputs(
        codes=torch.tanh(logits),
        logits=logits,
        descriptor=torch.randn(batch, dim, generator=g).requires_grad_(),
        class_logits=torch.randn(batch, num_classes, generator=g).requires_grad_(),
        labels=labels,
        indices=torch.arange(batch),
    )


def _resolve_example(entry) -> ComponentExample:
    base = default_example(entry.kind)
    if entry.example is None:
        return base
    ex = entry.example()
    return attrs.evolve(ex, ctx=ex.ctx if ex.ctx is not None else base.ctx,
                        inputs=ex.inputs if ex.inputs is not None else base.inputs)


def check_component(kind: str, name: str) -> Any:
    """Build ``kind``/``name`` from its example and check its contract; returns the output."""
    from hashkit.assemble import make_component
    from hashkit.registry import get_registry

    entry = get_registry().get(kind, name)
    ex = _resolve_example(entry)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        config = dict(ex.config)
        if ex.prepare is not None:
            config.update(ex.prepare(Path(tmp)))
        comp = make_component(kind, name, config, ex.ctx or BuildContext())
        inputs = ex.inputs(comp) if callable(ex.inputs) else (ex.inputs or ())
        out = globals()[KIND[kind].check](comp, inputs, ex.ctx or BuildContext())
        if ex.check is not None:
            ex.check(comp, out)
        if kind in PER_IMAGE_KINDS:
            check_batch_independence(comp, inputs, f"{kind} {name!r}")
    return out


#: the kinds whose eval output for an image must not depend on its batch-mates (unless declared)
PER_IMAGE_KINDS = ("backbone", "attention", "channel_interaction", "aggregation", "hash_head")


def check_batch_independence(comp: Any, inputs: tuple, label: str) -> bool:
    """In eval mode, the first image of a batch gets the same outputs alone as in its batch.

    This is what makes ``encode`` give an image the same code whatever else is in the batch. Part of
    :func:`check_component` for the kinds in :data:`PER_IMAGE_KINDS`; a component that declares
    ``eval_batch_dependent`` (:mod:`hashkit.model.capabilities`) is exempt (returns False). Compared: backbone
    stages, attention features and maps, channel-interaction output, aggregation descriptors, hash-head
    logits, codes and class logits. An example batch of one image gets a second, mirrored image.
    """
    from hashkit.model.capabilities import batch_dependent_components

    if batch_dependent_components(comp):
        return False
    batch = _batch_size(inputs)
    expect(batch is not None, f"{label}: no batch dimension in the example inputs")
    if batch == 1:
        inputs, batch = _mirrored_second_row(inputs), 2
    was_training = comp.training
    comp.eval()
    try:
        with torch.no_grad():
            together = _per_image_outputs(comp(*inputs))
            alone = _per_image_outputs(comp(*_first_row(inputs, batch)))
    finally:
        comp.train(was_training)
    expect(together.keys() == alone.keys(), f"{label}: outputs {sorted(alone)} alone, {sorted(together)} in a batch")
    for key, value in together.items():
        # relative to the tensor's scale: deep untrained backbones reach large values, and batched convolutions
        # may sum in another order than a single image's
        same = value[:1].shape == alone[key].shape and \
            float((value[:1] - alone[key]).abs().max()) <= 1e-4 * float(value.abs().max()) + 1e-6
        expect(same, f"{label}: in eval mode, {key} of an image differs between a batch of {batch} and the image "
                     "alone; declare eval_batch_dependent if that is intended (hashkit.model.capabilities)")
    return True


def _mirrored_second_row(obj: Any) -> Any:
    """``obj`` with every one-row tensor given a second row: the first one mirrored along its last axis."""
    if isinstance(obj, torch.Tensor):
        return torch.cat([obj, obj.flip(-1)]) if obj.ndim >= 2 and obj.shape[0] == 1 else obj
    return _map_parts(obj, _mirrored_second_row)


def _map_parts(obj: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(obj, dict):
        return {k: fn(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(fn(v) for v in obj)
    if attrs.has(type(obj)):
        return attrs.evolve(obj, **{f.name: fn(getattr(obj, f.name)) for f in attrs.fields(type(obj)) if f.init})
    return obj


def _batch_size(obj: Any) -> int | None:
    if isinstance(obj, torch.Tensor):
        return obj.shape[0] if obj.ndim else None
    values = (list(obj.values()) if isinstance(obj, dict) else list(obj) if isinstance(obj, (list, tuple))
              else [getattr(obj, f.name) for f in attrs.fields(type(obj))] if attrs.has(type(obj)) else [])
    return next((b for b in map(_batch_size, values) if b is not None), None)


def _first_row(obj: Any, batch: int) -> Any:
    """``obj`` with every tensor of ``batch`` rows cut to its first row (tensors, dicts, lists, attrs classes)."""
    if isinstance(obj, torch.Tensor):
        return obj[:1] if obj.ndim and obj.shape[0] == batch else obj
    return _map_parts(obj, lambda v: _first_row(v, batch))


def _per_image_outputs(out: Any) -> dict[str, torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return {"output": out}
    if isinstance(out, AttentionOutput):
        return {k: v for k, v in (("features", out.features), ("maps", out.maps)) if v is not None}
    if isinstance(out, AggregationOutput):
        return {f"descriptor {k!r}": v for k, v in out.descriptors.items()}
    if isinstance(out, HeadOutput):
        return {k: v for k in ("logits", "codes", "class_logits") if (v := getattr(out, k)) is not None}
    return {f"stage {k!r}": v for k, v in out.items()}  # a backbone's {stage: map}


def expect(condition: Any, message: str) -> None:
    """An assertion that survives ``python -O``: raise ``AssertionError(message)`` when ``condition`` is false.
    Plugin authors can use it in their ``ComponentExample.check`` callbacks."""
    if not condition:
        raise AssertionError(message)


def _finite(t: torch.Tensor, what: str) -> None:
    expect(torch.isfinite(t).all(), f"{what} has non-finite values")


def check_backbone(comp, inputs, ctx):
    x, taps = inputs
    comp.eval()
    out = comp(x, taps)
    expect(list(out) == list(taps), f"backbone returned taps {list(out)}, asked for {list(taps)}")
    for tap, t in out.items():
        spec = comp.stage_specs[tap]
        expect(t.shape[1] == spec.channels, f"stage {tap}: {t.shape[1]} channels, declared {spec.channels}")
        if spec.stride:
            exp = -(-x.shape[-1] // spec.stride)
            expect(t.shape[-1] == exp, f"stage {tap}: width {t.shape[-1]}, stride {spec.stride} implies {exp}")
        _finite(t, f"stage {tap}")
    return out


def check_attention(comp, inputs, ctx):
    (x,) = inputs
    for mode in (True, False):
        comp.train(mode)
        out = comp(x)
        expect(isinstance(out, AttentionOutput), "attention must return AttentionOutput")
        want = (x.shape[0], comp.out_channels, *x.shape[2:])
        expect(out.features.shape == want, f"features {tuple(out.features.shape)}, expected {want}")
        if comp.num_maps:
            want = (x.shape[0], comp.num_maps, *x.shape[2:])
            expect(out.maps is not None and out.maps.shape == want,
                   f"maps {None if out.maps is None else tuple(out.maps.shape)}, expected {want}")
            expect((out.maps >= 0).all(), "attention maps must be non-negative")
        else:
            expect(out.maps is None, "an attention with num_maps = 0 must return maps = None")
        _finite(out.features, "attention features")
    comp.train()
    xg = x.clone().requires_grad_()
    out = comp(xg)
    total = out.features.sum() + (out.maps.sum() if out.maps is not None else 0)
    total.backward()
    expect(xg.grad is not None and torch.isfinite(xg.grad).all(), "attention is not differentiable w.r.t. its input")
    return out


def check_channel_interaction(comp, inputs, ctx):
    (x,) = inputs
    xg = x.clone().requires_grad_()
    out = comp(xg)
    expect(out.shape == x.shape, f"channel interaction changed the shape {tuple(x.shape)} -> {tuple(out.shape)}")
    out.sum().backward()
    expect(xg.grad is not None and torch.isfinite(xg.grad).all(), "channel interaction is not differentiable")
    return out


def check_aggregation(comp, inputs, ctx):
    (inp,) = inputs
    out = comp(inp)
    expect(isinstance(out, AggregationOutput), "aggregation must return AggregationOutput")
    expect(list(out.descriptors) == list(comp.descriptor_dims),
           f"descriptors {list(out.descriptors)} != declared {list(comp.descriptor_dims)}")
    for k, t in out.descriptors.items():
        expect(t.shape == (inp.features.shape[0], comp.descriptor_dims[k]), f"descriptor {k}: {tuple(t.shape)}")
        _finite(t, f"descriptor {k}")
    return out


def check_hash_head(comp, inputs, ctx):
    (desc,) = inputs
    out = comp(desc)
    b = next(iter(desc.values())).shape[0]
    expect(isinstance(out, HeadOutput), "a hash head must return HeadOutput")
    want = (b, comp.code_length)
    expect(out.codes.shape == want and out.logits.shape == want,
           f"codes {tuple(out.codes.shape)} and logits {tuple(out.logits.shape)}, expected {want}")
    expect(out.codes.abs().max() <= 1 + 1e-6, "relaxed codes must lie in [-1, 1]")
    if comp.num_classes:
        expect(out.class_logits is not None and out.class_logits.shape == (b, comp.num_classes),
               f"class logits must be {(b, comp.num_classes)} for a head with {comp.num_classes} classes")
    return out


def check_loss(comp, inputs, ctx):
    (li,) = inputs
    res = comp(li)
    expect(isinstance(res, LossResult), "a loss must return LossResult")
    expect(res.value.ndim == 0 and torch.isfinite(res.value), f"loss value {res.value}")
    for k, v in res.parts.items():
        expect(v.ndim == 0, f"loss part {k} is not a scalar")
    # every model output the loss names in ``requires`` must receive a finite, non-zero gradient
    named = [n for n in getattr(comp, "requires", ()) if n in _GRADIENT_INPUTS and getattr(li, n) is not None]
    if named:
        expect(res.value.requires_grad, f"loss value has no gradient, but the loss reads {named}")
        grads = torch.autograd.grad(res.value, [getattr(li, n) for n in named], allow_unused=True)
        for n, grad in zip(named, grads):
            expect(grad is not None, f"the loss reads {n!r} but its value does not depend on it")
            _finite(grad, f"gradient w.r.t. {n}")
            expect(grad.abs().sum() > 0, f"zero gradient w.r.t. {n!r} on the example")
    return res


#: the loss inputs a gradient check applies to (labels, indices and protocol state are data)
_GRADIENT_INPUTS = ("codes", "logits", "descriptor", "class_logits")


def check_protocol(comp, inputs, ctx):
    n = ctx.num_train or 24
    labels = torch.nn.functional.one_hot(torch.arange(n) % (ctx.num_classes or 3), ctx.num_classes or 3).float()
    g = torch.Generator().manual_seed(0)
    comp.setup(labels, g)
    order = comp.begin_round(0, g)
    expect(order.dtype == torch.int64 and order.ndim == 1 and len(order) > 0,
           "begin_round must return a non-empty 1-D int64 tensor of training indices")
    idx = order[:4]
    state = comp.batch_state(idx)
    expect(isinstance(state, dict), "batch_state must return a dict")
    comp.observe(idx, torch.tanh(torch.randn(len(idx), ctx.code_length or 12)))
    comp.end_round()
    sd = comp.state_dict()
    expect(all(isinstance(v, torch.Tensor) for v in sd.values()), "protocol state must be tensors")
    comp.load_state_dict(sd)
    db = comp.database_codes()
    if db is not None:
        expect(db.shape == (n, ctx.code_length), f"database codes {tuple(db.shape)}, expected {(n, ctx.code_length)}")
    return sd


def check_dataset(comp, inputs, ctx):
    expect(isinstance(comp, RetrievalData), "a dataset factory must return RetrievalData")
    for split in ("train", "query", "database"):
        s = comp.split(split)
        expect(s.targets.shape == (len(s), comp.num_classes),
               f"split {split}: targets {tuple(s.targets.shape)}, expected {(len(s), comp.num_classes)}")
        if len(s):
            img = s.reader(s.items[0])
            expect(img.mode == "RGB", f"reader returned mode {img.mode}")
    return comp


def check_metric(comp, inputs, ctx):
    (problem,) = inputs
    out = comp(problem)
    expect(isinstance(out, dict) and out, "a metric returns a non-empty dict")
    return out
