"""Train/val splits by object: a seeded per-class stratified split, or the original SIE split files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from iebench.object_lists import read_object_list
from iebench.seeds import name_words

SIE_SPLIT_FILES = {"train": "train_images.npy", "val": "val_images.npy"}


class SplitError(ValueError):
    """A split that cannot be made or read; the message names the file or class."""


def stratified_split(keys: Iterable[tuple[str, str]], val_fraction: float = 0.2, seed: int = 0) -> dict[tuple[str, str], str]:
    """Assign each (synset, model_id) to `train` or `val`, class by class.

    Each class sends round(n * val_fraction) of its objects to val, and keeps at least one object on
    each side when it has two or more, so every class is on both sides. The draw depends only on the
    seed and the class's own objects, not on which other classes are present.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise SplitError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    by_class: dict[str, list[str]] = {}
    for synset, model_id in keys:
        by_class.setdefault(synset, []).append(model_id)
    assignment = {}
    for synset, models in sorted(by_class.items()):
        models = sorted(models)
        order = np.random.default_rng(np.random.SeedSequence([seed, *name_words(synset, 2)])).permutation(len(models))
        n_val = round(len(models) * val_fraction)
        if val_fraction > 0 and len(models) >= 2:
            n_val = min(max(n_val, 1), len(models) - 1)
        for rank, position in enumerate(order):
            assignment[(synset, models[position])] = "val" if rank < n_val else "train"
    return assignment


def assign_splits(
    keys: Iterable[tuple[str, str]], *, split_files: Path | None, val_fraction: float, seed: int
) -> dict[tuple[str, str], str]:
    """The split of each (synset, model_id): the SIE split files in `split_files` when given, else `stratified_split`.

    Split files may leave objects out (`require_split` refuses that where every object must be written).
    """
    return read_sie_split(split_files) if split_files else stratified_split(keys, val_fraction, seed)


def require_split(keys: Iterable[tuple[str, str]], split_of: dict[tuple[str, str], str]) -> None:
    """A `SplitError` when some (synset, model_id) has no split (the split files leave it out)."""
    unlisted = [f"{synset}/{model_id}" for synset, model_id in keys if (synset, model_id) not in split_of]
    if unlisted:
        raise SplitError(f"{len(unlisted)} objects are in no split file, e.g. {unlisted[0]}")


def split_record(*, split_files: Path | None, val_fraction: float, seed: int) -> dict:
    """How a set was split, as `_part*.json` and `_info.json` record it."""
    if split_files:
        return {"method": "sie-files", "path": str(split_files)}
    return {"method": "stratified", "val_fraction": val_fraction, "seed": seed}


def read_sie_split(folder: Path) -> dict[tuple[str, str], str]:
    """The split of the original SIE files (`train_images.npy`, `val_images.npy`: '/<synset>/<model_id>/')."""
    assignment: dict[tuple[str, str], str] = {}
    for split, name in SIE_SPLIT_FILES.items():
        path = Path(folder) / name
        if not path.is_file():
            raise SplitError(f"split folder {folder} has no {name}")
        for key in read_object_list(path):
            if key in assignment:
                raise SplitError(f"object {key[0]}/{key[1]} is listed in both SIE split files")
            assignment[key] = split
    return assignment
