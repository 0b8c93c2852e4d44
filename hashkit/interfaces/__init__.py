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
"""

from hashkit.interfaces.aggregation import Aggregation, AggregationInput, AggregationOutput
from hashkit.interfaces.attention import Attention, AttentionOutput
from hashkit.interfaces.backbone import Backbone
from hashkit.interfaces.build_context import BuildContext
from hashkit.interfaces.channel_interaction import ChannelInteraction
from hashkit.interfaces.dataset import ClassSplit, ImageReader, OpenSet, RetrievalData, Split
from hashkit.interfaces.feature_spec import FeatureSpec
from hashkit.interfaces.hash_head import HashHead, HeadOutput
from hashkit.interfaces.loss import Loss, LossInputs, LossResult
from hashkit.interfaces.metric import Metric, RetrievalProblem
from hashkit.interfaces.protocol import TrainingProtocol

from hashkit.kinds import KINDS

__all__ = [
    "KINDS",
    "Aggregation",
    "AggregationInput",
    "AggregationOutput",
    "Attention",
    "AttentionOutput",
    "Backbone",
    "BuildContext",
    "ChannelInteraction",
    "ClassSplit",
    "FeatureSpec",
    "HashHead",
    "HeadOutput",
    "ImageReader",
    "Loss",
    "LossInputs",
    "LossResult",
    "Metric",
    "OpenSet",
    "RetrievalData",
    "RetrievalProblem",
    "Split",
    "TrainingProtocol",
]
