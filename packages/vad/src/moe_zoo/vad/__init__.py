"""GS-MoE: weakly-supervised video anomaly detection with class experts and temporal Gaussian splatting.

>>> from moe_zoo import vad
>>> result = vad.predict("clip.mp4", plot="clip.png")   # shipped weights, offline
>>> result.frame_scores, result.segments, result.favoured_class
"""

from moe_zoo.vad.builtin import BuiltinConfig, load_builtin
from moe_zoo.vad.data import FeatureSet, VideoFeatures, load_features_list
from moe_zoo.vad.evaluate import evaluate
from moe_zoo.vad.features import FeatureConfig, MobileNetMotionExtractor, SnippetExtractor
from moe_zoo.vad.model import GSMoE, GSMoEConfig, MILConfig, MILRanking
from moe_zoo.vad.predict import Segment, VADResult, load, predict
from moe_zoo.vad.train import TrainConfig, train

__all__ = [
    "BuiltinConfig", "FeatureConfig", "FeatureSet", "GSMoE", "GSMoEConfig", "MILConfig", "MILRanking",
    "MobileNetMotionExtractor", "Segment", "SnippetExtractor", "TrainConfig", "VADResult", "VideoFeatures",
    "evaluate", "load", "load_builtin", "load_features_list", "predict", "train",
]
