import numpy as np
from scipy.spatial.transform import Rotation

from iebench.rotations import euler_to_matrix, look_at_matrix, relative_quaternion


def test_relative_quaternion_is_r1_inverse_r2_in_xyzw():
    rng = np.random.default_rng(0)
    a1, a2 = rng.uniform(-1.5, 1.5, (2, 100, 3))
    q = relative_quaternion(a1, a2)
    r1, r2 = Rotation.from_euler("xyz", a1), Rotation.from_euler("xyz", a2)
    expected = (r1.inv() * r2).as_matrix()
    assert np.allclose(Rotation.from_quat(q).as_matrix(), expected)
    # R1 @ R_rel == R2
    assert np.allclose(euler_to_matrix(a1) @ Rotation.from_quat(q).as_matrix(), euler_to_matrix(a2))
    assert (relative_quaternion(a1, a2, canonical=True)[:, 3] >= 0).all()


def test_euler_is_extrinsic_x_then_y_then_z():
    angles = np.array([0.3, -0.2, 0.7])
    rx, ry, rz = (Rotation.from_rotvec(np.eye(3)[i] * angles[i]).as_matrix() for i in range(3))
    assert np.allclose(euler_to_matrix(angles), rz @ ry @ rx)


def test_look_at_points_minus_z_at_the_target_with_z_up():
    eye = np.array([0.0, 1.7677, 1.7677])
    m = look_at_matrix(eye)
    assert np.allclose(m.T @ m, np.eye(3))
    assert np.isclose(np.linalg.det(m), 1)
    assert np.allclose(-m[:, 2], -eye / np.linalg.norm(eye))
    assert m[2, 1] > 0  # local +Y has an upward component
    assert np.allclose(-look_at_matrix(np.array([0, 0, 4.0]))[:, 2], [0, 0, -1])  # straight down


def test_closed_form_matches_scipy_signs_included():
    rng = np.random.default_rng(3)
    a1, a2 = rng.uniform(-np.pi, np.pi, (2, 5000, 3))
    ours = relative_quaternion(a1, a2)
    scipy = (Rotation.from_euler("xyz", a1).inv() * Rotation.from_euler("xyz", a2)).as_quat()
    assert np.allclose(ours, scipy, atol=1e-12)
    single = relative_quaternion(a1[0], a2[0])
    assert single.shape == (4,) and np.allclose(single, scipy[0], atol=1e-12)
