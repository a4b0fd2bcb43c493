"""Seeded choices: which two views of an object form its pair in an epoch, and which objects each rank gets.

Every draw depends only on (seed, epoch, object key), never on the worker, rank or order, so an
epoch is the same however it is loaded, and a resumed run continues exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np

from iebench.seeds import name_words


def object_rng(seed: int, epoch: int, key: str, stream: int = 0) -> np.random.Generator:
    """The generator for one object in one epoch (`stream` separates independent uses)."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, stream, *name_words(key)]))


def choose_pair(seed: int, epoch: int, key: str, views: int) -> tuple[int, int]:
    """Two distinct views of an object, uniform over ordered pairs, from a hash of (seed, epoch, key).

    A hash rather than a seeded generator: this runs once per pair in the loader's hot path.
    """
    if views < 2:
        raise ValueError(f"object {key} has {views} view(s): a pair needs two")
    digest = hashlib.blake2b(f"{seed}/{epoch}/{key}".encode(), digest_size=16).digest()
    first = int.from_bytes(digest[:8], "little") % views
    second = int.from_bytes(digest[8:], "little") % (views - 1)
    return first, second + (second >= first)


def choose_sequence(seed: int, epoch: int, key: str, views: int, length: int) -> tuple[int, ...]:
    """`length` distinct views of an object in a random order, uniform over such sequences, from (seed, epoch, key)."""
    if not 1 <= length <= views:
        raise ValueError(f"object {key} has {views} view(s): a sequence of {length} distinct views needs {length}")
    return tuple(int(v) for v in object_rng(seed, epoch, key, stream=2).permutation(views)[:length])


def choose_view(seed: int, key: str, views: int) -> int:
    """One view of an object (fixed per seed: the evaluation's 'one random view per object')."""
    return int(object_rng(seed, 0, key, stream=1).integers(views))


class EpochBatchSampler:
    """Batches of object indices for one rank: every object once per epoch across all ranks.

    Each epoch draws a permutation from (seed, epoch), cuts it into global batches of
    `batch_size * world_size` and deals each global batch out to the ranks by striding. So every
    rank gets the same number of batches (DDP never waits on a rank that ran out), no object is
    seen twice, and a rank's batch differs in size from another's by at most one. A last global
    batch too small to give every rank two objects (BatchNorm and the variance terms need two) is
    merged into the one before it. The last partial batch is kept unless `drop_last`.
    """

    def __init__(
        self, size: int, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True, drop_last: bool = False
    ) -> None:
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad batch sampler arguments: batch_size={batch_size}, rank={rank}, world_size={world_size}")
        if size < batch_size * world_size:
            raise ValueError(f"a global batch of {batch_size} x {world_size} ranks is larger than the data set ({size} objects)")
        self.size, self.batch_size, self.rank, self.world_size = size, batch_size, rank, world_size
        self.seed, self.shuffle, self.drop_last, self.epoch = seed, shuffle, drop_last, 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration follows."""
        self.epoch = epoch

    def _global_batches(self) -> list[np.ndarray]:
        order = (
            np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, 7])).permutation(self.size)
            if self.shuffle
            else np.arange(self.size)
        )
        step = self.batch_size * self.world_size
        batches = [order[i : i + step] for i in range(0, self.size, step)]
        if len(batches[-1]) < step:
            if self.drop_last:
                batches.pop()
            elif len(batches[-1]) < 2 * self.world_size and len(batches) > 1:
                batches[-2:] = [np.concatenate(batches[-2:])]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._global_batches():
            yield batch[self.rank :: self.world_size].tolist()

    def __len__(self) -> int:
        return len(self._global_batches())
