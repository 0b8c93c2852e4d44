"""``rparis6k`` (revisited Paris, Radenović et al. CVPR 2018) and ``paris6k`` (original Paris).

- ``rparis6k``: ``<root>/gnd_rparis6k.pkl`` (or ``.json``) and ``<root>/jpg/<name>.jpg``; 70 queries,
  6,322 database images; Easy / Medium / Hard with junk (metric ``revisited_map``).
- ``paris6k``: ``<root>/paris_120310/<query>_{query,good,ok,junk}.txt`` and the original archive layout
  ``<root>/paris/<landmark>/<name>.jpg``; 55 queries, 6,412 files of which 20 are corrupt (6,392 usable:
  set ``data.skip_bad_images`` or remove them, which also changes the count check); positives good + ok.

Splits, targets and formats as in :mod:`hashkit_plugins.datasets.roxford5k`.
"""

from __future__ import annotations

from typing import Literal

import attrs

from hashkit.interfaces import BuildContext, RetrievalData
from hashkit.testing import ComponentExample
from hashkit_plugins.datasets._landmarks import (
    ClassicConfig,
    RevisitedConfig,
    build_classic,
    build_revisited,
    write_tiny_classic,
    write_tiny_revisited,
)


@attrs.frozen
class RParis6kConfig(RevisitedConfig):
    root: str = "data/rparis6k"
    gnd: str = "gnd_rparis6k.pkl"


@attrs.frozen
class Paris6kConfig(ClassicConfig):
    root: str = "data/paris6k"
    gt_dir: str = "paris_120310"
    images: str = "paris"
    layout: Literal["flat", "by_landmark"] = "by_landmark"
    query_prefix: str = ""


def build_rparis6k(cfg: RParis6kConfig, ctx: BuildContext) -> RetrievalData:
    """Revisited Paris (RParis6k): 70 queries, 6,322 images, Easy/Medium/Hard ground truth with junk."""
    return build_revisited(cfg, "rparis6k", queries=70, database=6322)


def build_paris6k(cfg: Paris6kConfig, ctx: BuildContext) -> RetrievalData:
    """Original Paris6k: 55 queries, 6,412 images (6,392 usable), good/ok/junk ground-truth files."""
    return build_classic(cfg, "paris6k", queries=55, database=(6412, 6392))


def components(register):
    register("dataset", "rparis6k", build_rparis6k, config=RParis6kConfig,
             example=lambda: ComponentExample(prepare=lambda tmp: write_tiny_revisited(tmp, "gnd_rparis6k.pkl")))
    register("dataset", "paris6k", build_paris6k, config=Paris6kConfig,
             example=lambda: ComponentExample(prepare=lambda tmp: write_tiny_classic(
                 tmp, "paris", "paris_120310", "", "by_landmark")))
