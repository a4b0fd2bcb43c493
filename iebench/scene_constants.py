"""The 3DIEBench scene's fixed set-up (SPEC 1 and 1a): camera, floor, lights. Blender units, Z up.

The renderer builds the scene from these (`render/scene.py`), the render manifest records them, and the dataset
card describes a set's scene from its manifest, or from these for the original release, whose scene they are.
"""

from __future__ import annotations

import math

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


def scene_record() -> dict:
    """The scene's constants, as the render manifest records them (the dataset card describes the scene from them)."""
    return {
        "camera": {"distance": CAMERA_DISTANCE, "theta": CAMERA_THETA, "phi": CAMERA_PHI, "lens_mm": CAMERA_LENS_MM},
        "floor": {"z": FLOOR_Z, "saturation": FLOOR_SATURATION, "value": FLOOR_VALUE},
        "sun": {"energy": SUN_ENERGY, "angle": SUN_ANGLE},
        "spot": {"energy_w": SPOT_ENERGY, "distance": SPOT_DISTANCE, "cone": SPOT_SIZE, "saturation": SPOT_SATURATION, "value": SPOT_VALUE},
        "view_transform": VIEW_TRANSFORM,
    }
