"""A timm-style model registry shared by every moe-zoo package.

Packages register models when their module is imported, and announce that module through the
``moe_zoo.models`` entry-point group, so :func:`list_models` and :func:`create_model` see
every installed package without the core knowing about them::

    # packages/vad/pyproject.toml
    [project.entry-points."moe_zoo.models"]
    vad = "moe_zoo.vad.model"

    # moe_zoo/vad/model.py
    @register_model("gsmoe-ucf", config=GSMoEConfig(), weights="moe_zoo.vad:weights/gsmoe.safetensors")
    class GSMoE(nn.Module): ...
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.metadata
import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from moe_zoo.core.config import Config
from moe_zoo.core.errors import InputError, UnknownModelError
from moe_zoo.core.runtime import get_logger

MODELS_ENTRY_POINT_GROUP = "moe_zoo.models"
_log = get_logger(__name__)
_F = TypeVar("_F", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model name."""

    name: str
    factory: Callable[..., nn.Module]
    default_config: Config | None
    weights: str | None
    summary: str

    @property
    def has_weights(self) -> bool:
        return self.weights is not None

    def weights_path(self) -> Path:
        """Resolve ``"package:relative/path"`` to a file inside the installed package."""
        if self.weights is None:
            raise InputError(f"model {self.name!r} ships no pretrained weights")
        package, _, relative = self.weights.partition(":")
        return Path(str(importlib.resources.files(package).joinpath(relative)))


_REGISTRY: dict[str, ModelSpec] = {}
_plugins_loaded = False


def register_model(
    name: str,
    *,
    config: Config | None = None,
    weights: str | None = None,
    summary: str = "",
) -> Callable[[_F], _F]:
    """Register a model factory (a class or function) under ``name``.

    ``factory(config)`` is called when a default ``config`` is given (overrides are applied
    to it with :meth:`Config.replace`), else ``factory(**overrides)``. ``weights`` is
    ``"python.package:relative/file.safetensors"``, a checkpoint shipped as package data.
    """

    def decorator(factory: _F) -> _F:
        existing = _REGISTRY.get(name)
        if existing is not None and _qualname(existing.factory) != _qualname(factory):
            raise ValueError(f"model name {name!r} is already registered by {_qualname(existing.factory)}")
        doc = (factory.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ModelSpec(name, factory, config, weights, summary or (doc[0] if doc else ""))
        return factory

    return decorator


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def load_plugins() -> None:
    """Import every module announced in the ``moe_zoo.models`` entry-point group (once)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for entry_point in importlib.metadata.entry_points(group=MODELS_ENTRY_POINT_GROUP):
        try:
            importlib.import_module(entry_point.value.partition(":")[0])
        except Exception as err:  # a broken optional package must not hide the others
            _log.warning("could not load models from %s (%s): %s", entry_point.name, entry_point.value, err)


def list_models(pattern: str | None = None, *, pretrained: bool = False) -> list[str]:
    """Sorted registered names, optionally filtered by a glob ``pattern`` or shipped weights."""
    load_plugins()
    names = sorted(n for n, s in _REGISTRY.items() if s.has_weights or not pretrained)
    return names if pattern is None else [n for n in names if fnmatch.fnmatch(n, pattern)]


def get_model_spec(name: str) -> ModelSpec:
    load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)
        close += [n for n in sorted(_REGISTRY) if name in n and n not in close][:5]
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint} ({len(_REGISTRY)} registered; run `moe-zoo list`)"
        ) from None


def create_model(name: str, pretrained: bool = False, **overrides: Any) -> nn.Module:
    """Build a registered model; ``pretrained=True`` loads the package's shipped weights.

    With ``pretrained=True`` the architecture comes from the checkpoint's stored config
    (``overrides`` still apply, and a change that alters parameter shapes fails clearly).
    """
    spec = get_model_spec(name)
    if pretrained:
        return _create_pretrained(spec, overrides)
    model = spec.factory(spec.default_config.replace(**overrides)) if spec.default_config is not None \
        else spec.factory(**overrides)
    model.registry_name = name  # type: ignore[assignment]  # recorded by save_checkpoint
    return model


def _create_pretrained(spec: ModelSpec, overrides: dict[str, Any]) -> nn.Module:
    """The model from the shipped checkpoint's stored config (+ ``overrides``), built under the
    checkpoint's allocation limit and loaded with its weights."""
    from moe_zoo.core.checkpoint import (
        CheckpointCorruptError,
        build_from_checkpoint,
        load_checkpoint,
    )

    path = spec.weights_path()
    checkpoint = load_checkpoint(path)
    config = spec.default_config
    if config is not None and checkpoint.config is not None:
        try:
            config = type(config).from_dict(checkpoint.config)
        except InputError as err:
            raise CheckpointCorruptError(f"checkpoint {path}: its config is invalid: {err}") from None

    if config is not None:
        config = config.replace(**overrides)  # an unknown or ill-typed override is the caller's InputError

    def build() -> nn.Module:
        model = spec.factory(config) if config is not None else spec.factory(**overrides)
        model.registry_name = spec.name  # type: ignore[assignment]
        return model

    return build_from_checkpoint(build, checkpoint, source=str(path), overridden=bool(overrides))
