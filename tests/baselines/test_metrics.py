"""Metrics and probes on synthetic features with known answers."""

import numpy as np
import pytest
import torch

from iebench.baselines.metrics import (
    mrr_and_hits,
    prediction_error,
    r2_columns,
    r2_per_output,
    r2_sie,
    retrieval_ranks,
    top_k_accuracy,
)
from iebench.baselines.probes import (
    CachedViews,
    ProbeSettings,
    classification_scores,
    fit_classifier,
    fit_regressor,
    regression_scores,
)
from iebench.rotations import euler_to_quaternion, relative_quaternion


def quaternions(n=20000, seed=0):
    rng = np.random.default_rng(seed)
    a1, a2 = rng.uniform(-np.pi / 2, np.pi / 2, (2, n, 3))
    return relative_quaternion(a1, a2)


def test_perfect_predictor_scores_one():
    q = quaternions(1000)
    assert r2_sie(q, q) == 1 and r2_per_output(q, q) == 1


def test_constant_predictor_floor_differs_between_conventions():
    q = quaternions()
    constant = np.broadcast_to(q.mean(axis=0), q.shape)
    assert r2_per_output(q, constant) == pytest.approx(0, abs=1e-12)
    assert 0.18 < r2_sie(q, constant) < 0.28  # SIE's global-mean R^2: about 0.23 (SPEC 4)


def test_mrr_is_one_for_a_perfect_predictor_and_chance_for_a_shuffled_gallery():
    rng = np.random.default_rng(0)
    gallery = torch.from_numpy(rng.normal(size=(200, 10, 16)))
    ranks = retrieval_ranks(gallery.clone(), gallery)
    assert mrr_and_hits(ranks)["mrr"] == 1 and mrr_and_hits(ranks)["h@1"] == 1
    shuffled = gallery[:, torch.randperm(10)]
    random_ranks = retrieval_ranks(torch.from_numpy(rng.normal(size=(200, 10, 16))), shuffled)
    chance = np.mean(1 / np.arange(1, 11))  # expected 1/rank for a uniform rank over 10 views
    assert mrr_and_hits(random_ranks)["mrr"] == pytest.approx(chance, abs=0.03)
    assert mrr_and_hits(random_ranks)["h@5"] == pytest.approx(0.5, abs=0.05)


def test_pre_is_zero_for_perfect_retrieval():
    rng = np.random.default_rng(1)
    gallery = torch.from_numpy(rng.normal(size=(300, 32)))
    quats = euler_to_quaternion(rng.uniform(-1.5, 1.5, (300, 3)))
    assert prediction_error(gallery, gallery, quats, quats) == pytest.approx(0, abs=1e-9)
    assert prediction_error(gallery, gallery.roll(1, 0), quats, quats) > 0.1


def test_r2_per_output_scores_constant_columns_as_sklearn():
    """A constant target column scores 1 when predicted exactly, else 0 (sklearn's force_finite); the others as usual."""
    rng = np.random.default_rng(5)
    varying = rng.normal(size=(50, 2))
    target = np.concatenate([np.zeros((50, 1)), varying], axis=1)  # e.g. x of a yaw-only quaternion: always 0
    noisy = varying + rng.normal(0, 0.3, varying.shape)
    per_column = [1 - ((varying[:, j] - noisy[:, j]) ** 2).sum() / ((varying[:, j] - varying[:, j].mean()) ** 2).sum() for j in range(2)]
    exact = np.concatenate([np.zeros((50, 1)), noisy], axis=1)
    assert r2_per_output(target, exact) == pytest.approx((1 + sum(per_column)) / 3)
    off = np.concatenate([np.full((50, 1), 0.1), noisy], axis=1)
    assert r2_per_output(target, off) == pytest.approx((0 + sum(per_column)) / 3)
    assert np.isfinite(r2_per_output(np.zeros((5, 2)), np.ones((5, 2))))
    assert r2_sie(np.zeros((5, 2)), np.ones((5, 2))) == 0 and r2_sie(np.zeros((5, 2)), np.zeros((5, 2))) == 1  # fixed colours
    sevens = np.full((1000, 2), 0.7)  # their mean is not exactly 0.7
    assert r2_sie(sevens, sevens + 0.1) == 0 and r2_per_output(sevens, sevens + 0.1) == 0
    assert r2_columns(target, exact).tolist() == pytest.approx([1.0, *per_column])  # each column's own, in order


def test_top_k():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    assert top_k_accuracy(logits, np.array([1, 1]), 1) == 0.5 and top_k_accuracy(logits, np.array([1, 1]), 2) == 1


FAST = ProbeSettings(epochs=60, lr=1e-2, batch_size=64)


def test_linear_probe_separates_separable_features():
    rng = np.random.default_rng(2)
    centres = rng.normal(0, 4, (5, 8))

    def split(n):
        labels = rng.integers(5, size=n)
        reps = torch.from_numpy(centres[labels][:, None, :] + rng.normal(0, 0.3, (n, 3, 8))).float()
        return reps, labels

    (train, train_labels), (val, val_labels) = split(200), split(100)
    cpu = torch.device("cpu")
    head = fit_classifier(CachedViews(train), train_labels, 5, FAST, cpu)
    out = classification_scores(head, CachedViews(val), val_labels, 5, FAST, cpu)
    assert out["top1"] == 1.0 and out["top5"] == 1.0


def test_regression_probe_recovers_an_encoded_rotation():
    rng = np.random.default_rng(3)

    def split(n):
        latents = np.concatenate([rng.uniform(-1.5, 1.5, (n, 4, 3)), rng.uniform(0, 1, (n, 4, 4))], axis=2)
        reps = torch.from_numpy(np.concatenate([np.sin(latents[..., :3]), np.cos(latents[..., :3])], axis=2)).float()
        return reps, latents

    (train, train_latents), (val, val_latents) = split(400), split(100)
    target = lambda l1, l2: relative_quaternion(l1[:, :3], l2[:, :3])  # noqa: E731
    settings, cpu = ProbeSettings(epochs=150, lr=1e-3, batch_size=64), torch.device("cpu")
    head = fit_regressor(CachedViews(train), train_latents, target, settings, cpu)
    out = regression_scores(head, CachedViews(val), val_latents, target, settings, cpu)
    assert out["r2_sie"] > 0.8 and out["r2_per_output"] > 0.6


def test_a_probe_is_a_pure_function_of_its_inputs():
    """The head is built under the probe's seed: the same call twice gives the same head and the same numbers."""
    rng = np.random.default_rng(4)
    reps, labels = torch.from_numpy(rng.normal(size=(40, 3, 8))).float(), rng.integers(3, size=40)
    settings, cpu = ProbeSettings(epochs=3, batch_size=16, seed=5), torch.device("cpu")
    first, second = (fit_classifier(CachedViews(reps), labels, 3, settings, cpu) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    other = fit_classifier(CachedViews(reps), labels, 3, ProbeSettings(epochs=3, batch_size=16, seed=6), cpu)
    assert not torch.equal(first.weight, other.weight)
