"""Probes on a frozen backbone (SPEC 4): a linear classifier, and the MLP regressor for rotations and colours.

A probe reads representations through a *view source*: `source(objects, views)` gives the (m, d)
representations of those views. `CachedViews` looks them up in precomputed features (BatchNorm in
eval mode, the default); `LiveViews` runs the backbone on the images with BatchNorm in training
mode, as the released scripts do (SPEC 4a). Training data are drawn per epoch from generators seeded
by (seed, epoch): `draws_per_object` random views per object for classification, as many random pairs of
distinct views per object for regression (one of each, SPEC 4, by default; more when objects are few, so
that the probe's budget in steps does not shrink with the object count). The head is built right after the seed is set, and validation uses fixed
seeded draws, so the same features and settings always give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from iebench.baselines.metrics import (
    per_class_accuracy,
    r2_columns,
    r2_per_output,
    r2_sie,
    top_k_accuracy,
)

ViewSource = Callable[[np.ndarray, np.ndarray], torch.Tensor]
Target = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (latents of view 1, of view 2) -> what a probe regresses


class ProbeBatchError(ValueError):
    """A probe batch the backbone cannot run on in train mode (one image)."""


@dataclass(frozen=True, kw_only=True)
class ProbeSettings:
    """How every probe trains (SPEC 4's values as defaults)."""

    epochs: int = 300
    lr: float = 1e-3
    batch_size: int = 256
    seed: int = 0
    val_pairs_per_object: int = 4
    draws_per_object: int = 1  # views (classification) or pairs (regression) drawn per object in each epoch


class CachedViews:
    """Representations looked up in a (objects, views, d) tensor, optionally cut to a part of the dimensions."""

    def __init__(self, representations: torch.Tensor, part: slice = slice(None)) -> None:
        self.representations, self.part = representations, part
        self.objects, self.views = representations.shape[:2]
        self.dim = representations[0, 0, part].shape[0]

    def __call__(self, objects: np.ndarray, views: np.ndarray) -> torch.Tensor:
        return self.representations[torch.from_numpy(objects), torch.from_numpy(views)][:, self.part].float()


class LiveViews:
    """The backbone run on the views' images at every call, BatchNorm in training mode (its running statistics move).

    This is what the released probe scripts do: `net.train()` with frozen parameters, so each batch is
    normalised by its own statistics and BatchNorm's running statistics follow the probe's training data.
    """

    def __init__(
        self, backbone: nn.Module, root: Path, split: str, image_size: int | None, device: torch.device, part: slice = slice(None)
    ) -> None:
        from iebench.loaders import Normalize, ViewDataset

        self.backbone, self.part, self.device = backbone, part, device
        self.images = ViewDataset(root, split, mode="all")
        self.objects, self.views = len(self.images.objects), self.images.views_per_object
        self.normalize = Normalize(size=image_size).to(device)
        self.dim = backbone.dim if part == slice(None) else len(range(backbone.dim)[part])

    @torch.no_grad()
    def __call__(self, objects: np.ndarray, views: np.ndarray) -> torch.Tensor:
        if len(objects) == 1:
            raise ProbeBatchError(
                "--bn-mode train normalises each probe batch by its own statistics, and a batch of one image has none: "
                f"choose a --batch-size that leaves no image alone ({self.objects} objects in {self.images.split})"
            )
        batch = torch.stack([self.images[int(o) * self.views + int(v)]["image"] for o, v in zip(objects, views)])
        self.backbone.train()
        return self.backbone(self.normalize(batch.to(self.device))).float()[:, self.part]


def regression_head(in_dim: int, out_dim: int, hidden: int = 1024) -> nn.Sequential:
    """SPEC 4's head: in -> 1024 -> 1024 -> out with ReLU."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


def _fit(
    make_head: Callable[[], nn.Module],
    batches: Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]],
    loss_fn,
    settings: ProbeSettings,
    device: torch.device,
) -> nn.Module:
    """Build the head under the probe's seed and train it with Adam; `batches(epoch)` gives that epoch's (inputs, targets)."""
    torch.manual_seed(settings.seed)
    head = make_head().to(device)
    optimizer = torch.optim.Adam(head.parameters(), lr=settings.lr)
    for epoch in range(settings.epochs):
        for x, y in batches(epoch):
            loss = loss_fn(head(x.to(device)), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return head.eval()


def _batches(count: int, epoch: int, settings: ProbeSettings) -> list[np.ndarray]:
    order = np.random.default_rng([settings.seed, epoch, 5]).permutation(count)
    return [order[start : start + settings.batch_size] for start in range(0, count, settings.batch_size)]


def _views(rng: np.random.Generator, objects: int, views: int) -> np.ndarray:
    return rng.integers(views, size=objects)


def _pairs(rng: np.random.Generator, objects: int, views: int) -> tuple[np.ndarray, np.ndarray]:
    first = rng.integers(views, size=objects)
    second = (first + rng.integers(1, views, size=objects)) % views  # a different view
    return first, second


def _drawn_objects(objects: int, settings: ProbeSettings) -> np.ndarray:
    """Each object's index `draws_per_object` times: the items of one probe epoch."""
    return np.tile(np.arange(objects), settings.draws_per_object)


def fit_classifier(train: ViewSource, labels: np.ndarray, classes: int, settings: ProbeSettings, device: torch.device) -> nn.Module:
    """The linear probe, trained on `draws_per_object` random views per object per epoch."""
    objects = _drawn_objects(train.objects, settings)
    targets = torch.from_numpy(np.asarray(labels)[objects]).long()

    def batches(epoch: int):
        chosen = _views(np.random.default_rng([settings.seed, epoch, 1]), len(objects), train.views)
        for index in _batches(len(objects), epoch, settings):
            yield train(objects[index], chosen[index]), targets[index]

    return _fit(lambda: nn.Linear(train.dim, classes), batches, nn.functional.cross_entropy, settings, device)


@torch.no_grad()
def classification_scores(
    head: nn.Module, val: ViewSource, labels: np.ndarray, classes: int, settings: ProbeSettings, device: torch.device
) -> dict:
    """Top-1, top-5 and per-class accuracy on one seeded random view per object."""
    chosen = _views(np.random.default_rng([settings.seed, 10**6, 2]), val.objects, val.views)
    logits = head(val(np.arange(val.objects), chosen).to(device)).cpu().numpy()
    return {
        "top1": top_k_accuracy(logits, labels, 1),
        "top5": top_k_accuracy(logits, labels, min(5, classes)),
        "per_class": per_class_accuracy(logits.argmax(1), labels, classes).tolist(),
    }


def _pair_inputs(source: ViewSource, objects: np.ndarray, first: np.ndarray, second: np.ndarray) -> torch.Tensor:
    return torch.cat([source(objects, first), source(objects, second)], 1)


def fit_regressor(train: ViewSource, latents: np.ndarray, target: Target, settings: ProbeSettings, device: torch.device) -> nn.Module:
    """SPEC 4's MLP on [rep(view 1), rep(view 2)] regressing target(latents1, latents2), `draws_per_object` random pairs
    per object per epoch."""
    objects = _drawn_objects(train.objects, settings)
    out_dim = np.asarray(target(latents[:1, 0], latents[:1, 1 % train.views])).shape[1]

    def batches(epoch: int):
        first, second = _pairs(np.random.default_rng([settings.seed, epoch, 3]), len(objects), train.views)
        for index in _batches(len(objects), epoch, settings):
            o = objects[index]
            y = torch.from_numpy(np.asarray(target(latents[o, first[index]], latents[o, second[index]]))).float()
            yield _pair_inputs(train, o, first[index], second[index]), y

    return _fit(lambda: regression_head(2 * train.dim, out_dim), batches, nn.functional.mse_loss, settings, device)


@torch.no_grad()
def regression_scores(
    head: nn.Module, source: ViewSource, latents: np.ndarray, target: Target, settings: ProbeSettings, device: torch.device, stream: int = 4
) -> dict:
    """R^2 both ways, and each target column's own (sklearn's), on `val_pairs_per_object` seeded pairs per object,
    with the targets and predictions."""
    rng = np.random.default_rng([settings.seed, 10**6, stream])
    everything, xs, ys = np.arange(source.objects), [], []
    for _ in range(settings.val_pairs_per_object):
        first, second = _pairs(rng, source.objects, source.views)
        xs.append(_pair_inputs(source, everything, first, second))
        ys.append(target(latents[everything, first], latents[everything, second]))
    predicted = torch.cat([head(x.to(device)).cpu() for x in xs]).numpy()
    truth = np.concatenate(ys)
    constant = np.ptp(truth, axis=0) == 0  # an output the data holds fixed: nothing to explain, R^2 undefined
    whole = bool(constant.all())
    scores = {
        "r2_sie": None if whole else r2_sie(truth, predicted),
        "r2_per_output": None if whole else r2_per_output(truth, predicted),
        "r2_by_output": [None if fixed else float(r2) for fixed, r2 in zip(constant, r2_columns(truth, predicted))],
        "target": truth,
        "prediction": predicted,
    }
    if constant.any():
        scores["r2_undefined"] = undefined_r2_reason(constant)
    return scores


def undefined_r2_reason(constant: np.ndarray) -> str:
    """Why some R^2 of a target are null: which of its outputs never vary in the scored pairs."""
    if constant.all():
        return "the target does not vary in the scored pairs (the data holds these factors fixed): R^2 is undefined, so null"
    which = ", ".join(str(i) for i in np.flatnonzero(constant))
    return (
        f"output {which} of {constant.size} does not vary in the scored pairs (the data holds it fixed): its R^2 is undefined, "
        "so null in r2_by_output; r2_sie (one global mean) includes it, and r2_per_output counts it as sklearn does (1 if predicted "
        "exactly, else 0)"
    )
