import numpy as np
import pytest

from iebench.dataset.splits import SplitError, read_sie_split, stratified_split


def keys(sizes):
    return [(f"0{c}000000", f"m{i:03d}") for c, n in enumerate(sizes) for i in range(n)]


def test_stratified_split_per_class():
    sizes = [50, 10, 3, 2, 1]
    split = stratified_split(keys(sizes), 0.2, seed=1)
    for c, n in enumerate(sizes):
        val = sum(1 for (s, _), side in split.items() if s == f"0{c}000000" and side == "val")
        expected = 0 if n == 1 else min(max(round(n * 0.2), 1), n - 1)
        assert val == expected
    assert set(split.values()) == {"train", "val"}


def test_split_is_seeded_and_independent_of_other_classes():
    a = stratified_split(keys([20, 20]), 0.25, seed=3)
    b = stratified_split(keys([20]), 0.25, seed=3)
    assert {k: v for k, v in a.items() if k[0] == "00000000"} == b
    assert a == stratified_split(list(reversed(keys([20, 20]))), 0.25, seed=3)
    assert a != stratified_split(keys([20, 20]), 0.25, seed=4)


def test_bad_fraction():
    with pytest.raises(SplitError):
        stratified_split(keys([3]), 1.0)


def test_sie_split_files(tmp_path):
    np.save(tmp_path / "train_images.npy", np.array(["/02691156/a/", "/02691156/b/"]))
    np.save(tmp_path / "val_images.npy", np.array(["/02691156/c/"]))
    assert read_sie_split(tmp_path) == {("02691156", "a"): "train", ("02691156", "b"): "train", ("02691156", "c"): "val"}
    np.save(tmp_path / "val_images.npy", np.array(["/02691156/a/"]))
    with pytest.raises(SplitError, match="both"):
        read_sie_split(tmp_path)
