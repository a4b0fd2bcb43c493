"""Rotation maths shared by the renderer, the shards and the loaders (pure numpy/scipy)."""

from __future__ import annotations

import math

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


def quaternion_multiply(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Hamilton product p q of (..., 4) quaternions in (x, y, z, w) order (the rotation q, then p)."""
    px, py, pz, pw = np.moveaxis(p, -1, 0)
    qx, qy, qz, qw = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            pw * qx + px * qw + py * qz - pz * qy,
            pw * qy - px * qz + py * qw + pz * qx,
            pw * qz + px * qy - py * qx + pz * qw,
            pw * qw - px * qx - py * qy - pz * qz,
        ],
        axis=-1,
    )


def euler_to_quaternion(angles: np.ndarray) -> np.ndarray:
    """(x, y, z, w) quaternions of extrinsic XYZ Euler angles: qz qy qx, each with w = cos(a/2) >= 0 (scipy's signs)."""
    half = np.asarray(angles, dtype=np.float64) / 2
    s, c = np.sin(half), np.cos(half)
    zero = np.zeros_like(s[..., 0])
    qx = np.stack([s[..., 0], zero, zero, c[..., 0]], axis=-1)
    qy = np.stack([zero, s[..., 1], zero, c[..., 1]], axis=-1)
    qz = np.stack([zero, zero, s[..., 2], c[..., 2]], axis=-1)
    return quaternion_multiply(qz, quaternion_multiply(qy, qx))


def _multiply_scalar(p: tuple, q: tuple) -> tuple:
    px, py, pz, pw = p
    qx, qy, qz, qw = q
    return (
        pw * qx + px * qw + py * qz - pz * qy,
        pw * qy - px * qz + py * qw + pz * qx,
        pw * qz + px * qy - py * qx + pz * qw,
        pw * qw - px * qx - py * qy - pz * qz,
    )


def _euler_scalar(angles: list[float]) -> tuple:
    (sx, cx), (sy, cy), (sz, cz) = ((math.sin(a / 2), math.cos(a / 2)) for a in angles)
    return _multiply_scalar((0.0, 0.0, sz, cz), _multiply_scalar((0.0, sy, 0.0, cy), (sx, 0.0, 0.0, cx)))


def _relative_quaternion_scalar(angles1: list[float], angles2: list[float]) -> tuple:
    x, y, z, w = _euler_scalar(angles1)
    return _multiply_scalar((-x, -y, -z, w), _euler_scalar(angles2))


def relative_quaternion(angles1: np.ndarray, angles2: np.ndarray, canonical: bool = False) -> np.ndarray:
    """Quaternion (x, y, z, w) of R1^-1 R2 for Euler angles of views 1 and 2 (SIE's action).

    The same numbers, signs included, as scipy's `(R1.inv() * R2).as_quat()`, in closed form (the
    loaders compute one per pair). Not sign-canonicalised by default, as in SIE (w < 0 for a few per
    cent of pairs); with `canonical=True` the sign is chosen so that w >= 0.
    """
    a1, a2 = np.asarray(angles1, dtype=np.float64), np.asarray(angles2, dtype=np.float64)
    if a1.shape == a2.shape == (3,):  # one pair: plain floats are ~20x faster than numpy on 4-vectors
        quat = np.array(_relative_quaternion_scalar(a1.tolist(), a2.tolist()))
    else:
        q1_inverse = euler_to_quaternion(a1) * np.array([-1.0, -1.0, -1.0, 1.0])
        quat = quaternion_multiply(q1_inverse, euler_to_quaternion(a2))
    if canonical:
        quat = np.where(quat[..., 3:] < 0, -quat, quat)
    return quat


def translation_in_object_frame(angles1: np.ndarray, position1: np.ndarray, position2: np.ndarray) -> np.ndarray:
    """R1^-1 (p2 - p1): the displacement between two world positions (..., 3), in view 1's object coordinates.

    R1 is view 1's rotation (extrinsic XYZ Euler angles, (..., 3)); with the relative rotation R1^-1 R2 this is
    the translation part of the relative rigid motion (R1, p1)^-1 (R2, p2).
    """
    delta = np.asarray(position2, dtype=np.float64) - np.asarray(position1, dtype=np.float64)
    inverse = np.swapaxes(euler_to_matrix(angles1), -1, -2)  # a rotation's inverse is its transpose
    return np.einsum("...ij,...j->...i", inverse, delta)


def spherical_to_cartesian(radius: float, theta: float, phi: float) -> np.ndarray:
    """Point at polar angle theta (from +Z) and azimuth phi (from +X), as the original generator placed it."""
    return np.array(
        [
            radius * np.sin(theta) * np.cos(phi),
            radius * np.sin(theta) * np.sin(phi),
            radius * np.cos(theta),
        ]
    )


def look_at_matrix(eye: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
    """Rotation (3, 3) that makes a Blender camera or light at `eye` look at `target` with world +Z up.

    Blender cameras and spot lights look along their local -Z with local +Y up, so the matrix's
    columns are the local axes in world coordinates: x = right, y = up, z = -forward.
    """
    target = np.zeros(3) if target is None else target  # the origin, where the object stands
    forward = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    up_hint = np.array([0.0, 0.0, 1.0])
    if abs(forward @ up_hint) > 1 - 1e-9:  # looking straight up or down: any right vector will do
        up_hint = np.array([0.0, 1.0, 0.0])
    right = np.cross(forward, up_hint)
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.stack([right, up, -forward], axis=1)
