"""The method registry: a name -> (class, default action) map; adding a method is one file and one line here."""

from __future__ import annotations

from functools import partial

from iebench.baselines.config import ConfigError, TrainConfig
from iebench.baselines.methods.base import Method
from iebench.baselines.methods.equimod import EquiMod
from iebench.baselines.methods.recon import Reconstruction
from iebench.baselines.methods.sie import SIE
from iebench.baselines.methods.simclr import SimCLR
from iebench.baselines.methods.supervised import SupervisedAction
from iebench.baselines.methods.vicreg import VICReg

# name -> (builder(config, action_dim), default action)
METHODS = {
    "sie": (partial(SIE, variant="sie"), "rotation"),
    "sie-rotcolor": (partial(SIE, variant="sie-rotcolor"), "rotation-color"),
    "sie-novar": (partial(SIE, variant="sie-novar"), "rotation"),
    "sie-onlyequi": (partial(SIE, variant="sie-onlyequi"), "rotation"),
    "vicreg": (VICReg, "none"),
    "simclr": (SimCLR, "none"),
    "simclr-augself": (partial(SimCLR, augself=True), "rotation"),
    "simclr-augself-rotcolor": (partial(SimCLR, augself=True), "rotation-color"),
    "equimod": (partial(EquiMod, loss="infonce"), "rotation"),
    "equimod-vicreg": (partial(EquiMod, loss="vicreg"), "rotation"),
    "sen": (partial(EquiMod, loss="infonce", invariant=False), "rotation"),
    "recon-xattn": (Reconstruction, "none"),
    "supervised-rotation": (SupervisedAction, "rotation"),  # a reference (the ceiling), not a self-supervised method
}
# Methods that cannot learn without a transformation parameter.
NEEDS_ACTION = {name for name in METHODS if name not in ("vicreg", "simclr", "recon-xattn")}


def default_action(name: str) -> str:
    """The action a method trains with unless told otherwise."""
    return _entry(name)[1]


def build_method(config: TrainConfig, action_dim: int) -> Method:
    """The method named by `config.method`; a clear error when it needs an action and gets none."""
    if config.method in NEEDS_ACTION and action_dim == 0:
        raise ConfigError(f"method {config.method!r} needs an action (its default is {default_action(config.method)!r}), not 'none'")
    try:
        return _entry(config.method)[0](config, action_dim)
    except ValueError as error:  # a size the method cannot work at, for example
        raise ConfigError(f"method {config.method!r}: {error}") from None


def _entry(name: str):
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; methods are {', '.join(METHODS)}")
    return METHODS[name]
