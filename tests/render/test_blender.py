"""The Blender scene itself, driven in this process (real bpy, tiny renders)."""

import colorsys
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import trimesh

from iebench.presets import LATENT_NAMES
from iebench.render import procedural, scene
from iebench.render.settings import RenderSettings
from iebench.render.writer import encode_jpeg

bpy = pytest.importorskip("bpy", reason="the render extra (bpy) is part of the dev set-up")
from iebench.render.blender import SceneRenderer  # noqa: E402


@pytest.fixture(scope="module")
def renderer():
    return SceneRenderer(RenderSettings(resolution=48, samples=8, denoiser="fast"), threads=2)


@pytest.fixture(scope="module")
def marker_obj(tmp_path_factory) -> Path:
    """A Y-up OBJ column: red cube at its top (+Z before the Y-up turn), blue cube at its bottom."""
    column = trimesh.creation.box(extents=(0.12, 0.12, 1.0))
    top = trimesh.creation.box(extents=(0.3, 0.3, 0.3), transform=trimesh.transformations.translation_matrix((0, 0, 0.55)))
    bottom = trimesh.creation.box(extents=(0.3, 0.3, 0.3), transform=trimesh.transformations.translation_matrix((0, 0, -0.55)))
    root = tmp_path_factory.mktemp("marker")
    return procedural.write_object(root, "marker", "m0", [(column, (0.8, 0.8, 0.8)), (top, (1, 0, 0)), (bottom, (0, 0, 1))])


def latents(rot=(0.0, 0.0, 0.0), floor_hue=0.33, spot_theta=0.0, spot_phi=0.0, spot_hue=0.33):
    return np.array([*rot, floor_hue, spot_theta, spot_phi, spot_hue])


def render(renderer, mesh, values):
    loaded = renderer.load(mesh, 10**6)
    try:
        return renderer.render_view(loaded, scene.view_scene(LATENT_NAMES, values))
    finally:
        renderer.unload(loaded)


def centroid_row(image, channel):
    rgb = image.astype(int)
    others = [c for c in range(3) if c != channel]
    mask = (rgb[..., channel] > rgb[..., others[0]] + 40) & (rgb[..., channel] > rgb[..., others[1]] + 40)
    assert mask.sum() >= 3, "marker not visible"
    return np.nonzero(mask)[0].mean()


def test_object_at_zero_rotation_stands_upright(renderer, marker_obj):
    image = render(renderer, marker_obj, latents())
    assert centroid_row(image, 0) < centroid_row(image, 2) - 5  # red top above blue bottom


def test_rotation_follows_blender_xyz_euler(renderer, marker_obj):
    # Rx(-pi/2) takes +Z to +Y, towards the camera (azimuth pi/2): the red end comes forward and drops below.
    image = render(renderer, marker_obj, latents(rot=(-math.pi / 2, 0, 0)))
    assert centroid_row(image, 0) > centroid_row(image, 2) + 2


def test_camera_lights_and_settings_follow_the_scene_description(renderer, marker_obj):
    values = latents(spot_theta=0.6, spot_phi=1.2, spot_hue=0.8, floor_hue=0.1)
    render(renderer, marker_obj, values)
    camera = bpy.data.objects["Camera"]
    assert np.allclose(np.array(camera.matrix_world)[:3, 3], scene.CAMERA_LOCATION, atol=1e-5)
    assert np.allclose(np.array(camera.matrix_world)[:3, :3], scene.CAMERA_ROTATION, atol=1e-5)
    assert math.isclose(camera.data.lens, 50.0) and math.isclose(camera.data.sensor_width, 36.0)
    spot = bpy.data.objects["Spot"]
    m = np.array(spot.matrix_world)
    assert np.allclose(m[:3, 3], scene.spot_location(0.6, 1.2), atol=1e-5)
    assert np.allclose(-m[:3, 2], -m[:3, 3] / 4.0, atol=1e-5)
    assert np.allclose(tuple(spot.data.color), colorsys.hsv_to_rgb(0.8, 1.0, 0.8), atol=1e-6)
    assert math.isclose(spot.data.energy, 500) and math.isclose(spot.data.spot_size, math.pi / 8, rel_tol=1e-6)
    sun = bpy.data.objects["Sun"]
    assert np.allclose(-np.array(sun.matrix_world)[:3, 2], [0, 0, -1]) and math.isclose(sun.data.energy, 1.5)
    floor = bpy.data.objects["Floor"]
    assert math.isclose(floor.location.z, -1.0)
    assert np.allclose(
        tuple(floor.data.materials[0].node_tree.nodes["Diffuse BSDF"].inputs["Color"].default_value)[:3],
        colorsys.hsv_to_rgb(0.1, 0.6, 0.6),
        atol=1e-6,
    )
    s = bpy.context.scene
    assert s.view_settings.view_transform == "Filmic" and s.cycles.use_light_tree is False
    assert (s.cycles.max_bounces, s.cycles.diffuse_bounces, s.cycles.glossy_bounces) == (3, 3, 0)


