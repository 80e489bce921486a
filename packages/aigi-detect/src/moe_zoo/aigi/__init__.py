"""OmniAID: decoupled semantic experts and a universal artifact expert for AI-generated image detection.

    from moe_zoo import aigi
    p = aigi.predict("photo.jpg")          # shipped weights (MobileNetV2 backbone)
    p.prob_fake, p.experts                 # probability of AI-generated; experts chosen and their gates
"""

from moe_zoo.aigi.builtin import BuiltinConfig, build_builtin, load_builtin
from moe_zoo.aigi.data import (
    ImageRecord,
    ImageSet,
    load_records,
    read_binary_folders,
    read_chameleon,
    read_genimage,
)
from moe_zoo.aigi.images import load_image
from moe_zoo.aigi.metrics import detection_metrics
from moe_zoo.aigi.model import DetectorOutput, OmniAID, OmniAIDConfig
from moe_zoo.aigi.predict import Prediction, evaluate, load, predict, score
from moe_zoo.aigi.svd import SVDExpertLinear
from moe_zoo.aigi.train import TrainConfig, TrainResult, train

__all__ = [
    "BuiltinConfig", "DetectorOutput", "ImageRecord", "ImageSet", "OmniAID", "OmniAIDConfig", "Prediction",
    "SVDExpertLinear", "TrainConfig", "TrainResult", "build_builtin", "detection_metrics", "evaluate", "load",
    "load_builtin", "load_image", "load_records", "predict", "read_binary_folders", "read_chameleon",
    "read_genimage", "score", "train",
]
