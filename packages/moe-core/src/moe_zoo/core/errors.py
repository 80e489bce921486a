"""User-facing errors.

Every error a user can cause (bad input, unknown model, broken checkpoint) derives from
:class:`MoeZooError`, so the CLI can print one clear line instead of a stack trace.
"""

from __future__ import annotations


class MoeZooError(Exception):
    """Base class of all errors that moe-zoo raises for user mistakes or bad files."""


class InputError(MoeZooError, ValueError):
    """An input has the wrong shape, type, range, or content."""


class UnknownModelError(MoeZooError, LookupError):
    """A model name is not in the registry."""

    def __str__(self) -> str:  # LookupError would quote the message like a dict key
        return str(self.args[0]) if self.args else ""
