"""Frozen configuration dataclasses that round-trip through JSON.

Usage::

    @dataclass(frozen=True)
    class MyConfig(Config):
        width: int = 64
        sizes: tuple[int, ...] = (1, 2)

    cfg = MyConfig(width=32)
    assert MyConfig.from_json(cfg.to_json()) == cfg
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import numbers
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from moe_zoo.core.errors import InputError


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class for model and training configs (subclass with ``@dataclass(frozen=True)``)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary (tuples become lists, nested configs become dicts)."""
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from a dictionary, rejecting unknown keys and restoring tuples/nested configs."""
        if not isinstance(data, Mapping):
            raise InputError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
        names = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = [key for key in data if key not in names]
        if unknown:
            hints = {k: difflib.get_close_matches(k, list(names), n=1) for k in unknown}
            detail = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items())
            raise InputError(f"{cls.__name__}: unknown field(s) {detail}; known: {sorted(names)}")
        hints = typing.get_type_hints(cls)
        kwargs = {key: _from_plain(value, hints[key]) for key, value in data.items()}
        for key, value in kwargs.items():
            if not _matches(value, hints[key]):
                raise InputError(f"{cls.__name__}: field {key!r} must be {_describe(hints[key])}, got {value!r:.80}")
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> Self:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{cls.__name__}: invalid JSON ({err})") from None
        return cls.from_dict(data)

    def replace(self, **overrides: Any) -> Self:
        """A copy with some fields changed; unknown names are an error, not silently ignored."""
        if not overrides:
            return self
        merged = self.to_dict()
        merged.update({k: _to_plain(v) for k, v in overrides.items()})
        return type(self).from_dict(merged)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Self:
        return cls.from_json(Path(path).read_text())


def _to_plain(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


_SCALARS: dict[type, Any] = {bool: lambda v: isinstance(v, bool),
                             int: lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
                             float: lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
                             str: lambda v: isinstance(v, str)}


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` has the scalar type ``hint`` declares (bool/int/float/str, optional, or
    tuples of them); other declared types are not checked here."""
    if hint in _SCALARS:
        return _SCALARS[hint](value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return type(None) in args
        others = [a for a in args if a is not type(None)]
        return any(_SCALARS[a](value) for a in others) if all(a in _SCALARS for a in others) else True
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in _SCALARS:
        return isinstance(value, tuple) and all(_SCALARS[args[0]](v) for v in value)
    return True


def _describe(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _from_plain(value: Any, hint: Any) -> Any:
    """Convert a JSON value back to the declared field type (only the structural cases)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        candidates = [a for a in typing.get_args(hint) if a is not type(None)]
        return _from_plain(value, candidates[0]) if len(candidates) == 1 else value
    if isinstance(hint, type) and issubclass(hint, Config) and isinstance(value, Mapping):
        return hint.from_dict(value)
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_plain(v, args[0]) for v in value)
        if args and len(args) == len(value):
            return tuple(_from_plain(v, a) for v, a in zip(value, args))
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is Path and isinstance(value, str):
        return Path(value)
    return value
