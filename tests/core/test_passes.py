"""The pass table: encodings round-trip, names parse, members sort beside their view, checks catch bad passes."""

import numpy as np
import pytest

from iebench.dataset import format as fmt
from iebench.passes import PASSES, PassError, check_passes, colour_map, parse_passes, preview_depth


def test_depth_round_trips_to_the_millimetre_and_marks_no_surface_zero():
    depth = np.array([[2.2113, 6.0456], [0.0, 1e10]])
    back = PASSES["depth"].decode(PASSES["depth"].encode(depth))
    assert back.dtype == np.float32 and back.shape == (2, 2)
    assert np.allclose(back[0], [2.211, 6.046], atol=5e-4)
    assert back[1, 0] == 0 and back[1, 1] == 0  # no surface, and beyond 65.535 m


def test_normals_are_stored_as_unit_vectors_within_8_bit_rounding():
    normals = np.array([[[0.0, 0.0, -2.0], [0.3, -0.4, 0.5]], [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    back = PASSES["normal"].decode(PASSES["normal"].encode(normals))
    unit = normals / np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-9)
    assert np.abs(back - unit)[[0, 0, 1], [0, 1, 1]].max() < 1 / 127.5
    assert np.abs(back[1, 0]).max() < 1 / 127.5  # a zero vector stays (nearly) zero


def test_mask_and_camera_round_trip():
    mask = np.array([[True, False], [False, True]])
    assert np.array_equal(PASSES["mask"].decode(PASSES["mask"].encode(mask)), mask)
    record = {"convention": "opencv", "intrinsics": np.eye(3), "world_to_camera": np.eye(4), "object_to_world": np.eye(4)}
    back = PASSES["camera"].decode(PASSES["camera"].encode(record))
    assert back["convention"] == "opencv" and np.array_equal(back["world_to_camera"], np.eye(4))


def test_encoding_is_deterministic():
    depth = np.random.default_rng(0).uniform(1, 5, (16, 16))
    assert PASSES["depth"].encode(depth) == PASSES["depth"].encode(depth.copy())


def test_parse_passes_adds_the_camera_and_refuses_unknown_names():
    assert parse_passes("") == ()
    assert parse_passes("mask, depth") == ("camera", "depth", "mask")
    assert parse_passes(["normal"]) == ("camera", "normal")
    with pytest.raises(PassError, match="unknown pass albedo"):
        parse_passes("depth,albedo")
    with pytest.raises(PassError, match="no pass named in ','"):
        parse_passes(",")  # a typo, not a request for none


def test_pass_members_sort_beside_their_view():
    sample = fmt.ObjectSample(
        "s",
        "m",
        0,
        "c",
        (b"a", b"b"),
        np.zeros((2, 7)),
        tuple("abcdefg"),
        "p",
        ({"depth": b"d0", "mask": b"m0"}, {"depth": b"d1", "mask": b"m1"}),
    )
    names = [field for field, _ in sample.members()]
    assert names == sorted(names)
    assert names[:6] == ["000.depth.png", "000.jpg", "000.mask.png", "001.depth.png", "001.jpg", "001.mask.png"]
    assert fmt.pass_field(12, "camera") == "012.camera.json" and PASSES["depth"].loose_name(12) == "depth_12.png"


def test_an_rgb_only_sample_has_the_members_it_always_had():
    sample = fmt.ObjectSample("s", "m", 0, "c", (b"a",), np.zeros((1, 7)), tuple("abcdefg"), "p")
    assert [field for field, _ in sample.members()] == ["000.jpg", "cls", "json", "latents.npy"]
    assert b"passes" not in dict(sample.members())["json"]


def test_check_passes_finds_missing_depth_under_the_mask_and_bad_sizes():
    mask = np.zeros((8, 8), bool)
    mask[2:4, 2:4] = True
    depth = np.full((8, 8), 3.0)
    good = {"depth": PASSES["depth"].encode(depth), "mask": PASSES["mask"].encode(mask)}
    assert check_passes(good, 8) == []
    depth[3, 3] = 0
    assert ("depth", "is not positive everywhere the mask is set") in check_passes(good | {"depth": PASSES["depth"].encode(depth)}, 8)
    assert check_passes(good, 16)[0][1] == "is 8x8, expected 16x16"
    assert "not a readable PNG" in check_passes({"mask": b"not a png"}, 8)[0][1]


def test_depth_preview_is_bright_near_and_black_without_surface():
    preview = preview_depth(np.array([[2.0, 4.0, 0.0]]))
    assert np.array_equal(preview[0, 0], colour_map(np.array(1.0))) and np.array_equal(preview[0, 2], [0, 0, 0])
    assert preview[0, 0].sum() > preview[0, 1].sum()
