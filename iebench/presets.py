"""Latent schema and scene presets: which factors a view has, their ranges, and how they are drawn.

A preset is data: an ordered tuple of factors (the latent order stored beside every view) and the
way rotations are sampled. Variants are presets with some factors overridden, from CLI flags or a
TOML file; everything is validated here, once, before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from iebench.rotations import EULER_ORDER
from iebench.seeds import name_words

PI = math.pi
ROTATION_NAMES = ("rot_x", "rot_y", "rot_z")
LATENT_NAMES = (*ROTATION_NAMES, "floor_hue", "spot_theta", "spot_phi", "spot_hue")
TRANSLATION_NAMES = ("trans_x", "trans_y", "trans_z")
# Physical limits a range must respect, whatever the preset: hues wrap at 1, and a spot light at a
# polar angle beyond pi/2 would sit under the floor.
_LIMITS = {"floor_hue": (0.0, 1.0), "spot_hue": (0.0, 1.0), "spot_theta": (0.0, PI / 2)}

Interval = tuple[float, float]


class PresetError(ValueError):
    """A preset, a factor override or a variant file that cannot be used."""


@dataclass(frozen=True)
class Factor:
    """One latent factor: drawn uniformly from a union of intervals; a single point means fixed."""

    name: str
    intervals: tuple[Interval, ...]

    @property
    def fixed(self) -> bool:
        """Whether the factor is a constant."""
        return len(self.intervals) == 1 and self.intervals[0][0] == self.intervals[0][1]

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one value, uniform over the union (intervals weighted by their length)."""
        if self.fixed:
            return float(self.intervals[0][0])
        lengths = np.array([hi - lo for lo, hi in self.intervals])
        index = int(rng.choice(len(lengths), p=lengths / lengths.sum())) if len(lengths) > 1 else 0
        lo, hi = self.intervals[index]
        return float(rng.uniform(lo, hi))

    def contains(self, values: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """Boolean mask of the values that lie in the factor's declared set."""
        values = np.asarray(values, dtype=np.float64)
        inside = np.zeros(values.shape, dtype=bool)
        for lo, hi in self.intervals:
            inside |= (values >= lo - tol) & (values <= hi + tol)
        return inside

    def to_json(self) -> dict:
        """The factor as plain JSON: a fixed value or a list of [lo, hi] intervals."""
        if self.fixed:
            return {"name": self.name, "fixed": self.intervals[0][0]}
        return {"name": self.name, "intervals": [list(iv) for iv in self.intervals]}


@dataclass(frozen=True)
class Preset:
    """A scene preset: the factors in latent order and how the rotation is drawn."""

    name: str
    description: str
    factors: tuple[Factor, ...]
    # "euler-box": each angle drawn alone from its factor; "outside-box": uniform rotations whose
    # canonical XYZ angles fall outside [-pi/2, pi/2]^3, stored as those canonical angles.
    rotation_sampler: str = "euler-box"
    notes: str = ""

    @property
    def latent_names(self) -> tuple[str, ...]:
        """Names of the stored latent values, in order."""
        return tuple(f.name for f in self.factors)

    @property
    def has_translation(self) -> bool:
        """Whether the latents carry the object's translation (10 values)."""
        return TRANSLATION_NAMES[0] in self.latent_names

    def to_json(self) -> dict:
        """The preset as plain JSON, for manifests and `_info.json`."""
        return {
            "name": self.name,
            "description": self.description,
            "latent_names": list(self.latent_names),
            "factors": [f.to_json() for f in self.factors],
            "rotation_sampler": self.rotation_sampler,
            "translation_frame": "world (the object's bounding-box centre)" if self.has_translation else None,
            "notes": self.notes,
        }

    def contains(self, latents: np.ndarray) -> np.ndarray:
        """Boolean mask (n,) of latent rows (n, k) that lie in the preset's declared sets."""
        latents = np.atleast_2d(np.asarray(latents, dtype=np.float64))
        if latents.shape[1] != len(self.factors):
            raise PresetError(f"latents have {latents.shape[1]} values; preset {self.name!r} has {len(self.factors)}")
        ok = np.ones(len(latents), dtype=bool)
        for column, factor in enumerate(self.factors):
            if self.rotation_sampler == "outside-box" and factor.name in ROTATION_NAMES:
                continue
            ok &= factor.contains(latents[:, column])
        if self.rotation_sampler == "outside-box":
            angles = latents[:, :3]
            canonical = np.abs(angles[:, 1]) <= PI / 2 + 1e-9
            in_box = np.all(np.abs(angles) <= PI / 2, axis=1)
            ok &= canonical & ~in_box & np.all(np.abs(angles) <= PI + 1e-9, axis=1)
        return ok


def _factor(name: str, lo: float, hi: float | None = None) -> Factor:
    return Factor(name, ((float(lo), float(lo if hi is None else hi)),))


_BASE = (
    _factor("rot_x", -PI / 2, PI / 2),
    _factor("rot_y", -PI / 2, PI / 2),
    _factor("rot_z", -PI / 2, PI / 2),
    _factor("floor_hue", 0.0, 1.0),
    _factor("spot_theta", 0.0, PI / 4),
    _factor("spot_phi", 0.0, 2 * PI),
    _factor("spot_hue", 0.0, 1.0),
)
_OOD_ANGLE = ((-PI, -PI / 2), (PI / 2, PI))

PRESETS: dict[str, Preset] = {
    "3diebench": Preset(
        "3diebench",
        "3DIEBench as published: rotation, floor hue and spot light sampled per view.",
        _BASE,
    ),
    "3diebench-ood": Preset(
        "3diebench-ood",
        "seq-JEPA's 'OOD' set: each Euler angle from [-pi, -pi/2] U [pi/2, pi].",
        tuple(Factor(f.name, _OOD_ANGLE) if f.name in ROTATION_NAMES else f for f in _BASE),
        notes=(
            "(a, b, c) and (a + pi, pi - b, c + pi) are the same XYZ rotation, so these rotations have "
            "exactly the training distribution; use it only to compare with published numbers, and "
            "'rotation-ood' for rotations that are really out of distribution."
        ),
    ),
    "rotation-ood": Preset(
        "rotation-ood",
        "Rotations outside the training box: uniform rotations whose canonical XYZ angles leave [-pi/2, pi/2]^3.",
        tuple(
            Factor(f.name, ((-PI / 2, PI / 2),) if f.name == "rot_y" else ((-PI, PI),)) if f.name in ROTATION_NAMES else f for f in _BASE
        ),
        rotation_sampler="outside-box",
        notes="Latents store the canonical angles (rot_y in [-pi/2, pi/2]); three quarters of SO(3) by measure.",
    ),
    "3diebench-t": Preset(
        "3diebench-t",
        "3DIEBench-T: 3DIEBench plus an object translation U(-0.5, 0.5) per axis (10 latents).",
        (*_BASE, *(_factor(name, -0.5, 0.5) for name in TRANSLATION_NAMES)),
        notes="The translation is recorded in the world frame: where the object's bounding-box centre lies.",
    ),
    "3diebench-yaw": Preset(
        "3diebench-yaw",
        "3DIEBench with the rotation about the vertical axis only (rot_x = rot_y = 0, rot_z in [-pi/2, pi/2]).",
        (_factor("rot_x", 0.0), _factor("rot_y", 0.0), *_BASE[2:]),
        notes="The laptop mini's task: one rotation degree of freedom, which a small model learns in minutes on a CPU; "
        "the relative quaternion's x and y are then always 0.",
    ),
    "rotation-only": Preset(
        "rotation-only",
        "Rotation only: floor and spot light fixed (values stored as constants).",
        (
            *_BASE[:3],
            _factor("floor_hue", 0.6),
            _factor("spot_theta", PI / 8),
            _factor("spot_phi", PI / 2),
            _factor("spot_hue", 0.1),
        ),
    ),
}


def get_preset(name: str) -> Preset:
    """The built-in preset `name`, or a clear error listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise PresetError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # TOML's true is not 1.0


def _as_intervals(name: str, value: object) -> tuple[Interval, ...]:
    """Parse a TOML/CLI value: a number (fixed), [lo, hi], or a list of [lo, hi]."""
    if _is_number(value):
        return ((float(value), float(value)),)
    if isinstance(value, list) and len(value) == 2 and all(map(_is_number, value)):
        return ((float(value[0]), float(value[1])),)
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return tuple(iv for v in value for iv in _as_intervals(name, v))
    raise PresetError(f"factor {name!r}: expected a number, [lo, hi] or a list of [lo, hi], got {value!r}")


def _validate_intervals(name: str, intervals: tuple[Interval, ...]) -> None:
    for lo, hi in intervals:
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise PresetError(f"factor {name!r}: range [{lo}, {hi}] is not finite")
        if lo > hi:
            raise PresetError(f"factor {name!r}: range [{lo}, {hi}] is empty (low > high)")
        if name in _LIMITS:
            low, high = _LIMITS[name]
            if lo < low or hi > high:
                raise PresetError(f"factor {name!r}: range [{lo}, {hi}] leaves its possible values [{low}, {high:.6g}]")
    if len(intervals) > 1 and any(lo == hi for lo, hi in intervals):
        raise PresetError(f"factor {name!r}: a union of ranges cannot contain a single point")


def with_overrides(preset: Preset, overrides: dict[str, object], name: str | None = None) -> Preset:
    """A variant of `preset` with some factors set to a fixed value, a range or a union of ranges."""
    if not overrides:
        return preset
    factors = {f.name: f for f in preset.factors}
    for factor_name, value in overrides.items():
        if factor_name not in factors:
            raise PresetError(f"preset {preset.name!r} has no factor {factor_name!r}; it has {', '.join(preset.latent_names)}")
        if preset.rotation_sampler == "outside-box" and factor_name in ROTATION_NAMES:
            raise PresetError(f"preset {preset.name!r} draws the rotation as a whole; {factor_name!r} cannot be set alone")
        intervals = _as_intervals(factor_name, value)
        _validate_intervals(factor_name, intervals)
        factors[factor_name] = Factor(factor_name, intervals)
    variant = name or f"{preset.name}+custom"
    return dataclasses.replace(preset, name=variant, factors=tuple(factors[n] for n in preset.latent_names))


def parse_factor_flag(text: str) -> tuple[str, object]:
    """Parse a CLI `--factor NAME=VALUE` or `NAME=LO:HI` into (name, value)."""
    if "=" not in text:
        raise PresetError(f"--factor {text!r}: expected NAME=VALUE or NAME=LO:HI")
    name, spec = (part.strip() for part in text.split("=", 1))
    try:
        if ":" in spec:
            lo, hi = (float(part) for part in spec.split(":"))
            return name, [lo, hi]
        return name, float(spec)
    except ValueError:
        raise PresetError(f"--factor {text!r}: {spec!r} is not a number or LO:HI") from None


def load_variant(path: Path, base: str | None = None) -> Preset:
    """Read a TOML variant file: `preset = "..."` (optional), `name = "..."` and a [factors] table."""
    try:
        data = tomllib.loads(Path(path).read_text())
        unknown = set(data) - {"preset", "name", "factors"}
        if unknown:
            raise PresetError(f"unknown keys {sorted(unknown)}; expected preset, name, factors")
        for key, kind, wanted in (("preset", str, "a preset's name"), ("name", str, "a string"), ("factors", dict, "a table")):
            if key in data and not isinstance(data[key], kind):
                raise PresetError(f"{key} must be {wanted}, got {data[key]!r}")
        preset = get_preset(data.get("preset", base or "3diebench"))
        return with_overrides(preset, data.get("factors", {}), name=data.get("name", Path(path).stem))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, PresetError) as error:
        raise PresetError(f"variant file {path}: {error}") from None


def view_rng(seed: int, synset: str, model_id: str, view: int) -> np.random.Generator:
    """The generator of one view's factors: a function of (seed, synset, model id, view) alone."""
    return np.random.default_rng(np.random.SeedSequence([seed, *name_words(f"{synset}/{model_id}"), view]))


def sample_view_latents(preset: Preset, seed: int, synset: str, model_id: str, view: int) -> np.ndarray:
    """The latent vector (float64, preset order) of one view, independent of workers, order and jobs."""
    rng = view_rng(seed, synset, model_id, view)
    values = np.array([f.sample(rng) for f in preset.factors], dtype=np.float64)
    if preset.rotation_sampler == "outside-box":
        values[:3] = _sample_outside_box(rng)
    return values


def _sample_outside_box(rng: np.random.Generator) -> np.ndarray:
    """A uniform rotation rejected while its canonical XYZ angles lie in [-pi/2, pi/2]^3 (mean 1.3 draws)."""
    while True:
        angles = Rotation.random(random_state=rng).as_euler(EULER_ORDER)
        if np.any(np.abs(angles) > PI / 2):
            return angles


def preset_from_json(data: dict) -> Preset:
    """Rebuild a preset from its JSON form (as stored in manifests and `_info.json`)."""
    factors = tuple(
        Factor(
            f["name"],
            ((float(f["fixed"]), float(f["fixed"])),) if "fixed" in f else tuple((float(lo), float(hi)) for lo, hi in f["intervals"]),
        )
        for f in data["factors"]
    )
    return Preset(data["name"], data.get("description", ""), factors, data.get("rotation_sampler", "euler-box"), data.get("notes", ""))
