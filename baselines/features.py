"""Frozen-backbone features of every view of a split, computed once and cached for every probe."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from iebench.baselines.methods.base import Method
from iebench.loaders import Normalize, ObjectViews
from iebench.loaders.loader import collate_skipping_none, worker_context
from tqdm import tqdm


@dataclass
class SplitFeatures:
    """Representations (objects, views, 512), latents (objects, views, k), labels and keys of a split."""

    keys: list[str]
    labels: np.ndarray
    latents: np.ndarray
    representations: torch.Tensor
    latent_names: tuple[str, ...]

    def to_state(self) -> dict:
        """Tensors and lists only (loads with weights_only=True)."""
        return {"keys": self.keys, "labels": torch.from_numpy(self.labels), "latents": torch.from_numpy(self.latents),
                "representations": self.representations, "latent_names": list(self.latent_names)}

    @classmethod
    def from_state(cls, state: dict) -> SplitFeatures:
        """Back from `to_state`."""
        return cls(state["keys"], state["labels"].numpy(), state["latents"].numpy(), state["representations"],
                   tuple(state["latent_names"]))


def cache_name(split: str, fingerprint: str) -> str:
    """File name of a split's cached features."""
    return f"features-{split}-{fingerprint}.pt"


def fingerprint(*parts: object) -> str:
    """A short hash of what the features depend on (weights, data, image size)."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:12]


@torch.no_grad()
def extract(method: Method, root: Path, split: str, device: torch.device, image_size: int | None, bn_mode: str = "eval",
            batch_objects: int = 16, workers: int = 0, progress: bool = True) -> SplitFeatures:
    """Run the backbone over every view of every object of a split.

    `bn_mode="eval"` uses BatchNorm's running statistics (a frozen backbone); `"train"` reproduces the
    released scripts, which left BatchNorm in training mode: each batch is normalised by its own
    statistics (running statistics are not updated).
    """
    data = ObjectViews(root, split)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_objects, num_workers=workers, collate_fn=collate_skipping_none,
                                         multiprocessing_context=worker_context() if workers else None)
    normalize = Normalize(size=image_size).to(device)
    method.eval()
    if bn_mode == "train":
        for module in method.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.train()
                module._iebench_saved_momentum = module.momentum
                module.momentum = 0.0  # batch statistics in the forward pass, running statistics untouched
    keys, labels, latents, reps = [], [], [], []
    for batch in tqdm(loader, desc=f"features {split}", unit="batch", disable=not progress, leave=False):
        images = batch["images"]
        n, v = images.shape[:2]
        x = normalize(images.flatten(0, 1).to(device))
        reps.append(method.representation(x).float().view(n, v, -1).cpu())
        keys += list(batch["key"])
        labels.append(batch["label"].numpy())
        latents.append(batch["latents"].numpy())
    if bn_mode == "train":
        for module in method.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.momentum = module._iebench_saved_momentum
                del module._iebench_saved_momentum
        method.eval()
    return SplitFeatures(keys, np.concatenate(labels), np.concatenate(latents), torch.cat(reps), data.latent_names)


def cached_extract(cache_dir: Path | None, key: str, split: str, **kwargs) -> SplitFeatures:
    """`extract`, through a cache file when there is a cache folder and BatchNorm is in eval mode."""
    if cache_dir is None or kwargs.get("bn_mode", "eval") != "eval":
        return extract(split=split, **kwargs)
    path = Path(cache_dir) / cache_name(split, key)
    if path.is_file():
        return SplitFeatures.from_state(torch.load(path, weights_only=True))
    features = extract(split=split, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(features.to_state(), tmp)
    tmp.replace(path)
    return features
