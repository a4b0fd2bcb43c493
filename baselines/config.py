"""Training configuration: one dataclass, presets, TOML files and flags, validated once at the edge."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iebench.baselines.backbones import BACKBONES, WIDTHS
from iebench.baselines.errors import ConfigError
from iebench.baselines.methods import METHODS, method_settings, registered

__all__ = ["PRESETS", "ConfigError", "TrainConfig", "resolve"]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# What each field's annotation accepts from JSON or TOML (an int is a float; a list is a tuple).
_ACCEPTS = {
    "int": _is_int,
    "float": lambda v: _is_int(v) or isinstance(v, float),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "tuple[int, ...]": lambda v: isinstance(v, (list, tuple)) and all(map(_is_int, v)),
    "Any": lambda v: True,
}


def _check_type(name: str, value: object) -> None:
    """A clear error for a setting of the wrong type (a TOML file's `lr = "abc"`), before it reaches the code."""
    kind = next(f.type for f in dataclasses.fields(TrainConfig) if f.name == name)
    optional = kind.endswith(" | None")
    base = kind.removesuffix(" | None")
    if not ((optional and value is None) or _ACCEPTS[base](value)):
        wanted = {
            "tuple[int, ...]": "a list of integers",
            "int": "an integer",
            "float": "a number",
            "str": "a string",
            "bool": "true or false",
        }
        raise ConfigError(f"{name} must be {wanted[base]}{' (or absent)' if optional else ''}, got {value!r}")


def check_settings(data: dict) -> None:
    """Every key is a TrainConfig field and every value of its type (the method's own `extra` is checked with the method)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
    for name, value in data.items():
        _check_type(name, value)


@dataclass(kw_only=True)
class TrainConfig:
    """Everything a training run depends on (the run folder keeps it as config.json)."""

    method: str = "sie"
    data: str = ""
    out: str = ""
    epochs: int = 2000
    batch_size: int = 1024  # global, over all ranks
    lr: float = 1e-3
    weight_decay: float = 1e-6
    image_size: int | None = 256  # resized on the device; None keeps the stored size
    action: str | None = None  # None: the method's own
    seed: int = 0
    workers: int | None = None  # DataLoader workers per rank; None: cores, at most 8
    amp: bool = True  # mixed precision (float16), on CUDA only
    cpu_bf16: bool = False  # the backbone in bfloat16 on a CPU: faster with AMX or AVX512-BF16, slower elsewhere
    device: str = "auto"  # auto, cpu, cuda
    # resnet18-sie (the SIE authors'), its narrow -w32/-w16, resnet18 (torchvision's), vit-s16 (the reconstruction paper's)
    backbone: str = "resnet18-sie"
    stem: str = "imagenet"  # ResNet stem: imagenet (SIE's) or small (3x3, for 32-64 px)
    inv_dim: int | None = None  # the first inv_dim dimensions are invariant, the rest equivariant; None: half
    projector: tuple[int, ...] = (1024, 1024, 1024)  # per part; the whole-representation methods double it
    predictor_depth: int = 1  # SIE's hypernetwork: 1 (linear) or 3 (the authors' "deep")
    sim_coeff: float = 10.0
    equi_factor: float = 0.45
    std_coeff: float = 10.0
    cov_coeff: float = 1.0
    drop_last: bool = False
    online_probe: bool = False
    # The method's own settings: its `Settings` dataclass (see its file), given as a table (`[extra]` in TOML,
    # "extra" in config.json) and checked against the method when the configuration is built.
    extra: Any = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method in METHODS:  # an unknown method is reported by `validate`
            self.extra = method_settings(self.method, self.extra)

    @property
    def action_name(self) -> str:
        """The action this run trains with: the configured one, else its method's default."""
        return self.action or registered(self.method).default_action

    def to_json(self) -> dict:
        """Plain JSON (tuples as lists)."""
        data = dataclasses.asdict(self)
        data["projector"] = list(self.projector)
        return data

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        """Back from `to_json`, each value checked to be of its field's type."""
        check_settings(data)
        values = dict(data)
        if "projector" in values:
            values["projector"] = tuple(values["projector"])
        return cls(**values)

    def fingerprint(self) -> dict:
        """What a resumed run must share with its checkpoint (all but length, paths and plumbing)."""
        return {k: v for k, v in self.to_json().items() if k not in ("epochs", "workers", "out", "data", "device")}

    def validate(self) -> TrainConfig:
        """Check ranges once, before any work."""
        registered(self.method)
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be at least 2 (BatchNorm and the variance terms need two), got {self.batch_size}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"workers must be 0 or more, got {self.workers}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        width = WIDTHS[self.backbone]
        if self.inv_dim is not None and not 0 <= self.inv_dim <= width:
            raise ConfigError(f"inv_dim must be in [0, {width}] for {self.backbone}, got {self.inv_dim}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.image_size is not None and self.image_size < 16:
            raise ConfigError(f"image_size must be at least 16, got {self.image_size}")
        if self.predictor_depth not in (1, 3):
            raise ConfigError(f"predictor_depth must be 1 (linear) or 3 (the authors' deep hypernetwork), got {self.predictor_depth}")
        if not self.projector or min(self.projector) < 1:
            raise ConfigError(f"projector must list positive layer widths, got {self.projector}")
        return self


PRESETS: dict[str, dict] = {
    # SPEC 3: 256 px, global batch 1024, 2000 epochs, Adam 1e-3, weight decay 1e-6, mixed precision.
    "sie-paper": {
        "epochs": 2000,
        "batch_size": 1024,
        "image_size": 256,
        "lr": 1e-3,
        "weight_decay": 1e-6,
        "projector": (1024, 1024, 1024),
        "amp": True,
        "backbone": "resnet18-sie",
        "stem": "imagenet",
    },
    # A CPU run over the demo shards in a few minutes.
    "tiny": {"epochs": 10, "batch_size": 8, "image_size": 64, "projector": (256, 256, 256), "workers": 2, "amp": False},
    # The reconstruction paper's setting where it differs: ViT-S/16 encoder, 800 epochs.
    "recon-paper": {
        "method": "recon-xattn",
        "backbone": "vit-s16",
        "epochs": 800,
        "batch_size": 1024,
        "image_size": 256,
        "lr": 1e-3,
        "weight_decay": 1e-6,
        "amp": True,
    },
}


def resolve(preset: str | None = None, config_file: Path | None = None, **flags: object) -> TrainConfig:
    """Defaults < preset < TOML file < flags (flags that are None are left out)."""
    values: dict = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; presets are {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
    if config_file is not None:
        try:
            data = tomllib.loads(Path(config_file).read_text())
            check_settings(data)  # with the file named; its [extra] is checked against the method once the flags are in
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError) as error:
            raise ConfigError(f"config file {config_file}: {error}") from None
        values.update(data)
    values.update({k: v for k, v in flags.items() if v is not None})
    return TrainConfig.from_json(values).validate()
