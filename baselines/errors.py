"""The errors of training and evaluation settings, apart from the modules that need torch."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration that cannot train; the message names the field."""


class EvalError(ValueError):
    """An evaluation that cannot run; the message says why, before any work."""


class DivergedError(FloatingPointError):
    """A training whose loss or weights stopped being finite numbers; the message says what to change."""
