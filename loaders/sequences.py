"""Sequences of views of one object with the action from each view to the next (seq-JEPA's and ContextSSL's input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from iebench.loaders.actions import ActionComputer
from iebench.loaders.datasets import _EpochDataset, _stack
from iebench.loaders.sampling import choose_sequence


class SequenceDataset(_EpochDataset):
    """One item per object: `length` distinct views chosen by (seed, epoch, object), and the action between neighbours.

    Items: `views` (N, 3, H, W) uint8 in the order drawn, `latents` (N, k) as stored, `actions` (N - 1, d) float32
    (row i takes view i to view i + 1, as `PairDataset`'s action takes view1 to view2: for `rotation` the quaternion
    (x, y, z, w) of R_i^-1 R_{i+1}), `indices` (N,) the view numbers, `label`, `key`, and with `passes` each stacked
    over the sequence. `root` is a shard folder or the original layout. Call `set_epoch` before each epoch: the epoch
    lives in shared memory, so DataLoader workers (persistent ones too) see it; an index may also be `(epoch, index)`.
    Use `make_loader` for the sampler: every object once per epoch across all ranks.
    """

    def __init__(
        self,
        root: Path,
        split: str = "train",
        length: int = 3,
        action: str = "rotation",
        seed: int = 0,
        canonical: bool = False,
        on_error: str = "raise",
        passes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(root, split, on_error, passes)
        if not 2 <= length <= self.views_per_object:
            raise ValueError(
                f"{root}: a sequence of {length} distinct views needs 2 to {self.views_per_object} (the views per object of this set)"
            )
        self.length, self.action, self.seed = length, action, seed
        self.compute_action = ActionComputer(action, self.latent_names, canonical)
        self.action_dim = self.compute_action.size

    def sequence(self, index: int, epoch: int | None = None) -> tuple[int, ...]:
        """The view indices of object `index`'s sequence in an epoch."""
        key = self.objects[index].key
        return choose_sequence(self.seed, self.epoch if epoch is None else epoch, key, self.views_per_object, self.length)

    def __getitem__(self, index):
        epoch, index = index if isinstance(index, tuple) else (self.epoch, index)
        entry = self.objects[index]

        def load() -> dict:
            chosen = list(self.sequence(index, epoch))
            latents = np.asarray(self.source.latent_rows(entry, chosen))
            passes = [self._decode_passes(entry, v) for v in chosen]
            return {
                "views": torch.stack([self._decode(entry, v) for v in chosen]),
                "latents": torch.from_numpy(latents),
                "actions": torch.from_numpy(self.compute_action(latents[:-1], latents[1:])),
                "indices": torch.tensor(chosen),
                "label": entry.label,
                "key": entry.key,
                **{name: _stack([p[name] for p in passes]) for name in self.passes},
            }

        return self._guard(load)
