"""``roxford5k`` (revisited Oxford, Radenović et al. CVPR 2018) and ``oxford5k`` (original Oxford buildings).

- ``roxford5k``: ``<root>/gnd_roxford5k.pkl`` (or ``.json``) and ``<root>/jpg/<name>.jpg``; 70 queries,
  4,993 database images; Easy / Medium / Hard with junk (metric ``revisited_map``).
- ``oxford5k``: ``<root>/gt_files_170407/<query>_{query,good,ok,junk}.txt`` and
  ``<root>/oxbuild_images/*.jpg``; 55 queries, 5,062 images; positives good + ok, junk removed (the
  ``revisited_map`` protocols easy and medium both give the original mAP).

Splits: ``query`` (cropped to the query box), ``database``, and ``train`` = ``database`` (the landmark
protocol trains on another set such as SfM-120k; training here is only for smoke tests). Targets use the
revisited label encoding of :mod:`hashkit.evaluation.revisited` (3·Q classes). Formats and the restricted
pickle reader: :mod:`hashkit_plugins.datasets._landmarks`.
"""

from __future__ import annotations

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
class ROxford5kConfig(RevisitedConfig):
    root: str = "data/roxford5k"
    gnd: str = "gnd_roxford5k.pkl"


@attrs.frozen
class Oxford5kConfig(ClassicConfig):
    root: str = "data/oxford5k"
    gt_dir: str = "gt_files_170407"
    images: str = "oxbuild_images"
    query_prefix: str = "oxc1_"


def build_roxford5k(cfg: ROxford5kConfig, ctx: BuildContext) -> RetrievalData:
    """Revisited Oxford (ROxford5k): 70 queries, 4,993 images, Easy/Medium/Hard ground truth with junk."""
    return build_revisited(cfg, "roxford5k", queries=70, database=4993)


def build_oxford5k(cfg: Oxford5kConfig, ctx: BuildContext) -> RetrievalData:
    """Original Oxford5k: 55 queries, 5,062 images, good/ok/junk ground-truth files."""
    return build_classic(cfg, "oxford5k", queries=55, database=(5062,))


def components(register):
    register("dataset", "roxford5k", build_roxford5k, config=ROxford5kConfig,
             example=lambda: ComponentExample(prepare=lambda tmp: write_tiny_revisited(tmp, "gnd_roxford5k.pkl")))
    register("dataset", "oxford5k", build_oxford5k, config=Oxford5kConfig,
             example=lambda: ComponentExample(prepare=lambda tmp: write_tiny_classic(
                 tmp, "oxbuild_images", "gt_files_170407", "oxc1_", "flat")))
