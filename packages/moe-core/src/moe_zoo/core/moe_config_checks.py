"""Range and type checks of an :class:`~moe_zoo.core.layer.MoEConfig`, run when the config is made,
so a bad number is one clear :class:`InputError` naming the field, not a ZeroDivisionError or NaN
outputs later."""

from __future__ import annotations

from typing import Any

from moe_zoo.core.activations import ACTIVATIONS
from moe_zoo.core.checks import check_ints, check_reals
from moe_zoo.core.checks import is_finite_real as _is_real
from moe_zoo.core.checks import is_int as _is_int
from moe_zoo.core.dispatch import check_backend_name
from moe_zoo.core.errors import InputError
from moe_zoo.core.routing import SCORE_FUNCTIONS

ROUTERS = ("topk", "topp", "expert_choice", "hash", "dense_to_sparse")


def _fail(field: str, expected: str, value: Any) -> InputError:
    return InputError(f"MoEConfig.{field} must be {expected}, got {value!r}")


def check_moe_config(config: Any) -> None:
    """Raise :class:`InputError` for the first field of ``config`` out of its type or range."""
    ints = {"d_model": 1, "d_hidden": 1, "n_experts": 1, "top_k": 1, "dts_anneal_steps": 1,
            "n_shared_experts": 0, "n_zero": 0, "n_copy": 0, "n_constant": 0}
    check_ints("MoEConfig", config, ints)
    for field in ("n_groups", "topk_groups", "max_k", "hash_vocab_size", "shared_hidden"):
        value = getattr(config, field)
        if value is not None and not (_is_int(value) and value >= 1):
            raise _fail(field, "None or an integer >= 1", value)
    positive = {"routed_scale": config.routed_scale, "expert_capacity": config.expert_capacity}
    if config.capacity_factor is not None:
        positive["capacity_factor"] = config.capacity_factor
    for field, value in positive.items():
        if not (_is_real(value) and value > 0):
            raise _fail(field, "a finite number > 0" + (" or None (dropless)" if field == "capacity_factor" else ""),
                        value)
    check_reals("MoEConfig", config, non_negative=("jitter",))
    if not (_is_real(config.top_p) and 0 < config.top_p <= 1):
        raise _fail("top_p", "in (0, 1]", config.top_p)
    check_backend_name(config.backend)
    choices = {"router": ROUTERS, "score": SCORE_FUNCTIONS, "activation": ACTIVATIONS}
    for field, allowed in choices.items():
        if getattr(config, field) not in allowed:
            raise _fail(field, f"one of {allowed}", getattr(config, field))
    if not all(_is_int(i) and 0 <= i < config.n_routed for i in config.always_on):
        raise _fail("always_on", f"expert ids in [0, {config.n_routed})", config.always_on)
