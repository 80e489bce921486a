"""EvidenceMoE for fluorescence LiDAR: depth and lifetime from TCSPC histograms in tissue.

>>> from moe_zoo import flidar
>>> data = flidar.simulate(8, seed=0)          # diffusion-theory FLiDAR histograms with truth
>>> result = flidar.predict(data.histograms)    # shipped EvidenceMoE weights
>>> result.depth_mm.shape, result.lifetime_ns.shape
(torch.Size([8]), torch.Size([8]))
"""

from moe_zoo.flidar.data import read_tcspc, write_tcspc
from moe_zoo.flidar.model import EvidenceMoE, EvidenceMoEConfig, SingleRegressor
from moe_zoo.flidar.predict import FLiDARPrediction, load, predict
from moe_zoo.flidar.simulator import SimulationConfig, TCSPCData, expected_histograms, simulate
from moe_zoo.flidar.train import TrainConfig, evaluate_model, train

__all__ = [
    "EvidenceMoE", "EvidenceMoEConfig", "FLiDARPrediction", "SimulationConfig", "SingleRegressor", "TCSPCData",
    "TrainConfig", "evaluate_model", "expected_histograms", "load", "predict", "read_tcspc", "simulate", "train",
    "write_tcspc",
]
