"""Map-style datasets: SIE view pairs for training, single views and whole objects for evaluation.

Each reads only what it returns (two views of an object for a pair) through a source (shards or
the original layout), decodes with torchvision, and returns uint8 CHW tensors: normalise on the
device (`iebench.loaders.decode.Normalize`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset

from iebench.dataset import format as fmt
from iebench.layout import image_name
from iebench.loaders.actions import ActionComputer
from iebench.loaders.decode import CorruptJPEGError, PassError, decode, decode_pass
from iebench.loaders.items import pair_item
from iebench.loaders.sampling import choose_pair, choose_view
from iebench.loaders.sources import ObjectEntry, SourceError, check_on_error, open_source, requested_passes

log = logging.getLogger(__name__)


class _SourceDataset(Dataset):
    """Shared plumbing: the source, bad-data policy and a decode that names the object."""

    def __init__(self, root: Path, split: str, on_error: str, passes: tuple[str, ...] = ()) -> None:
        check_on_error(on_error)
        self.root, self.split, self.on_error = Path(root), split, on_error
        self.source = open_source(root, split, check_sizes=on_error == "raise")
        self.latent_names = self.source.latent_names
        self.views_per_object = self.source.views_per_object
        self.passes = requested_passes(passes, self.source.passes, root)

    @property
    def objects(self) -> list[ObjectEntry]:
        """The split's objects, sorted by key."""
        return self.source.objects

    def _decode(self, entry: ObjectEntry, view: int) -> torch.Tensor:
        data = self.source.read_view(entry, view)
        try:
            return decode(data)
        except (RuntimeError, CorruptJPEGError) as error:
            member = f"member {entry.key}.{fmt.view_field(view)}" if entry.shard else image_name(view)
            raise SourceError(
                f"{entry.shard or entry.folder}: object {entry.key}: {member}: view {view} does not decode cleanly ({error})"
            ) from None

    def _decode_passes(self, entry: ObjectEntry, view: int) -> dict:
        """{name: tensor} of the requested passes of one view."""
        out = {}
        for name in self.passes:
            try:
                out[name] = decode_pass(name, self.source.read_pass(entry, view, name))
            except PassError as error:
                raise SourceError(
                    f"{entry.shard or entry.folder}: object {entry.key}: view {view}: pass {name} does not decode ({error})"
                ) from None
        return out

    def _guard(self, load: Callable[[], dict]) -> dict | None:
        """The item `load` builds, or None (logged) for a bad sample when skipping bad data."""
        try:
            return load()
        except SourceError as error:
            if self.on_error == "raise":
                raise
            log.warning("skipping a bad sample: %s", error)
            return None


