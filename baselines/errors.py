"""The error of a configuration that cannot train, apart from the modules that need torch."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration that cannot train; the message names the field."""
