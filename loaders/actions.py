"""Actions: what transforms view 1 into view 2, computed from the two views' latents (pure numpy).

| name | size | content |
|---|---|---|
| `rotation` | 4 | quaternion (x, y, z, w) of R1^-1 R2, not sign-canonicalised (SIE); `canonical=True` makes w >= 0 |
| `euler` | 3 | the same relative rotation as extrinsic XYZ Euler angles |
| `rotation-color` | 6 | `rotation` + (floor_hue_2 - floor_hue_1, spot_hue_2 - spot_hue_1), as SIE rot+colour |
| `translation` | 3 | R1^-1 (t2 - t1): the object's displacement in view 1's object coordinates (3DIEBench-T's latents) |
| `rotation-translation` | 7 | `rotation` + `translation`: the relative rigid motion (R1, t1)^-1 (R2, t2) |
| `all` | 4 + k - 3 | `rotation` + the differences of every other latent (lights, floor, translation in world coordinates) |
| `none` | 0 | no action (methods that learn without transformation parameters) |
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from iebench.presets import ROTATION_NAMES, TRANSLATION_NAMES
from iebench.rotations import EULER_ORDER, relative_quaternion, translation_in_object_frame

# The same list, torch-free, is the CLI's `train --action` choice (a test holds them equal).
ACTIONS = ("rotation", "euler", "rotation-color", "translation", "rotation-translation", "all", "none")
_SIZES = {"rotation": 4, "euler": 3, "rotation-color": 6, "translation": 3, "rotation-translation": 7, "none": 0}


class ActionError(ValueError):
    """An unknown action, or latents that lack what an action needs."""


def action_size(name: str, latent_names: tuple[str, ...]) -> int:
    """Length of the action vector."""
    name = check_action(name, latent_names)
    return 4 + len(latent_names) - 3 if name == "all" else _SIZES[name]


def check_action(name: str, latent_names: tuple[str, ...]) -> str:
    """The action name, validated against the latent schema."""
    if name not in ACTIONS:
        raise ActionError(f"unknown action {name!r}; actions are {', '.join(ACTIONS)}")
    needed = {
        "rotation": ("rot_x", "rot_y", "rot_z"),
        "euler": ("rot_x", "rot_y", "rot_z"),
        "rotation-color": ("rot_x", "rot_y", "rot_z", "floor_hue", "spot_hue"),
        "translation": ROTATION_NAMES + TRANSLATION_NAMES,
        "rotation-translation": ROTATION_NAMES + TRANSLATION_NAMES,
        "all": ("rot_x", "rot_y", "rot_z"),
        "none": (),
    }[name]
    missing = [n for n in needed if n not in latent_names]
    if missing:
        raise ActionError(f"action {name!r} needs latents {', '.join(missing)}, which this data set does not have")
    return name


class ActionComputer:
    """The action taking view 1 to view 2, with the schema checked and the columns looked up once."""

    def __init__(self, name: str, latent_names: tuple[str, ...], canonical: bool = False) -> None:
        self.name, self.latent_names, self.canonical = check_action(name, latent_names), tuple(latent_names), canonical
        self.rotation = [latent_names.index(n) for n in ("rot_x", "rot_y", "rot_z")] if name != "none" else []
        if name == "rotation-color":
            self.rest = [latent_names.index("floor_hue"), latent_names.index("spot_hue")]
        elif name == "all":
            self.rest = [i for i in range(len(latent_names)) if i not in self.rotation]
        else:
            self.rest = []
        self.translation = [latent_names.index(n) for n in TRANSLATION_NAMES] if "translation" in name else []
        self.size = action_size(name, latent_names)

    def __call__(self, latents1: np.ndarray, latents2: np.ndarray) -> np.ndarray:
        """The action (float32) for latent vectors (k,) or batches (n, k)."""
        l1, l2 = np.asarray(latents1, dtype=np.float64), np.asarray(latents2, dtype=np.float64)
        if self.name == "none":
            return np.zeros((*l1.shape[:-1], 0), dtype=np.float32)
        if self.translation:
            moved = translation_in_object_frame(l1[..., self.rotation], l1[..., self.translation], l2[..., self.translation])
            if self.name == "translation":
                return moved.astype(np.float32)
        quat = relative_quaternion(l1[..., self.rotation], l2[..., self.rotation], canonical=self.canonical)
        if self.translation:
            return np.concatenate([quat, moved], axis=-1).astype(np.float32)
        if self.name == "euler":
            return Rotation.from_quat(quat).as_euler(EULER_ORDER).astype(np.float32)
        if self.rest:
            return np.concatenate([quat, l2[..., self.rest] - l1[..., self.rest]], axis=-1).astype(np.float32)
        return quat.astype(np.float32)


def compute_action(
    name: str, latents1: np.ndarray, latents2: np.ndarray, latent_names: tuple[str, ...], canonical: bool = False
) -> np.ndarray:
    """The action (float32) taking view 1 to view 2; latents are (k,) or (n, k) in `latent_names` order."""
    return ActionComputer(name, latent_names, canonical)(latents1, latents2)
