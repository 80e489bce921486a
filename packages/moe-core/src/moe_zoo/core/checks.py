"""Type and range checks of config fields, shared by every package's config classes, so a bad
number is one clear :class:`InputError` naming the field when the config is made."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from moe_zoo.core.errors import InputError


def is_int(value: Any) -> bool:
    """An integer, and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_finite_real(value: Any) -> bool:
    """A finite real number, and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_ints(owner: str, config: Any, lows: Mapping[str, int]) -> None:
    """Each field named in ``lows`` must be an integer >= its bound, else ``InputError``
    ``"<owner>.<field> must be an integer >= <low>, got <value>"``."""
    for field, low in lows.items():
        value = getattr(config, field)
        if not (is_int(value) and value >= low):
            raise InputError(f"{owner}.{field} must be an integer >= {low}, got {value!r}")


def check_reals(owner: str, config: Any, *, positive: Iterable[str] = (), non_negative: Iterable[str] = ()) -> None:
    """``positive`` fields must be finite numbers > 0, ``non_negative`` ones finite numbers >= 0."""
    for fields, expected, ok in ((positive, "> 0", lambda v: v > 0), (non_negative, ">= 0", lambda v: v >= 0)):
        for field in fields:
            value = getattr(config, field)
            if not (is_finite_real(value) and ok(value)):
                raise InputError(f"{owner}.{field} must be a finite number {expected}, got {value!r}")
