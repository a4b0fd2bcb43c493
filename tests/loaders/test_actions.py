import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from iebench.loaders.actions import ActionError, action_size, compute_action
from iebench.presets import LATENT_NAMES, TRANSLATION_NAMES


def test_actions_from_latents():
    rng = np.random.default_rng(0)
    l1, l2 = rng.uniform(-1.5, 1.5, (2, 50, 7))
    q = compute_action("rotation", l1, l2, LATENT_NAMES)
    expected = (Rotation.from_euler("xyz", l1[:, :3]).inv() * Rotation.from_euler("xyz", l2[:, :3])).as_quat()
    assert q.dtype == np.float32 and np.allclose(q, expected, atol=1e-6)
    euler = compute_action("euler", l1, l2, LATENT_NAMES)
    assert np.allclose(Rotation.from_euler("xyz", euler).as_matrix(), Rotation.from_quat(expected).as_matrix(), atol=1e-5)
    colour = compute_action("rotation-color", l1, l2, LATENT_NAMES)
    assert colour.shape == (50, 6) and np.allclose(colour[:, 4], l2[:, 3] - l1[:, 3]) and np.allclose(colour[:, 5], l2[:, 6] - l1[:, 6])
    names = LATENT_NAMES + TRANSLATION_NAMES
    everything = compute_action("all", np.zeros(10), np.arange(10.0), names)
    assert everything.shape == (11,) and np.allclose(everything[4:], np.arange(3, 10))
    assert compute_action("none", l1, l2, LATENT_NAMES).shape == (50, 0)
    assert [action_size(a, LATENT_NAMES) for a in ("rotation", "euler", "rotation-color", "all", "none")] == [4, 3, 6, 8, 0]


def test_sign_not_canonicalised_unless_asked():
    rng = np.random.default_rng(1)
    l1, l2 = rng.uniform(-1.57, 1.57, (2, 2000, 7))
    w = compute_action("rotation", l1, l2, LATENT_NAMES)[:, 3]
    assert 0 < (w < 0).mean() < 0.2  # SIE parity: a few per cent negative
    assert (compute_action("rotation", l1, l2, LATENT_NAMES, canonical=True)[:, 3] >= 0).all()


def test_unknown_or_impossible_actions():
    with pytest.raises(ActionError, match="unknown action"):
        compute_action("colour", np.zeros(7), np.zeros(7), LATENT_NAMES)
    with pytest.raises(ActionError, match="floor_hue"):
        compute_action("rotation-color", np.zeros(3), np.zeros(3), ("rot_x", "rot_y", "rot_z"))
