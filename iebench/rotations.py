"""Rotation maths shared by the renderer, the shards and the loaders (pure numpy/scipy)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

# Blender's default XYZ Euler mode is extrinsic X, then Y, then Z: scipy's lowercase "xyz".
EULER_ORDER = "xyz"


def euler_to_matrix(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from extrinsic XYZ Euler angles (..., 3), as Blender applies them."""
    return Rotation.from_euler(EULER_ORDER, np.asarray(angles, dtype=np.float64)).as_matrix()


def canonical_euler(angles: np.ndarray) -> np.ndarray:
    """The canonical XYZ angles (a, c in [-pi, pi], b in [-pi/2, pi/2]) of the same rotations."""
    return Rotation.from_euler(EULER_ORDER, np.asarray(angles, dtype=np.float64)).as_euler(EULER_ORDER)


def relative_quaternion(angles1: np.ndarray, angles2: np.ndarray, canonical: bool = False) -> np.ndarray:
    """Quaternion (x, y, z, w) of R1^-1 R2 for Euler angles of views 1 and 2 (SIE's action).

    Not sign-canonicalised by default, as in SIE (w < 0 for a few per cent of pairs); with
    `canonical=True` the sign is chosen so that w >= 0.
    """
    r1 = Rotation.from_euler(EULER_ORDER, np.asarray(angles1, dtype=np.float64))
    r2 = Rotation.from_euler(EULER_ORDER, np.asarray(angles2, dtype=np.float64))
    quat = (r1.inv() * r2).as_quat(canonical=canonical)
    return quat


def spherical_to_cartesian(radius: float, theta: float, phi: float) -> np.ndarray:
    """Point at polar angle theta (from +Z) and azimuth phi (from +X), as the original generator placed it."""
    return np.array(
        [
            radius * np.sin(theta) * np.cos(phi),
            radius * np.sin(theta) * np.sin(phi),
            radius * np.cos(theta),
        ]
    )


def look_at_matrix(eye: np.ndarray, target: np.ndarray = np.zeros(3)) -> np.ndarray:
    """Rotation (3, 3) that makes a Blender camera or light at `eye` look at `target` with world +Z up.

    Blender cameras and spot lights look along their local -Z with local +Y up, so the matrix's
    columns are the local axes in world coordinates: x = right, y = up, z = -forward.
    """
    forward = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    up_hint = np.array([0.0, 0.0, 1.0])
    if abs(forward @ up_hint) > 1 - 1e-9:  # looking straight up or down: any right vector will do
        up_hint = np.array([0.0, 1.0, 0.0])
    right = np.cross(forward, up_hint)
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.stack([right, up, -forward], axis=1)
