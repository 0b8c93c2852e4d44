"""Retrieval evaluation: mAP (stable and tie-aware), mAP@k, precision/recall, Hamming-ball curves, reports.

:func:`evaluate` is the streamed ranking engine (see docs/evaluation.md for every definition);
:func:`hashkit.evaluation.scoring.score` runs registered metric components (what ``[eval] metrics`` names)
on a problem, sharing engine passes between ranking metrics.
"""

from hashkit.evaluation.api import MAP_NORMS, METRIC_NAMES, evaluate, evaluate_hamming_packed

__all__ = ["evaluate", "evaluate_hamming_packed", "METRIC_NAMES", "MAP_NORMS"]
