"""Retrieval evaluation: mAP (stable and tie-aware), mAP@k, precision/recall, Hamming-ball curves, reports.

Entry point: :func:`evaluate` (see docs/evaluation.md for every definition).
"""

from hashkit.evaluation.api import MAP_NORMS, METRIC_NAMES, evaluate, evaluate_hamming_packed

__all__ = ["evaluate", "evaluate_hamming_packed", "METRIC_NAMES", "MAP_NORMS"]
