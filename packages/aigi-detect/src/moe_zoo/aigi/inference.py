"""Inference copies of a detector: batch norms folded into the preceding maps, channels-last memory.

A batch norm in inference mode is the per-channel affine map ``z -> a z + c`` with ``a = gamma /
sqrt(running_var + eps)`` and ``c = beta - a running_mean``. Following a convolution ``z = W * x + b``
it folds into ``W' = diag(a) W``, ``b' = a b + c``; following an SVD-expert layer into ``W_main``,
every ``U_k`` and the bias (:meth:`~moe_zoo.aigi.svd.SVDExpertLinear.fold_output_affine`). Both are
exact algebra; outputs differ from the unfolded network by float rounding only. Together with the
router-grouped merged weights of :meth:`~moe_zoo.aigi.model.OmniAID.adapted_features` this turns
each pass into plain convolutions, which oneDNN runs fastest in channels-last layout.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from moe_zoo.aigi.model import OmniAID
from moe_zoo.aigi.svd import SVDExpertLinear


@torch.no_grad()
def _fold(layer: nn.Module, norm: nn.BatchNorm2d) -> None:
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    if isinstance(layer, SVDExpertLinear):
        layer.fold_output_affine(scale, shift)
        return
    layer.weight.mul_(scale.view(-1, 1, 1, 1))
    bias = layer.bias if layer.bias is not None else torch.zeros_like(shift)
    layer.bias = nn.Parameter(bias * scale + shift, requires_grad=False)


def fold_batchnorms(network: nn.Module) -> int:
    """Fold, in place, every ``BatchNorm2d`` that directly follows a ``Conv2d`` or an SVD-expert
    layer inside an ``nn.Sequential`` (torchvision's layout) into that layer, replacing the norm by
    ``nn.Identity``; returns how many were folded. Norms in training mode are left alone."""
    folded = 0
    for seq in [m for m in network.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            layer, norm = seq[i], seq[i + 1]
            if (isinstance(norm, nn.BatchNorm2d) and not norm.training and norm.track_running_stats
                    and isinstance(layer, nn.Conv2d | SVDExpertLinear)):
                _fold(layer, norm)
                seq[i + 1] = nn.Identity()
                folded += 1
    return folded


def inference_copy(model: OmniAID) -> OmniAID:
    """A frozen, evaluation-only copy of ``model`` for fast scoring: batch norms folded in both
    backbone passes, convolution weights channels-last. Its forward gives the same outputs as
    ``model``'s up to float rounding; its state dict is not the model's (``U_k`` scaled): do not
    save or train it."""
    cache = model.__dict__.pop("_inference_cache", None)
    try:
        fast = copy.deepcopy(model).eval()
    finally:
        if cache is not None:
            model.__dict__["_inference_cache"] = cache
    for param in fast.parameters():
        param.requires_grad_(False)
    fold_batchnorms(fast.frozen)
    fold_batchnorms(fast.adapted)
    return fast.to(memory_format=torch.channels_last)


def _state_key(model: OmniAID) -> tuple:
    """Changes whenever a tensor of ``model`` is replaced or modified in place (training steps,
    ``load_state_dict``, ``.to``)."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


def cached_inference_copy(model: OmniAID) -> OmniAID:
    """:func:`inference_copy`, built once and reused while ``model``'s tensors stay unchanged (a
    deep copy costs about as much as scoring ten images at 224 px)."""
    key = _state_key(model)
    cached = model.__dict__.get("_inference_cache")
    if cached is None or cached[0] != key:
        cached = (key, inference_copy(model))
        model.__dict__["_inference_cache"] = cached
    return cached[1]
