"""SIE's loss against a written-out transcription of SPEC 3, and the predictor's linearity."""

import numpy as np
import pytest
import torch

from iebench.baselines.heads import HyperPredictor
from iebench.baselines.losses import covariance_term, sie_loss, variance_term


def spec_std(z: np.ndarray) -> float:
    # std(z) = mean(relu(1 - sqrt(var(z) + 1e-4))) / 2, unbiased variance per dimension
    out = 0.0
    for j in range(z.shape[1]):
        column = z[:, j]
        var = sum((v - column.mean()) ** 2 for v in column) / (len(column) - 1)
        out += max(0.0, 1 - np.sqrt(var + 1e-4))
    return out / z.shape[1] / 2


def spec_cov(z: np.ndarray) -> float:
    # sum of squared off-diagonal covariance entries / dim, covariance over (N - 1)
    n, d = z.shape
    total = 0.0
    for a in range(d):
        for b in range(d):
            if a != b:
                c = sum((z[i, a] - z[:, a].mean()) * (z[i, b] - z[:, b].mean()) for i in range(n)) / (n - 1)
                total += c * c
    return total / d


def mse(a, b):
    return float(np.mean((a - b) ** 2))


@pytest.fixture
def embeddings():
    rng = np.random.default_rng(0)
    # small scale so that some dimensions fall under std 1 and the hinge is active
    return [rng.normal(0, s, (6, 4)) for s in (0.5, 0.7, 1.5, 0.9, 0.3)]


def test_sie_loss_matches_the_written_out_formula(embeddings):
    inv1, inv2, equi1, equi2, pred = embeddings
    x, y = np.concatenate([inv1, equi1], 1), np.concatenate([inv2, equi2], 1)
    expected = (
        10 * mse(inv1, inv2)
        + 4.5 * mse(pred, equi2)
        + 10 * (spec_std(x) + spec_std(y))
        + 10 * spec_std(pred)
        + 1 * (spec_cov(x) + spec_cov(y))
    )
    terms = sie_loss(*(torch.tensor(e) for e in embeddings))
    assert terms["loss"].item() == pytest.approx(expected, rel=1e-10)
    assert terms["invariance"].item() == pytest.approx(mse(inv1, inv2))
    assert terms["variance"].item() == pytest.approx(spec_std(x) + spec_std(y))
    assert terms["covariance"].item() == pytest.approx(spec_cov(x) + spec_cov(y))


def test_variants_drop_their_terms(embeddings):
    inv1, inv2, equi1, equi2, pred = (torch.tensor(e) for e in embeddings)
    full = sie_loss(inv1, inv2, equi1, equi2, pred)
    novar = sie_loss(inv1, inv2, equi1, equi2, pred, pred_std=False)
    assert novar["loss"].item() == pytest.approx(full["loss"].item() - 10 * full["pred_variance"].item())
    only = sie_loss(None, None, equi1, equi2, pred, equi_coeff=10.0)  # the authors' SIEOnlyEqui: sim_coeff alone
    e1, e2 = embeddings[2], embeddings[3]
    expected = 10 * mse(embeddings[4], e2) + 10 * (spec_std(e1) + spec_std(e2) + spec_std(embeddings[4])) + spec_cov(e1) + spec_cov(e2)
    assert only["loss"].item() == pytest.approx(expected, rel=1e-10)


def test_terms_on_known_cases():
    z = torch.randn(4096, 3, dtype=torch.float64) * 2
    assert variance_term(z).item() == 0  # every std above 1: no penalty
    assert variance_term(torch.zeros(8, 3)).item() == pytest.approx((1 - 1e-2) / 2)
    independent = torch.randn(20000, 4, dtype=torch.float64)
    assert covariance_term(independent).item() < 1e-3
    same = torch.randn(100, 1, dtype=torch.float64).repeat(1, 2)
    assert covariance_term(same).item() == pytest.approx(2 * same[:, 0].var().item() ** 2 / 2)


def test_batch_of_one_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2"):
        variance_term(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="at least 2"):
        covariance_term(torch.zeros(1, 3))


def test_hypernetwork_matrix_is_linear_in_the_action():
    torch.manual_seed(0)
    predictor = HyperPredictor(action_dim=4, dim=5).double()
    q1, q2 = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    assert torch.allclose(predictor.matrix(2 * q1 - 3 * q2), 2 * predictor.matrix(q1) - 3 * predictor.matrix(q2))
    z = torch.randn(3, 5, dtype=torch.float64)
    assert torch.allclose(predictor(z, q1), torch.einsum("nij,nj->ni", predictor.matrix(q1), z))
    assert predictor.matrix(q1).shape == (3, 5, 5)
    assert sum(p.numel() for p in predictor.parameters()) == 4 * 25  # one bias-free linear map
