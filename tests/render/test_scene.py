import colorsys
import math

import numpy as np

from iebench.presets import LATENT_NAMES, TRANSLATION_NAMES
from iebench.render import scene


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


def test_camera_record_projects_the_origin_to_the_image_centre():
    view = scene.view_scene(LATENT_NAMES, np.array([0.4, -0.3, 1.1, 0.2, 0.3, 1.0, 0.5]))
    record = scene.camera_record(view, 64)
    k, w2c = record["intrinsics"], record["world_to_camera"]
    assert np.isclose(k[0, 0], 50 / 36 * 64) and np.isclose(k[0, 2], 31.5)
    assert np.allclose(w2c[:3, :3] @ w2c[:3, :3].T, np.eye(3)) and np.isclose(np.linalg.det(w2c[:3, :3]), 1)
    assert np.allclose(w2c @ np.append(scene.CAMERA_LOCATION, 1), [0, 0, 0, 1])  # the camera sits at its origin
    origin = w2c @ np.array([0, 0, 0, 1.0])
    assert np.isclose(origin[2], scene.CAMERA_DISTANCE)  # in front: OpenCV's z looks into the scene
    u, v, _ = k @ origin[:3] / origin[2]
    assert np.allclose([u, v], [31.5, 31.5])
    above = k @ (w2c @ np.array([0, 0, 0.3, 1.0]))[:3]
    assert above[1] / above[2] < 31.5  # up in the world is up in the image: OpenCV's y points down


def test_object_matrix_is_the_xyz_euler_rotation_and_location():
    names = (*LATENT_NAMES, *TRANSLATION_NAMES)
    view = scene.view_scene(names, np.array([0.0, 0.0, math.pi / 2, 0.2, 0.3, 1.0, 0.5, 0.1, 0.2, 0.3]))
    matrix = scene.object_to_world(view)
    assert np.allclose(matrix[:3, :3] @ [1, 0, 0], [0, 1, 0]) and np.allclose(matrix[:3, 3], [0.1, 0.2, 0.3])


def test_world_normals_go_to_the_camera_frame():
    up = scene.normals_to_camera(np.array([[[0.0, 0.0, 1.0]]]))[0, 0]
    towards_camera = scene.normals_to_camera(scene.CAMERA_LOCATION[None, None] / scene.CAMERA_DISTANCE)[0, 0]
    assert np.allclose(towards_camera, [0, 0, -1])
    assert np.allclose(up, [0, -np.sqrt(0.5), -np.sqrt(0.5)])
