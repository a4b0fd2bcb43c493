"""Loss terms as plain functions over embeddings (no modules, no state): SIE's, and the pieces others share.

Conventions follow SPEC 3 and 8: variances are the unbiased variance of the actual batch, and the
covariance divides by (N - 1) with N the actual (gathered) batch size. The released SIE code divides
by the configured batch size minus one, which is wrong on a partial last batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def variance_term(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """mean(relu(1 - sqrt(var(z) + eps))) / 2: pushes every dimension's standard deviation up to 1."""
    if z.shape[0] < 2:
        raise ValueError(f"the variance term needs a batch of at least 2 embeddings, got {z.shape[0]}")
    std = torch.sqrt(z.var(dim=0, unbiased=True) + eps)
    return F.relu(1 - std).mean() / 2


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal covariance entries / dim: decorrelates the dimensions."""
    n, d = z.shape
    if n < 2:
        raise ValueError(f"the covariance term needs a batch of at least 2 embeddings, got {n}")
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (n - 1)
    off_diagonal = cov - torch.diag(torch.diagonal(cov))
    return off_diagonal.pow(2).sum() / d


def sie_loss(
    inv1: torch.Tensor | None,
    inv2: torch.Tensor | None,
    equi1: torch.Tensor,
    equi2: torch.Tensor,
    pred: torch.Tensor,
    sim_coeff: float = 10.0,
    equi_coeff: float = 4.5,
    std_coeff: float = 10.0,
    cov_coeff: float = 1.0,
    pred_std: bool = True,
) -> dict[str, torch.Tensor]:
    """SIE's loss (SPEC 3) on (gathered) embeddings; returns every term and `loss`, their weighted sum.

    x = [inv1, equi1], y = [inv2, equi2]:
    sim * MSE(inv1, inv2) + equi * MSE(pred, equi2) + std * (std(x) + std(y)) + std * std(pred)
    + cov * (cov(x) + cov(y)). `equi_coeff` is the authors' equi_factor x sim_coeff (0.45 x 10) for
    SIE, and sim_coeff alone for the "only equivariant" variant (`inv1=None`), whose invariance term
    is dropped; `pred_std=False` drops std(pred) (the "no variance" variant).
    """
    x = equi1 if inv1 is None else torch.cat([inv1, equi1], dim=1)
    y = equi2 if inv2 is None else torch.cat([inv2, equi2], dim=1)
    terms = {
        "invariance": F.mse_loss(inv1, inv2) if inv1 is not None else x.new_zeros(()),
        "equivariance": F.mse_loss(pred, equi2),
        "variance": variance_term(x) + variance_term(y),
        "pred_variance": variance_term(pred) if pred_std else x.new_zeros(()),
        "covariance": covariance_term(x) + covariance_term(y),
    }
    terms["loss"] = (
        sim_coeff * terms["invariance"]
        + equi_coeff * terms["equivariance"]
        + std_coeff * (terms["variance"] + terms["pred_variance"])
        + cov_coeff * terms["covariance"]
    )
    return terms


def vicreg_loss(
    x: torch.Tensor, y: torch.Tensor, sim_coeff: float = 10.0, std_coeff: float = 10.0, cov_coeff: float = 1.0
) -> dict[str, torch.Tensor]:
    """VICReg: sim * MSE(x, y) + std * (std(x) + std(y)) + cov * (cov(x) + cov(y)), SIE's std and cov definitions."""
    terms = {
        "invariance": F.mse_loss(x, y),
        "variance": variance_term(x) + variance_term(y),
        "covariance": covariance_term(x) + covariance_term(y),
    }
    terms["loss"] = sim_coeff * terms["invariance"] + std_coeff * terms["variance"] + cov_coeff * terms["covariance"]
    return terms


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SimCLR's NT-Xent: each of the 2N embeddings against its partner, with the other 2N - 2 as negatives.

    Cosine similarities divided by the temperature; the mean cross-entropy over all 2N anchors.
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    partners = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, partners)
