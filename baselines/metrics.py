"""Evaluation metrics as pure functions over arrays (SPEC 4): R^2 both ways, top-k, MRR, H@k, PRE."""

from __future__ import annotations

import numpy as np
import torch


def r2_sie(target: np.ndarray, prediction: np.ndarray) -> float:
    """R^2 as SIE computes it: one global mean over every entry of the N x k target matrix.

    1 - sum((t - p)^2) / sum((t - mean(t))^2). A constant predictor scores above 0 whenever the
    columns' means differ (about 0.23 on 3DIEBench's relative quaternions): not sklearn's R^2. A
    target that is one constant (colour on data whose colours are fixed) scores as `r2_columns` scores
    a constant column: 1 if predicted exactly, else 0, never a division by zero.
    """
    target, prediction = np.asarray(target, np.float64), np.asarray(prediction, np.float64)
    residual = ((target - prediction) ** 2).sum()
    if np.ptp(target) == 0:  # not `total == 0`: the mean of 0.7s is not exactly 0.7, and total is then 1e-29
        return 1.0 if residual == 0 else 0.0
    return float(1 - residual / ((target - target.mean()) ** 2).sum())


def r2_columns(target: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """sklearn's R^2 of each column against its own mean (`multioutput="raw_values"`).

    A constant target column (nothing to explain) scores 1 if predicted exactly and 0 otherwise, as
    sklearn's `r2_score` does (`force_finite=True`): no division by zero, and no column is skipped.
    """
    target, prediction = np.asarray(target, np.float64), np.asarray(prediction, np.float64)
    residual = ((target - prediction) ** 2).sum(axis=0)
    total = ((target - target.mean(axis=0)) ** 2).sum(axis=0)
    constant = np.ptp(target, axis=0) == 0  # exactly constant, whatever the rounding of the mean
    return np.where(constant, np.where(residual == 0, 1.0, 0.0), 1 - residual / np.where(constant, 1.0, total))


def r2_per_output(target: np.ndarray, prediction: np.ndarray) -> float:
    """sklearn's R^2 (uniform average): `r2_columns` averaged over the columns."""
    return float(np.mean(r2_columns(target, prediction)))


def top_k_accuracy(logits: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Share of rows whose label is among the k highest logits."""
    top = np.argsort(-np.asarray(logits), axis=1)[:, :k]
    return float(np.mean(np.any(top == np.asarray(labels)[:, None], axis=1)))


def per_class_accuracy(predicted: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """Top-1 accuracy of each class (NaN for a class with no sample)."""
    out = np.full(classes, np.nan)
    for c in range(classes):
        mask = labels == c
        if mask.any():
            out[c] = float(np.mean(predicted[mask] == c))
    return out


def retrieval_ranks(predicted: torch.Tensor, gallery: torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of each view's own embedding among its object's views.

    `predicted` and `gallery` are (objects, views, d): predicted[n, j] is the embedding predicted for
    view j of object n; it is compared by dot product, after L2 normalisation, with the object's
    normalised view embeddings gallery[n, :]. Ties count against the prediction.
    """
    predicted = torch.nn.functional.normalize(predicted.double(), dim=-1)
    gallery = torch.nn.functional.normalize(gallery.double(), dim=-1)
    scores = torch.einsum("nvd,nwd->nvw", predicted, gallery)
    own = torch.diagonal(scores, dim1=1, dim2=2).unsqueeze(-1)
    return 1 + (scores > own).sum(-1) + ((scores == own).sum(-1) - 1)


def mrr_and_hits(ranks: torch.Tensor, ks: tuple[int, ...] = (1, 2, 5, 10)) -> dict[str, float]:
    """Mean reciprocal rank and hit rates H@k."""
    ranks = ranks.double().flatten()
    out = {"mrr": float((1 / ranks).mean())}
    out |= {f"h@{k}": float((ranks <= k).double().mean()) for k in ks}
    return out


def prediction_error(
    predicted: torch.Tensor, gallery: torch.Tensor, target_quats: np.ndarray, gallery_quats: np.ndarray, chunk: int = 4096
) -> float:
    """PRE: mean(1 - <q_target, q_retrieved>^2), q_retrieved the rotation of the nearest gallery embedding.

    `predicted` (N, d) and `gallery` (M, d) are L2-normalised here; the quaternions are absolute
    rotations (x, y, z, w) of the query's target view and of each gallery view.
    """
    predicted = torch.nn.functional.normalize(predicted.float(), dim=-1)
    gallery = torch.nn.functional.normalize(gallery.float(), dim=-1)
    nearest = torch.cat([(predicted[i : i + chunk] @ gallery.T).argmax(1) for i in range(0, len(predicted), chunk)])
    retrieved = np.asarray(gallery_quats)[nearest.cpu().numpy()]
    return float(np.mean(1 - np.sum(np.asarray(target_quats) * retrieved, axis=1) ** 2))
