"""Frozen-backbone features of every view of a split, computed once and cached for every probe."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from iebench.baselines.checkpoint import save_atomic
from iebench.baselines.methods.base import Method
from iebench.files import sha256_file
from iebench.loaders import Normalize, ObjectViews
from iebench.loaders.loader import collate_skipping_none


@dataclass
class SplitFeatures:
    """Representations (objects, views, the backbone's width), latents (objects, views, k), labels and keys of a split."""

    keys: list[str]
    labels: np.ndarray
    latents: np.ndarray
    representations: torch.Tensor
    latent_names: tuple[str, ...]

    def to_state(self) -> dict:
        """Tensors and lists only (loads with weights_only=True)."""
        return {
            "keys": self.keys,
            "labels": torch.from_numpy(self.labels),
            "latents": torch.from_numpy(self.latents),
            "representations": self.representations,
            "latent_names": list(self.latent_names),
        }

    @classmethod
    def from_state(cls, state: dict) -> SplitFeatures:
        """Back from `to_state`."""
        return cls(state["keys"], state["labels"].numpy(), state["latents"].numpy(), state["representations"], tuple(state["latent_names"]))


def cache_name(split: str, fingerprint: str) -> str:
    """File name of a split's cached features."""
    return f"features-{split}-{fingerprint}.pt"


def fingerprint(*parts: object) -> str:
    """A short hash of what a result depends on (weights, data, settings), each part as its `repr`."""
    return hashlib.sha256("/".join(map(repr, parts)).encode()).hexdigest()[:16]


# Files of a shard set that describe how it was made (the render's manifest and run counts, the card), not the data:
# packing the same renders again after a render run that had nothing left to do rewrites them.
DESCRIPTIONS = ("_info.json", "README.md")


def data_digest(root: Path) -> str:
    """What identifies a data set: a shard set's checksums of its shards, indexes and split files (wherever it lies);
    for the original layout, which lists no checksums, the bytes of its split files and its path."""
    root = Path(root).resolve()
    sums = root / "SHA256SUMS"
    if sums.is_file():
        lines = [line for line in sums.read_text(errors="replace").splitlines() if line.partition("  ")[2].lstrip("*") not in DESCRIPTIONS]
        return fingerprint("shards", *sorted(lines))
    names = ("_manifest.json", "train_images.npy", "val_images.npy", "all_latents_train.npy", "all_latents_val.npy")
    return fingerprint(str(root), *(sha256_file(root / n) if (root / n).is_file() else None for n in names))


def data_stamp(root: Path) -> str:
    """What changes when a file of a data set is written again, cheaply: the size and modification time of each file its
    SHA256SUMS lists but the descriptions (the original layout: of its split files). A damaged shard, or one restored,
    changes it; a cache keyed on the checksums alone would not notice."""
    root = Path(root).resolve()
    sums = root / "SHA256SUMS"
    if sums.is_file():
        listed = {line.partition("  ")[2].lstrip("*") for line in sums.read_text(errors="replace").splitlines()}
        names = sorted(listed - {"", *DESCRIPTIONS})  # as `data_digest`: rewriting the description alone keeps the features
    else:
        names = ["_manifest.json", "train_images.npy", "val_images.npy", "all_latents_train.npy", "all_latents_val.npy"]
    stamps = []
    for name in names:
        try:
            stat = (root / name).stat()
            stamps.append((name, stat.st_size, stat.st_mtime_ns))
        except OSError:  # gone, or a name that is no file: the stamp changes, and reading the set says what is wrong
            stamps.append((name, None, None))
    return fingerprint(*stamps)


@torch.no_grad()
def extract(
    method: Method,
    root: Path,
    split: str,
    device: torch.device,
    image_size: int | None,
    batch_objects: int = 16,
    progress: bool = True,
) -> SplitFeatures:
    """Run the backbone, BatchNorm in eval mode (a frozen backbone), over every view of every object of a split (decoded in this process)."""
    data = ObjectViews(root, split)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_objects, collate_fn=collate_skipping_none)
    normalize = Normalize(size=image_size).to(device)
    method.eval()
    keys, labels, latents, reps = [], [], [], []
    for batch in tqdm(loader, desc=f"features {split}", unit="batch", disable=not progress, leave=False):
        images = batch["images"]
        n, v = images.shape[:2]
        x = normalize(images.flatten(0, 1).to(device))
        reps.append(method.representation(x).float().view(n, v, -1).cpu())
        keys += list(batch["key"])
        labels.append(batch["label"].numpy())
        latents.append(batch["latents"].numpy())
    return SplitFeatures(keys, np.concatenate(labels), np.concatenate(latents), torch.cat(reps), data.latent_names)


def cached_extract(cache_dir: Path | None, key: str, split: str, stamp: str | None = None, **kwargs: object) -> SplitFeatures:
    """`extract`, through a cache file `features-<split>-<key>.pt` when there is a cache folder.

    With `stamp` (`data_stamp` of the data), the file is reused only while the data's files are those it was computed
    from; otherwise the features are computed again (reading every member, crc-checked) and the file is replaced.
    """
    if cache_dir is None:
        return extract(split=split, **kwargs)
    path = Path(cache_dir) / cache_name(split, key)
    if path.is_file():
        state = torch.load(path, weights_only=True)
        if stamp is None or state.get("data_stamp") == stamp:
            return SplitFeatures.from_state(state)
    features = extract(split=split, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(path, features.to_state() | ({"data_stamp": stamp} if stamp else {}))
    return features