def hue_of(pixels):
    r, g, b = pixels.reshape(-1, 3).mean(0) / 255
    return colorsys.rgb_to_hsv(r, g, b)[0]


def hue_distance(a, b):
    d = abs(a - b) % 1
    return min(d, 1 - d)


@pytest.mark.parametrize("floor_hue", [0.0, 0.15, 0.33, 0.6])
def test_floor_colour_in_the_image_matches_floor_hue(renderer, marker_obj, floor_hue):
    image = render(renderer, marker_obj, latents(floor_hue=floor_hue, spot_theta=0.0, spot_hue=0.5))
    corners = np.concatenate([image[:6, :6], image[:6, -6:]])  # far floor, outside the spot's cone
    assert hue_distance(hue_of(corners), floor_hue) < 0.06
    # The published files' red/blue swap moves hue h to 2/3 - h: the same check catches it.
    from io import BytesIO

    from PIL import Image

    swapped = np.asarray(Image.open(BytesIO(encode_jpeg(image, 95, legacy_bgr=True))))
    if hue_distance(floor_hue, (2 / 3 - floor_hue) % 1) > 0.15:
        assert hue_distance(hue_of(np.concatenate([swapped[:6, :6], swapped[:6, -6:]])), floor_hue) > 0.1


def test_object_is_visible(renderer, marker_obj):
    image = render(renderer, marker_obj, latents()).astype(float)
    centre, floor = image[18:30, 18:30], image[:8].reshape(-1, 3).mean(0)
    assert np.abs(centre - floor).sum(-1).max() > 100


def test_unload_leaves_no_data_behind(renderer, marker_obj):
    meshes, materials = len(bpy.data.meshes), len(bpy.data.materials)
    for _ in range(3):
        render(renderer, marker_obj, latents())
    assert len(bpy.data.meshes) == meshes and len(bpy.data.materials) == materials


# ------------------------------------------------------------------------------------------ named passes
SPHERE_RADIUS = 1 / (2 * math.sqrt(3))  # a sphere normalised to unit bounding-box diagonal


@pytest.fixture
def with_passes(renderer):
    renderer.set_passes(("camera", "depth", "mask", "normal"))
    yield renderer
    renderer.set_passes(())


