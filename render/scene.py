"""The 3DIEBench scene as plain data: fixed set-up and the per-view poses and colours (no bpy here).

Everything the Blender renderer sets comes from here (the constants from `iebench.scene_constants`), so the
geometry can be tested without Blender. Units are Blender's, Z up (SPEC 1 and 1a).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from iebench.presets import TRANSLATION_NAMES
from iebench.rotations import euler_to_matrix, look_at_matrix, spherical_to_cartesian
from iebench.scene_constants import (
    CAMERA_DISTANCE,
    CAMERA_LENS_MM,
    CAMERA_PHI,
    CAMERA_SENSOR_MM,
    CAMERA_THETA,
    FLOOR_SATURATION,
    FLOOR_VALUE,
    SPOT_DISTANCE,
    SPOT_SATURATION,
    SPOT_VALUE,
)

CAMERA_LOCATION = spherical_to_cartesian(CAMERA_DISTANCE, CAMERA_THETA, CAMERA_PHI)
CAMERA_ROTATION = look_at_matrix(CAMERA_LOCATION)
# Blender's camera looks along its local -Z with +Y up; OpenCV's along +Z with +Y down.
BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


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


def camera_intrinsics(resolution: int) -> np.ndarray:
    """(3, 3) pinhole intrinsics of the default lens (50 mm on a 36 mm sensor) at a square resolution.

    OpenCV pixel coordinates: the centre of pixel (0, 0) is (0, 0), so the principal point is at
    ((W - 1) / 2, (H - 1) / 2). The sensor fits the width (Blender's AUTO fit on a square image).
    """
    focal = CAMERA_LENS_MM / CAMERA_SENSOR_MM * resolution
    centre = (resolution - 1) / 2
    return np.array([[focal, 0.0, centre], [0.0, focal, centre], [0.0, 0.0, 1.0]])


def world_to_camera() -> np.ndarray:
    """(4, 4) world-to-camera transform in the OpenCV camera frame (x right, y down, z forward)."""
    rotation = BLENDER_TO_OPENCV @ CAMERA_ROTATION.T
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = -rotation @ CAMERA_LOCATION
    return matrix


def object_to_world(view: ViewScene) -> np.ndarray:
    """(4, 4) world matrix of the object in a view: its XYZ Euler rotation, then its location."""
    matrix = np.eye(4)
    matrix[:3, :3] = euler_to_matrix(np.array(view.object_rotation))
    matrix[:3, 3] = view.object_location
    return matrix


def camera_record(view: ViewScene, resolution: int) -> dict:
    """The `camera` pass of a view: intrinsics, world-to-camera (OpenCV frame) and the object's world matrix."""
    return {
        "convention": "opencv",
        "width": resolution,
        "height": resolution,
        "intrinsics": camera_intrinsics(resolution),
        "world_to_camera": world_to_camera(),
        "object_to_world": object_to_world(view),
    }


def normals_to_camera(normals_world: np.ndarray) -> np.ndarray:
    """(H, W, 3) world-space normals (Cycles' Normal pass) -> the OpenCV camera frame."""
    return np.asarray(normals_world, dtype=np.float64) @ world_to_camera()[:3, :3].T
