"""GS-MoE: weakly-supervised video anomaly detection with class experts and temporal Gaussian splatting.

>>> from moe_zoo import vad
>>> result = vad.predict("clip.mp4", plot="clip.png")   # shipped weights, offline
>>> result.frame_scores, result.segments, result.favoured_class, result.warnings
>>> camera = vad.calibrate("normal_day.mp4")            # one camera's normal baseline
>>> vad.predict("today.mp4", calibration=camera)

Names are imported on first use (PEP 562), so ``moe-zoo vad ...`` can check its arguments
before torch is loaded.
"""

from __future__ import annotations

import sys
import types

from moe_zoo.core.lazy import lazy_exports

_EXPORTS = {
    "BuiltinConfig": "builtin", "load_builtin": "builtin",
    "Calibration": "calibration",
    "FeatureSet": "data", "VideoFeatures": "data", "load_features_list": "data",
    "evaluate": "evaluate",
    "FeatureConfig": "features", "MobileNetMotionExtractor": "features", "SnippetExtractor": "features",
    "GSMoE": "model", "GSMoEConfig": "model", "MILConfig": "model", "MILRanking": "model",
    "Segment": "predict", "VADResult": "predict", "calibrate": "predict", "load": "predict", "predict": "predict",
    "TrainConfig": "train", "train": "train",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


class _Package(types.ModuleType):
    """Importing a submodule sets it as an attribute of its package; ``predict``, ``train`` and
    ``evaluate`` are both submodules and public functions, and the functions win."""

    def __setattr__(self, name: str, value) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
