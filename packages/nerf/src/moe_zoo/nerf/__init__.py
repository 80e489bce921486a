"""Switch-NeRF++: a heterogeneous mixture of hash experts with a hash gate, for large-scale NeRF.

>>> from moe_zoo import nerf
>>> scene = nerf.load_scene("builtin")                      # offline city scene (rendered once, cached)
>>> model = nerf.load()                                      # shipped weights for that scene
>>> images = nerf.render(model, nerf.Cameras.from_scene(scene, scene.val[:1]))
>>> images.shape
torch.Size([1, 64, 64, 3])

Names are imported on first use, so ``moe-zoo nerf ...`` checks its arguments before torch loads.
"""

from moe_zoo.core.lazy import lazy_exports

_EXPORTS = {
    "Cameras": "renderer",
    "HashNeRF": "model",
    "Scene": "data",
    "SwitchNeRF": "model",
    "SwitchNeRFConfig": "model",
    "SwitchNeRFv1": "model",
    "TrainConfig": "training",
    "TrainResult": "training",
    "builtin_scene": "scene",
    "evaluate": "training",
    "export": "meshing",
    "flythrough": "renderer",
    "load": "predict",
    "load_scene": "data",
    "read_mega_nerf": "data",
    "read_transforms": "data",
    "render": "renderer",
    "train": "training",
    "write_flythrough": "renderer",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
