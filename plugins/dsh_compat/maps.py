"""Reference state-dict names -> hashkit model names, one prefix table per method.

Each table lists ``(reference prefix, hashkit prefix)`` pairs; a name maps by its longest matching prefix, the
rest of the name is kept. ``{a}`` in a hashkit prefix is the index of the method's attention in
``[[model.attention]]`` (0 in the recipes). ``dropped`` lists reference prefixes that have no hashkit
counterpart and are skipped when loading (A2-Net's untrained image generators). A ``module.`` prefix
(``nn.DataParallel``) is removed first.

Sources: aassxun/DSH_Analysis @ 44271bc (``models/A_2_net.py``, ``models/exchnet.py``, ``models/agmh.py``,
``models/DAHNET.py``); ludics/fghash @ 077160f ``models/exchnet.py`` has ExchNet's names too.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class NameMap:
    #: (reference prefix, hashkit prefix) pairs
    prefixes: tuple[tuple[str, str], ...]
    #: reference prefixes without a hashkit counterpart (skipped when loading)
    dropped: tuple[str, ...] = ()

    def to_hashkit(self, name: str, attention_index: int = 0) -> str | None:
        name = name.removeprefix("module.")
        best = max((p for p in self.prefixes if _matches(name, p[0])), key=lambda p: len(p[0]), default=None)
        if best is None:
            return None
        return best[1].format(a=attention_index) + name[len(best[0]):]

    def to_reference(self, name: str, attention_index: int = 0) -> str | None:
        pairs = [(ref, own.format(a=attention_index)) for ref, own in self.prefixes]
        best = max((p for p in pairs if _matches(name, p[1])), key=lambda p: len(p[1]), default=None)
        if best is None:
            return None
        return best[0] + name[len(best[1]):]

    def is_dropped(self, name: str) -> bool:
        return name.removeprefix("module.").startswith(self.dropped)


def _matches(name: str, prefix: str) -> bool:
    """``prefix`` ending in "." matches names under it; otherwise the whole name must equal it."""
    return name.startswith(prefix) if prefix.endswith(".") else name == prefix


_TRUNK_AND_BRANCHES = (
    ("backbone.", "backbone."),
    ("refine_global.", "aggregation.refine_global."),
    ("refine_local.", "aggregation.refine_local."),
    ("attention.layer4.0.", "attention.{a}.trunk.0."),
    ("attention.layer4.1.", "attention.{a}.trunk.1."),
    ("attention.layer4.2.", "attention.{a}.trunk.2."),
    ("attention.layer4.3.", "attention.{a}.trunk.3."),
    ("attention.layer4.4.", "attention.{a}.trunk.4."),
    ("attention.layer4.5.", "attention.{a}.head."),
)

REFERENCE_MAPS: dict[str, NameMap] = {
    # recipes/a2net.toml (with num_maps = "code_length" for a DSH_Analysis checkpoint)
    "a2net": NameMap(
        prefixes=_TRUNK_AND_BRANCHES + (("W", "hash_head.hash.0.weight"),),
        dropped=("encoder.", "encoder2.", "netG.", "netG2."),
    ),
    # recipes/exchnet.toml
    "exchnet": NameMap(prefixes=_TRUNK_AND_BRANCHES + (("hash_layer.0.", "hash_head.hash.0."),)),
    # recipes/agmh.toml
    "agmh": NameMap(prefixes=(
        ("backbone.", "backbone."),
        ("refine.conv_list.", "aggregation.descriptors."),
        ("refine.attn_list.", "aggregation.siea."),
        ("hash_map", "hash_head.hash.0.weight"),
    )),
    # recipes/dahnet.toml
    "dahnet": NameMap(prefixes=(
        ("backbone.", "backbone."),
        ("attention.", "attention.{a}."),
        ("trans.layer4.0.", "aggregation.local_stem."),
        ("refine_global.", "aggregation.refine_global."),
        ("refine_local.", "aggregation.refine_local."),
        ("refine_local.layer4.1.channel_mixer.", "aggregation.refine_local.layer4.1."),
        ("W_G", "hash_head.W_G"),
        ("W_L1", "hash_head.W_L1"),
        ("W_L2", "hash_head.W_L2"),
        ("W_L3", "hash_head.W_L3"),
        ("cls.", "hash_head.cls."),
        ("cls_loc.", "hash_head.cls_loc."),
    )),
}
