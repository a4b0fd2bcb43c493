"""The method registry: the one list of methods, with the action each trains with unless told otherwise.

Adding a method is one file in this folder (a `Method` subclass; a `Settings` dataclass of its own
settings if it has any, checked when the configuration loads) plus one line in `METHODS`. A line names
the file and class, which are imported only when the method is built or its settings are checked, so
reading the list loads no torch: the CLI's choices, `iebench methods` and the Makefile draw on it.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from iebench.baselines.errors import ConfigError

if TYPE_CHECKING:
    from iebench.baselines.config import TrainConfig
    from iebench.baselines.methods.base import Method


@dataclass(frozen=True, kw_only=True)
class Registered:
    """One method: `module` and `cls` in this folder, its default action, the options its class is built with."""

    module: str
    cls: str
    default_action: str  # rotation, rotation-color, ... or "none" for methods that need no transformation parameters
    options: dict = field(default_factory=dict)
    compared: bool = False  # in `iebench compare`'s default set and `make bench`'s
    mini: bool = False  # in `iebench mini`'s default set

    @property
    def needs_action(self) -> bool:
        """Whether the method cannot learn without a transformation parameter."""
        return self.default_action != "none"

    def method_class(self) -> type:
        """The `Method` subclass (imported now: it loads torch)."""
        return getattr(importlib.import_module(f"{__name__}.{self.module}"), self.cls)


def _sie(variant: str, action: str, **flags) -> Registered:
    return Registered(module="sie", cls="SIE", default_action=action, options={"variant": variant}, **flags)


METHODS: dict[str, Registered] = {
    "sie": _sie("sie", "rotation", compared=True, mini=True),
    "sie-rotcolor": _sie("sie-rotcolor", "rotation-color", compared=True, mini=True),
    "sie-novar": _sie("sie-novar", "rotation"),
    "sie-onlyequi": _sie("sie-onlyequi", "rotation"),
    "vicreg": Registered(module="vicreg", cls="VICReg", default_action="none", compared=True, mini=True),
    "simclr": Registered(module="simclr", cls="SimCLR", default_action="none", compared=True, mini=True),
    "simclr-augself": Registered(module="simclr", cls="SimCLR", default_action="rotation", options={"augself": True}, compared=True),
    "simclr-augself-rotcolor": Registered(module="simclr", cls="SimCLR", default_action="rotation-color", options={"augself": True}),
    "equimod": Registered(module="equimod", cls="EquiMod", default_action="rotation", options={"loss": "infonce"}, compared=True),
    "equimod-vicreg": Registered(module="equimod", cls="EquiMod", default_action="rotation", options={"loss": "vicreg"}, compared=True),
    "sen": Registered(
        module="equimod", cls="EquiMod", default_action="rotation", options={"loss": "infonce", "invariant": False}, compared=True
    ),
    "recon-xattn": Registered(module="recon", cls="Reconstruction", default_action="none", compared=True),
    # A reference (the ceiling of the rotation probe), not a self-supervised method.
    "supervised-rotation": Registered(module="supervised", cls="SupervisedAction", default_action="rotation"),
}


def registered(name: str) -> Registered:
    """The registry's line for a method; a clear error for an unknown name."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; methods are {', '.join(METHODS)}")
    return METHODS[name]


def compared_methods() -> tuple[str, ...]:
    """The methods `iebench compare` and `make bench` run by default."""
    return tuple(name for name, entry in METHODS.items() if entry.compared)


def mini_methods() -> tuple[str, ...]:
    """The methods `iebench mini` trains by default."""
    return tuple(name for name, entry in METHODS.items() if entry.mini)


def variants_of(cls: str) -> tuple[str, ...]:
    """The names registered for one class (for example the SIE variants the authors' checkpoints hold)."""
    return tuple(name for name, entry in METHODS.items() if entry.cls == cls)


def default_action(name: str) -> str:
    """The action a method trains with unless told otherwise."""
    return registered(name).default_action


_SCALARS = {float: (int, float), int: (int,), bool: (bool,), str: (str,)}


def method_settings(name: str, values: object) -> object:
    """A method's typed settings (its `Settings` dataclass) from a table of values: unknown keys and wrong types are refused."""
    settings_type = registered(name).method_class().Settings
    if isinstance(values, settings_type):
        return values
    if dataclasses.is_dataclass(values):
        values = dataclasses.asdict(values)
    if not isinstance(values, dict):
        raise ConfigError(f"extra must be a table of method {name!r}'s settings, got {values!r}")
    types = typing.get_type_hints(settings_type)
    known = ", ".join(types) or "none"
    checked = {}
    for key, value in values.items():
        if key not in types:
            raise ConfigError(f"method {name!r} has no setting {key!r} (in extra); its settings are: {known}")
        wanted = types[key]
        if (isinstance(value, bool) and wanted is not bool) or not isinstance(value, _SCALARS[wanted]):
            raise ConfigError(f"method {name!r}: setting {key!r} must be {wanted.__name__}, got {value!r}")
        checked[key] = wanted(value)
    return settings_type(**checked)


def build_method(config: TrainConfig, action_dim: int) -> Method:
    """The method named by `config.method`; a clear error when it needs an action and gets none."""
    entry = registered(config.method)
    if entry.needs_action and action_dim == 0:
        raise ConfigError(f"method {config.method!r} needs an action (its default is {entry.default_action!r}), not 'none'")
    try:
        return entry.method_class()(config, action_dim, **entry.options)
    except ValueError as error:  # a size the method cannot work at, for example
        raise ConfigError(f"method {config.method!r}: {error}") from None
