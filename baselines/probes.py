"""Probes on frozen features (SPEC 4): a linear classifier, and the MLP regressor for rotations and colours.

Training data are drawn per epoch with a generator seeded by (seed, epoch): one random view per
object for classification, one random pair of views per object for regression. Validation uses
fixed seeded draws, so the same features always give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from iebench.baselines.metrics import (
    per_class_accuracy,
    r2_per_output,
    r2_sie,
    top_k_accuracy,
)
from torch import nn


@dataclass(frozen=True)
class ProbeSettings:
    """How every probe trains (SPEC 4's values as defaults)."""

    epochs: int = 300
    lr: float = 1e-3
    batch_size: int = 256
    seed: int = 0
    val_pairs_per_object: int = 4


def regression_head(in_dim: int, out_dim: int, hidden: int = 1024) -> nn.Sequential:
    """SPEC 4's head: in -> 1024 -> 1024 -> out with ReLU."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


def _fit(head: nn.Module, draw, loss_fn, settings: ProbeSettings, device: torch.device) -> nn.Module:
    """Train `head` with Adam; `draw(epoch)` gives that epoch's (inputs, targets)."""
    torch.manual_seed(settings.seed)
    head = head.to(device)
    optimizer = torch.optim.Adam(head.parameters(), lr=settings.lr)
    for epoch in range(settings.epochs):
        x, y = draw(epoch)
        order = torch.from_numpy(np.random.default_rng([settings.seed, epoch, 5]).permutation(len(x)))
        for start in range(0, len(x), settings.batch_size):
            index = order[start : start + settings.batch_size]
            loss = loss_fn(head(x[index].to(device)), y[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return head.eval()


def _views(rng: np.random.Generator, objects: int, views: int) -> np.ndarray:
    return rng.integers(views, size=objects)


def classification_probe(train_reps: torch.Tensor, train_labels: np.ndarray, val_reps: torch.Tensor, val_labels: np.ndarray,
                         classes: int, settings: ProbeSettings, device: torch.device) -> dict:
    """Linear probe: top-1, top-5 and per-class accuracy on one seeded random view per validation object."""
    n, v, d = train_reps.shape
    labels = torch.from_numpy(train_labels).long()

    def draw(epoch: int):
        chosen = _views(np.random.default_rng([settings.seed, epoch, 1]), n, v)
        return train_reps[torch.arange(n), torch.from_numpy(chosen)].float(), labels

    head = _fit(nn.Linear(d, classes), draw, nn.functional.cross_entropy, settings, device)
    chosen = _views(np.random.default_rng([settings.seed, 10**6, 2]), len(val_reps), val_reps.shape[1])
    with torch.no_grad():
        logits = head(val_reps[torch.arange(len(val_reps)), torch.from_numpy(chosen)].float().to(device)).cpu().numpy()
    return {"top1": top_k_accuracy(logits, val_labels, 1), "top5": top_k_accuracy(logits, val_labels, min(5, classes)),
            "per_class": per_class_accuracy(logits.argmax(1), val_labels, classes).tolist()}


def _pairs(rng: np.random.Generator, objects: int, views: int) -> tuple[np.ndarray, np.ndarray]:
    first = rng.integers(views, size=objects)
    second = (first + rng.integers(1, views, size=objects)) % views  # a different view
    return first, second


def regression_probe(train_reps: torch.Tensor, train_latents: np.ndarray, val_reps: torch.Tensor, val_latents: np.ndarray,
                     target, settings: ProbeSettings, device: torch.device) -> dict:
    """MLP on [rep(view 1), rep(view 2)] regressing target(latents1, latents2); R^2 both ways, and predictions."""
    n, v, _ = train_reps.shape

    def draw(epoch: int):
        first, second = _pairs(np.random.default_rng([settings.seed, epoch, 3]), n, v)
        index = torch.arange(n)
        x = torch.cat([train_reps[index, torch.from_numpy(first)], train_reps[index, torch.from_numpy(second)]], 1).float()
        y = torch.from_numpy(target(train_latents[np.arange(n), first], train_latents[np.arange(n), second])).float()
        return x, y

    out_dim = draw(0)[1].shape[1]
    head = _fit(regression_head(2 * train_reps.shape[2], out_dim), draw, nn.functional.mse_loss, settings, device)
    rng = np.random.default_rng([settings.seed, 10**6, 4])
    xs, ys = [], []
    m = len(val_reps)
    for _ in range(settings.val_pairs_per_object):
        first, second = _pairs(rng, m, val_reps.shape[1])
        index = torch.arange(m)
        xs.append(torch.cat([val_reps[index, torch.from_numpy(first)], val_reps[index, torch.from_numpy(second)]], 1).float())
        ys.append(target(val_latents[np.arange(m), first], val_latents[np.arange(m), second]))
    with torch.no_grad():
        predicted = head(torch.cat(xs).to(device)).cpu().numpy()
    truth = np.concatenate(ys)
    return {"r2_sie": r2_sie(truth, predicted), "r2_per_output": r2_per_output(truth, predicted),
            "target": truth, "prediction": predicted}
