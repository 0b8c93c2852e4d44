"""Component interfaces: one module per component kind, each with its tensor contract.

The kinds, in the order data flows through a model:

========================  ===========================================  ==================================
kind                      interface                                    module
========================  ===========================================  ==================================
``backbone``              :class:`Backbone`                            :mod:`hashkit.interfaces.backbone`
``attention``             :class:`Attention`                           :mod:`hashkit.interfaces.attention`
``channel_interaction``   :class:`ChannelInteraction`                  :mod:`.channel_interaction`
``aggregation``           :class:`Aggregation`                         :mod:`hashkit.interfaces.aggregation`
``hash_head``             :class:`HashHead`                            :mod:`hashkit.interfaces.hash_head`
``loss``                  :class:`Loss`                                :mod:`hashkit.interfaces.loss`
``training_protocol``     :class:`TrainingProtocol`                    :mod:`hashkit.interfaces.protocol`
``dataset``               :class:`RetrievalData` (returned by factory) :mod:`hashkit.interfaces.dataset`
``metric``                :class:`Metric`                              :mod:`hashkit.interfaces.metric`
========================  ===========================================  ==================================

Shared by every kind: :class:`BuildContext` (what a factory learns about its neighbours),
:class:`ComponentRef` with :func:`nested` / :func:`nested_list` (components inside components),
:class:`FeatureSpec` and :class:`StageBuilder`.

Names are imported on first use, so the torch-free parts (build context, component references, feature
specs, the kinds) can be used without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> submodule of hashkit.interfaces that defines it
_WHERE = {
    "Aggregation": "aggregation", "AggregationInput": "aggregation", "AggregationOutput": "aggregation",
    "Attention": "attention", "AttentionOutput": "attention",
    "Backbone": "backbone",
    "BuildContext": "build_context",
    "ChannelInteraction": "channel_interaction",
    "ComponentRef": "component_ref", "nested": "component_ref", "nested_list": "component_ref",
    "ImageReader": "dataset", "RetrievalData": "dataset", "Split": "dataset", "ClassSplit": "dataset",
    "OpenSet": "dataset",
    "FeatureSpec": "feature_spec",
    "HashHead": "hash_head", "HeadOutput": "hash_head",
    "KINDS": "kinds",
    "EpochStart": "loss", "Loss": "loss", "LossInputs": "loss", "LossResult": "loss",
    "Metric": "metric", "RankingMetric": "metric", "RankingRequest": "metric", "RetrievalProblem": "metric",
    "TrainingProtocol": "protocol",
    "StageBuilder": "stage_builder",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'hashkit.interfaces' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hashkit.interfaces.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted((*globals(), *_WHERE))
