"""The method registry: a name -> (class, default action) map; adding a method is one file and one line here."""

from __future__ import annotations

from functools import partial

from iebench.baselines.config import ConfigError, TrainConfig
from iebench.baselines.methods.base import Method
from iebench.baselines.methods.sie import SIE

# name -> (builder(config, action_dim), default action)
METHODS = {
    "sie": (partial(SIE, variant="sie"), "rotation"),
    "sie-rotcolor": (partial(SIE, variant="sie-rotcolor"), "rotation-color"),
    "sie-novar": (partial(SIE, variant="sie-novar"), "rotation"),
    "sie-onlyequi": (partial(SIE, variant="sie-onlyequi"), "rotation"),
}


def default_action(name: str) -> str:
    """The action a method trains with unless told otherwise."""
    return _entry(name)[1]


def build_method(config: TrainConfig, action_dim: int) -> Method:
    """The method named by `config.method`."""
    return _entry(config.method)[0](config, action_dim)


def _entry(name: str):
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; methods are {', '.join(METHODS)}")
    return METHODS[name]
