"""DriftMoE: a neural router co-trained with Hoeffding-tree experts on drifting data streams.

>>> from moe_zoo.streams import DriftMoEClassifier, make_stream, prequential
"""

from moe_zoo.streams.data import get_stream_spec, list_streams, make_stream
from moe_zoo.streams.model import DriftMoEClassifier, DriftMoEConfig

__all__ = ["DriftMoEClassifier", "DriftMoEConfig", "get_stream_spec", "list_streams", "make_stream"]
