import math

import numpy as np
import pytest

from iebench.presets import (
    LATENT_NAMES,
    PRESETS,
    TRANSLATION_NAMES,
    PresetError,
    get_preset,
    load_variant,
    parse_factor_flag,
    sample_view_latents,
    with_overrides,
)

PI = math.pi


def draws(preset, n=400, seed=0):
    return np.array([sample_view_latents(preset, seed, "03001627", f"m{i % 7}", i) for i in range(n)])


def test_3diebench_order_and_ranges_match_the_spec():
    preset = get_preset("3diebench")
    assert preset.latent_names == LATENT_NAMES == ("rot_x", "rot_y", "rot_z", "floor_hue", "spot_theta", "spot_phi", "spot_hue")
    values = draws(preset)
    bounds = [(-PI / 2, PI / 2)] * 3 + [(0, 1), (0, PI / 4), (0, 2 * PI), (0, 1)]
    for column, (lo, hi) in enumerate(bounds):
        assert values[:, column].min() >= lo and values[:, column].max() <= hi
        # uniform: the draws fill the range, not a corner of it
        assert values[:, column].min() < lo + 0.1 * (hi - lo) and values[:, column].max() > hi - 0.1 * (hi - lo)
    assert preset.contains(values).all()


def test_every_preset_draws_inside_its_declared_set():
    for preset in PRESETS.values():
        values = draws(preset, 200)
        assert values.shape == (200, len(preset.latent_names))
        assert preset.contains(values).all(), preset.name


def test_ood_preset_angles_lie_outside_the_box_but_are_training_rotations():
    values = draws(get_preset("3diebench-ood"))
    assert (np.abs(values[:, :3]) >= PI / 2).all()
    from iebench.rotations import canonical_euler

    assert (np.abs(canonical_euler(values[:, :3])) <= PI / 2 + 1e-9).all()  # SPEC 1c


def test_rotation_ood_stores_canonical_angles_outside_the_box():
    values = draws(get_preset("rotation-ood"))
    assert (np.abs(values[:, 1]) <= PI / 2).all()
    assert np.any(np.abs(values[:, :3]) > PI / 2, axis=1).all()
    assert not get_preset("3diebench").contains(values).all()


def test_translation_preset_has_ten_latents():
    preset = get_preset("3diebench-t")
    assert preset.latent_names[7:] == TRANSLATION_NAMES
    values = draws(preset)
    assert (np.abs(values[:, 7:]) <= 0.5).all()


def test_rotation_only_fixes_lights_and_floor():
    values = draws(get_preset("rotation-only"))
    assert np.ptp(values[:, 3:], axis=0).max() == 0
    assert np.ptp(values[:, :3], axis=0).min() > 2.5


def test_factors_depend_on_seed_object_and_view_only():
    preset = get_preset("3diebench")
    a = sample_view_latents(preset, 3, "03001627", "abc", 5)
    assert np.array_equal(a, sample_view_latents(preset, 3, "03001627", "abc", 5))
    assert not np.array_equal(a, sample_view_latents(preset, 4, "03001627", "abc", 5))
    assert not np.array_equal(a, sample_view_latents(preset, 3, "03001627", "abd", 5))
    assert not np.array_equal(a, sample_view_latents(preset, 3, "03001627", "abc", 6))


def test_overrides_fix_values_and_set_ranges():
    preset = with_overrides(get_preset("3diebench"), {"floor_hue": 0.25, "rot_z": [-0.1, 0.1]})
    values = draws(preset, 100)
    assert (values[:, 3] == 0.25).all()
    assert (np.abs(values[:, 2]) <= 0.1).all()
    assert parse_factor_flag("rot_x=-0.5:0.5") == ("rot_x", [-0.5, 0.5])
    assert parse_factor_flag("floor_hue=0.3") == ("floor_hue", 0.3)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"floor_hue": [0.5, 0.2]}, "empty"),
        ({"floor_hue": [0.5, 1.5]}, "possible values"),
        ({"spot_theta": 2.0}, "possible values"),
        ({"colour": 0.1}, "no factor"),
        ({"rot_x": "big"}, "expected a number"),
    ],
)
def test_impossible_overrides_are_clear_errors(overrides, message):
    with pytest.raises(PresetError, match=message):
        with_overrides(get_preset("3diebench"), overrides)


def test_rotation_ood_rotation_cannot_be_set_alone():
    with pytest.raises(PresetError, match="as a whole"):
        with_overrides(get_preset("rotation-ood"), {"rot_x": 0.0})


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(PresetError, match="3diebench-t"):
        get_preset("3diebench-x")


def test_variant_file(tmp_path):
    path = tmp_path / "warm.toml"
    path.write_text(
        'preset = "3diebench-t"\nname = "warm"\n[factors]\nfloor_hue = [0.0, 0.1]\nspot_theta = 0.2\nrot_z = [[-3.0, -2.0], [2.0, 3.0]]\n'
    )
    preset = load_variant(path)
    assert preset.name == "warm" and len(preset.latent_names) == 10
    values = draws(preset, 200)
    assert (values[:, 3] <= 0.1).all() and (values[:, 4] == 0.2).all()
    assert ((np.abs(values[:, 2]) >= 2.0) & (np.abs(values[:, 2]) <= 3.0)).all()
    assert (values[:, 2] < 0).any() and (values[:, 2] > 0).any()
    bad = tmp_path / "bad.toml"
    bad.write_text("[factors]\nfloor_hue = [2, 3]\n")
    with pytest.raises(PresetError, match="floor_hue"):
        load_variant(bad)


@pytest.mark.parametrize(
    "text, message",
    [
        ("factors = 3\n", "factors must be a table, got 3"),
        ("name = [1]\n", "name must be a string"),
        ("[factors]\nrot_x = true\n", "expected a number"),
        ("[factors]\nnosuch = 1\n", "has no factor 'nosuch'"),
        ("[factors]\nfloor_hue = [2, 3]\n", "floor_hue"),
    ],
)
def test_a_broken_variant_file_is_named_with_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "v.toml"
    path.write_text(text)
    with pytest.raises(PresetError, match=f"variant file {path}: .*{message}"):
        load_variant(path)
    path.write_bytes(bytes(range(128, 256)))
    with pytest.raises(PresetError, match=f"variant file {path}"):
        load_variant(path)