@pytest.fixture(scope="module")
def sphere_obj(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sphere")
    return procedural.write_object(root, "sphere", "s0", [(trimesh.creation.icosphere(4, 0.5), (0.8, 0.3, 0.2))])


def render_passes(renderer, mesh, values, location=None):
    loaded = renderer.load(mesh, 10**6)
    try:
        view = scene.view_scene(LATENT_NAMES, values)
        if location is not None:
            view = dataclasses.replace(view, object_location=location)
        return renderer.render_passes(loaded, view)
    finally:
        renderer.unload(loaded)


def test_passes_leave_the_image_unchanged(renderer, marker_obj):
    values = latents(rot=(0.3, -0.2, 0.9), spot_theta=0.4)
    plain = render(renderer, marker_obj, values)
    renderer.set_passes(("camera", "depth", "mask", "normal"))
    try:
        rgb, arrays = render_passes(renderer, marker_obj, values)
    finally:
        renderer.set_passes(())
    assert np.array_equal(rgb, plain)
    assert set(arrays) == {"camera", "depth", "mask", "normal"}


def test_mask_depth_and_normals_of_a_sphere(with_passes, sphere_obj):
    rgb, arrays = render_passes(with_passes, sphere_obj, latents())
    mask, depth, normal, camera = arrays["mask"], arrays["depth"], arrays["normal"], arrays["camera"]
    assert mask.shape == depth.shape == normal.shape[:2] == rgb.shape[:2] == (48, 48)
    # The silhouette: a disc around the origin's projection, of the sphere's projected area.
    k, w2c = camera["intrinsics"], camera["world_to_camera"]
    ys, xs = np.nonzero(mask)
    assert np.allclose([xs.mean(), ys.mean()], [k[0, 2], k[1, 2]], atol=0.5)
    expected_area = math.pi * (k[0, 0] * SPHERE_RADIUS / math.sqrt(scene.CAMERA_DISTANCE**2 - SPHERE_RADIUS**2)) ** 2
    assert abs(mask.sum() - expected_area) < 0.12 * expected_area
    # Depth at the mask's centre: the camera distance minus the sphere's radius; the floor lies farther.
    centre = depth[int(round(ys.mean())), int(round(xs.mean()))]
    assert abs(centre - (scene.CAMERA_DISTANCE - SPHERE_RADIUS)) < 0.01
    assert depth[mask].max() < scene.CAMERA_DISTANCE < depth[~mask].min()
    # Normals face the camera: against each pixel's viewing ray, and straight at it in the middle.
    rays = np.linalg.inv(k) @ np.stack([xs, ys, np.ones_like(xs)]).astype(float)
    facing = np.einsum("ij,ji->i", normal[ys, xs], rays)
    assert (facing < 0).mean() > 0.97
    assert np.allclose(normal[int(round(ys.mean())), int(round(xs.mean()))], [0, 0, -1], atol=0.08)
    floor = w2c[:3, :3] @ [0, 0, 1]
    assert np.allclose(normal[0, 0], floor, atol=0.02)


def test_mask_area_follows_the_rotation_and_is_empty_without_the_object(with_passes, marker_obj):
    standing = render_passes(with_passes, marker_obj, latents())[1]["mask"].sum()
    towards_camera = render_passes(with_passes, marker_obj, latents(rot=(-math.pi / 4, 0, 0)))[1]["mask"].sum()
    lying = render_passes(with_passes, marker_obj, latents(rot=(0, math.pi / 2, 0)))[1]["mask"].sum()
    assert standing > 0 and towards_camera > 0 and lying > 0
    assert len({standing, towards_camera, lying}) == 3
    assert abs(standing - towards_camera) > 0.1 * standing  # the column points at the camera: its silhouette shrinks
    hidden = render_passes(with_passes, marker_obj, latents(), location=(0.0, 0.0, -50.0))[1]  # below the floor
    assert hidden["mask"].sum() == 0 and hidden["depth"].min() > scene.CAMERA_DISTANCE


def test_camera_record_matches_blender(with_passes, marker_obj):
    values = latents(rot=(0.4, -0.7, 1.2))
    loaded = with_passes.load(marker_obj, 10**6)
    try:
        _, arrays = with_passes.render_passes(loaded, scene.view_scene(LATENT_NAMES, values))
        assert np.allclose(arrays["camera"]["object_to_world"], np.array(loaded.obj.matrix_world), atol=1e-6)
    finally:
        with_passes.unload(loaded)
    blender_camera = np.array(bpy.data.objects["Camera"].matrix_world)
    opencv_to_blender = np.diag([1.0, -1.0, -1.0, 1.0])
    assert np.allclose(np.linalg.inv(blender_camera @ opencv_to_blender), arrays["camera"]["world_to_camera"], atol=1e-6)


def test_passes_are_deterministic(with_passes, sphere_obj):
    from iebench.passes import PASSES

    first = render_passes(with_passes, sphere_obj, latents(rot=(0.2, 0.1, 0.3)))[1]
    second = render_passes(with_passes, sphere_obj, latents(rot=(0.2, 0.1, 0.3)))[1]
    for name in first:
        assert PASSES[name].encode(first[name]) == PASSES[name].encode(second[name])
