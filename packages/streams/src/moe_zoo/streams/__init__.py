"""DriftMoE: a neural router co-trained with Hoeffding-tree experts on drifting data streams.

>>> from moe_zoo.streams import DriftMoEClassifier, make_stream, prequential
>>> result = prequential(DriftMoEClassifier(seed=0), make_stream("sea_a", length=1000, seed=0))
>>> result.n, 0.5 < result.accuracy <= 1.0
(1000, True)
"""

from moe_zoo.streams.baselines import list_benchmark_models, make_model
from moe_zoo.streams.data import get_stream_spec, list_streams, make_stream, open_stream
from moe_zoo.streams.evaluate import PrequentialResult, prequential
from moe_zoo.streams.metrics import KappaM, KappaT
from moe_zoo.streams.model import DriftMoEClassifier, DriftMoEConfig
from moe_zoo.streams.readers import iter_arff, iter_csv

__all__ = [
    "DriftMoEClassifier", "DriftMoEConfig", "KappaM", "KappaT", "PrequentialResult", "get_stream_spec", "iter_arff",
    "iter_csv", "list_benchmark_models", "list_streams", "make_model", "make_stream", "open_stream", "prequential",
]
