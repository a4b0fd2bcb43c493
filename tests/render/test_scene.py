import colorsys
import math

import numpy as np
from iebench.render import scene

from iebench.presets import LATENT_NAMES, TRANSLATION_NAMES


def test_camera_matches_the_original_placement():
    r, t, p = 2.5, math.pi / 4, math.pi / 2
    expected = [r * math.sin(t) * math.cos(p), r * math.sin(t) * math.sin(p), r * math.cos(t)]
    assert np.allclose(scene.CAMERA_LOCATION, expected)
    forward = -scene.CAMERA_ROTATION[:, 2]
    assert np.allclose(forward, -scene.CAMERA_LOCATION / np.linalg.norm(scene.CAMERA_LOCATION))


def test_view_scene_places_the_spot_and_colours_from_latents():
    latents = np.array([0.1, -0.2, 0.3, 0.25, 0.5, 2.0, 0.75])
    view = scene.view_scene(LATENT_NAMES, latents)
    assert view.object_rotation == (0.1, -0.2, 0.3)
    assert view.object_location == (0.0, 0.0, 0.0)
    spot = np.array(view.spot_location)
    assert np.isclose(np.linalg.norm(spot), 4.0)
    assert np.isclose(math.acos(spot[2] / 4.0), 0.5) and np.isclose(math.atan2(spot[1], spot[0]), 2.0)
    assert np.allclose(-view.spot_rotation[:, 2], -spot / 4.0)  # the spot shines at the origin
    assert np.allclose(view.floor_rgb, colorsys.hsv_to_rgb(0.25, 0.6, 0.6))
    assert np.allclose(view.spot_rgb, colorsys.hsv_to_rgb(0.75, 1.0, 0.8))


def test_translation_latents_move_the_object():
    names = LATENT_NAMES + TRANSLATION_NAMES
    view = scene.view_scene(names, np.array([0, 0, 0, 0, 0, 0, 0, 0.1, -0.2, 0.3]))
    assert view.object_location == (0.1, -0.2, 0.3)
