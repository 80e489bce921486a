"""Image metrics of the paper: PSNR and SSIM (11-tap Gaussian window, sigma 1.5).

SSIM is scikit-image's ``structural_similarity`` with the Gaussian weighting of Wang et al.
(``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``), the setting Mega-NeRF and
Switch-NeRF evaluate with. LPIPS needs pretrained AlexNet/VGG weights that no offline package
here ships, so it is not reported.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def psnr(pred: Tensor, target: Tensor) -> float:
    """``-10 log10(MSE)`` for images in ``[0, 1]``."""
    mse = torch.mean((pred.float() - target.float()) ** 2).clamp_min(1e-10)
    return float(-10 * torch.log10(mse))


def ssim(pred: Tensor, target: Tensor) -> float:
    """Mean SSIM of two ``[H, W, 3]`` images in ``[0, 1]``."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64),
                                       channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))
