"""The 3DIEBench scene as plain data: fixed set-up and the per-view poses and colours (no bpy here).

Everything the Blender renderer sets comes from here, so the geometry can be tested without Blender.
Units are Blender's, Z up (SPEC 1 and 1a).
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from iebench.presets import TRANSLATION_NAMES
from iebench.rotations import look_at_matrix, spherical_to_cartesian

CAMERA_DISTANCE = 2.5
CAMERA_THETA = math.pi / 4
CAMERA_PHI = math.pi / 2
CAMERA_LENS_MM = 50.0
CAMERA_SENSOR_MM = 36.0
CAMERA_CLIP = (0.1, 1000.0)
FLOOR_Z = -1.0
FLOOR_SIZE = 10_000.0
FLOOR_SATURATION, FLOOR_VALUE = 0.6, 0.6
SUN_ENERGY = 1.5
SUN_ANGLE = math.pi / 2
SPOT_ENERGY = 500.0
SPOT_DISTANCE = 4.0
SPOT_SIZE = math.pi / 8
SPOT_BLEND = 0.15
SPOT_RADIUS = 0.25
SPOT_SATURATION, SPOT_VALUE = 1.0, 0.8
WORLD_GREY = 0.05
VIEW_TRANSFORM = "Filmic"  # Blender 4.1+ defaults to AgX; the original (Blender 3.3) used Filmic.

CAMERA_LOCATION = spherical_to_cartesian(CAMERA_DISTANCE, CAMERA_THETA, CAMERA_PHI)
CAMERA_ROTATION = look_at_matrix(CAMERA_LOCATION)


@dataclass(frozen=True)
class ViewScene:
    """What changes from one view to the next: object pose, floor colour and the spot light."""

    object_rotation: tuple[float, float, float]  # extrinsic XYZ Euler angles (Blender's XYZ mode)
    object_location: tuple[float, float, float]
    floor_rgb: tuple[float, float, float]  # linear RGB, as the original fed hsv_to_rgb to Blender
    spot_location: tuple[float, float, float]
    spot_rotation: np.ndarray  # (3, 3): the spot's local -Z points at the origin
    spot_rgb: tuple[float, float, float]


def floor_rgb(floor_hue: float) -> tuple[float, float, float]:
    """Linear RGB of the floor for a hue."""
    return colorsys.hsv_to_rgb(floor_hue, FLOOR_SATURATION, FLOOR_VALUE)


def spot_rgb(spot_hue: float) -> tuple[float, float, float]:
    """RGB colour of the spot light for a hue."""
    return colorsys.hsv_to_rgb(spot_hue, SPOT_SATURATION, SPOT_VALUE)


def spot_location(spot_theta: float, spot_phi: float) -> np.ndarray:
    """Where the spot light stands: radius 4, polar angle theta, azimuth phi."""
    return spherical_to_cartesian(SPOT_DISTANCE, spot_theta, spot_phi)


def view_scene(latent_names: tuple[str, ...], latents: np.ndarray) -> ViewScene:
    """The scene of one view from its latent vector (names give the order)."""
    value = dict(zip(latent_names, np.asarray(latents, dtype=np.float64).tolist()))
    translation = tuple(value.get(name, 0.0) for name in TRANSLATION_NAMES)
    light = spot_location(value["spot_theta"], value["spot_phi"])
    return ViewScene(
        object_rotation=(value["rot_x"], value["rot_y"], value["rot_z"]),
        object_location=translation,
        floor_rgb=floor_rgb(value["floor_hue"]),
        spot_location=tuple(light.tolist()),
        spot_rotation=look_at_matrix(light),
        spot_rgb=spot_rgb(value["spot_hue"]),
    )