class _EpochDataset(_SourceDataset):
    """One item per object, drawn anew each epoch; the epoch lives in shared memory, so DataLoader workers (persistent
    ones too) see `set_epoch`."""

    def __init__(self, root: Path, split: str, on_error: str, passes: tuple[str, ...] = ()) -> None:
        super().__init__(root, split, on_error, passes)
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch of the items (seen by every worker process)."""
        self._epoch[0] = epoch

    @property
    def epoch(self) -> int:
        """The current epoch."""
        return int(self._epoch[0])

    def __len__(self) -> int:
        return len(self.objects)


class PairDataset(_EpochDataset):
    """One item per object: two distinct views chosen by (seed, epoch, object), and the action between them.

    `root` is a shard folder written by `iebench pack` or a folder in the original release layout.
    Items: `view1`, `view2` (uint8 (3, H, W)), `action` (float32), `label`, `key`, `views` (the two
    indices), and with `passes=("mask", ...)` `view1_mask`, `view2_mask`, ... (see `loaders.decode.decode_pass`).
    Call `set_epoch` before each epoch; the epoch lives in shared memory, so DataLoader
    workers (persistent ones too) see it. An index may also be an `(epoch, index)` pair. With
    `decode_images=False` the views are the JPEG bytes, for `decode_batch_on_gpu` on the device.
    """

    def __init__(
        self,
        root: Path,
        split: str = "train",
        action: str = "rotation",
        seed: int = 0,
        canonical: bool = False,
        on_error: str = "raise",
        decode_images: bool = True,
        passes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(root, split, on_error, passes)
        self.decode_images = decode_images
        self.action, self.seed, self.canonical = action, seed, canonical
        self.compute_action = ActionComputer(action, self.latent_names, canonical)
        self.action_dim = self.compute_action.size

    def pair(self, index: int, epoch: int | None = None) -> tuple[int, int]:
        """The two view indices of object `index` in an epoch."""
        return choose_pair(self.seed, self.epoch if epoch is None else epoch, self.objects[index].key, self.views_per_object)

    def __getitem__(self, index):
        epoch, index = index if isinstance(index, tuple) else (self.epoch, index)
        entry = self.objects[index]

        def load() -> dict:
            first, second = self.pair(index, epoch)
            latents = self.source.latent_rows(entry, [first, second])
            view = self._decode if self.decode_images else self.source.read_view
            return pair_item(
                entry.key,
                entry.label,
                (first, second),
                (view(entry, first), view(entry, second)),
                torch.from_numpy(self.compute_action(latents[0], latents[1])),
                (self._decode_passes(entry, first), self._decode_passes(entry, second)),
            )

        return self._guard(load)


class ViewDataset(_SourceDataset):
    """Single views with label and latents: one random view per object (`mode="random"`) or every view (`"all"`).

    With `passes`, each item also has them by name (`depth`, `mask`, ...)."""

    def __init__(
        self, root: Path, split: str = "val", mode: str = "random", seed: int = 0, on_error: str = "raise", passes: tuple[str, ...] = ()
    ) -> None:
        super().__init__(root, split, on_error, passes)
        if mode not in ("random", "all"):
            raise ValueError(f"mode must be 'random' or 'all', got {mode!r}")
        self.mode, self.seed = mode, seed

    def __len__(self) -> int:
        return len(self.objects) * (self.views_per_object if self.mode == "all" else 1)

    def __getitem__(self, index: int):
        if self.mode == "all":
            index, view = divmod(index, self.views_per_object)
        else:
            view = choose_view(self.seed, self.objects[index].key, self.views_per_object)
        entry = self.objects[index]

        def load() -> dict:
            latents = self.source.latent_rows(entry, [view])[0]
            return {
                "image": self._decode(entry, view),
                "latents": torch.from_numpy(latents),
                "label": entry.label,
                "key": entry.key,
                "view": view,
                **self._decode_passes(entry, view),
            }

        return self._guard(load)


class ObjectViews(_SourceDataset):
    """All views of an object in order (for MRR and PRE): `images` (V, 3, H, W) uint8 and `latents` (V, k).

    With `passes`, each item also has them by name, stacked over views (`mask`: (V, 1, H, W), ...)."""

    def __init__(self, root: Path, split: str = "val", on_error: str = "raise", passes: tuple[str, ...] = ()) -> None:
        super().__init__(root, split, on_error, passes)

    def __len__(self) -> int:
        return len(self.objects)

    def __getitem__(self, index: int):
        entry = self.objects[index]

        def load() -> dict:
            images = torch.stack([self._decode(entry, v) for v in range(self.views_per_object)])
            passes = [self._decode_passes(entry, v) for v in range(self.views_per_object)]
            return {
                "images": images,
                "latents": torch.from_numpy(self.source.read_latents(entry)),
                "label": entry.label,
                "key": entry.key,
                **{name: _stack([p[name] for p in passes]) for name in self.passes},
            }

        return self._guard(load)


def _stack(values: list):
    """Stack per-view tensors, or per-view dicts of tensors key by key."""
    if isinstance(values[0], dict):
        return {k: torch.stack([v[k] for v in values]) for k in values[0]}
    return torch.stack(values)
