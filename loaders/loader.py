"""`make_loader`: a DataLoader with the right sampler and defaults for training or evaluation."""

from __future__ import annotations

import multiprocessing

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate

from iebench.cores import available_cores
from iebench.loaders.sampling import EpochBatchSampler


def collate_skipping_none(batch: list) -> dict:
    """Default collation, leaving out items a dataset skipped (`on_error="skip"` returns None)."""
    return default_collate([item for item in batch if item is not None])


class EpochLoader(DataLoader):
    """A DataLoader whose `set_epoch` reaches both its sampler and its dataset (and so every worker)."""

    def set_epoch(self, epoch: int) -> None:
        """Prepare the next iteration for `epoch`: order of objects and choice of pairs."""
        if isinstance(self.batch_sampler, EpochBatchSampler):
            self.batch_sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def close(self) -> None:
        """Stop the persistent workers (and the pinning thread) now, not whenever the loader is collected."""
        iterator = getattr(self, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self._iterator = None


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the world size of the initialised process group ((0, 1) without one)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def worker_start_method() -> str | None:
    """'forkserver' where CUDA is there, else None (the platform's default, fork on Linux).

    A worker forked from a process that has used CUDA aborts when it touches, even garbage-collects, an
    inherited CUDA tensor (seen on an H200). Spawned workers are safe but each imports torch anew before
    the parent can hand it the dataset, which stalled 12 workers for minutes there. A fork server is
    started once, without CUDA, with torch and this package imported: workers fork from it in milliseconds.
    """
    return "forkserver" if torch.cuda.is_available() else None


def worker_context(start_method: str | None = None) -> multiprocessing.context.BaseContext | None:
    """The multiprocessing context for DataLoader workers (start_method None: `worker_start_method()`)."""
    method = start_method or worker_start_method()
    if method is None:
        return None
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["iebench.loaders"])
    return context


def make_loader(
    dataset: Dataset,
    batch_size: int,
    train: bool = True,
    num_workers: int | None = None,
    seed: int = 0,
    drop_last: bool = False,
    pin_memory: bool | None = None,
    persistent_workers: bool | None = None,
    prefetch_factor: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    start_method: str | None = None,
) -> EpochLoader:
    """A loader over a dataset of this package, on one process or one rank of many.

    Map-style datasets get an `EpochBatchSampler`: each epoch shows every object once across all
    ranks (shuffled by (seed, epoch) when `train`), every rank gets the same number of batches, and
    the last partial batch is kept unless `drop_last`. Streaming datasets balance themselves; their
    last partial batch is always dropped so that ranks stay in step. Defaults: workers = cores
    (at most 8), pinned memory when CUDA is there, persistent workers, started by `worker_start_method()`
    unless `start_method` is given.
    """
    if rank is None or world_size is None:
        rank, world_size = rank_and_world()
    workers = min(8, available_cores()) if num_workers is None else num_workers
    options = {
        "num_workers": workers,
        "pin_memory": torch.cuda.is_available() if pin_memory is None else pin_memory,
        "persistent_workers": workers > 0 if persistent_workers is None else persistent_workers and workers > 0,
        "collate_fn": collate_skipping_none,
    }
    if workers > 0:
        options["multiprocessing_context"] = worker_context(start_method)
        if prefetch_factor is not None:
            options["prefetch_factor"] = prefetch_factor
    if isinstance(dataset, IterableDataset):
        largest_share = -(-len(dataset) // max(1, workers))  # each worker batches its own share and drops its partial batch
        if batch_size > largest_share:
            raise ValueError(
                f"a batch of {batch_size} is larger than the {largest_share} objects the busiest of {max(1, workers)} workers "
                f"streams ({len(dataset)} per rank): no batch would be made; use a smaller batch or fewer workers"
            )
        return EpochLoader(dataset, batch_size=batch_size, drop_last=True, **options)
    sampler = EpochBatchSampler(len(dataset), batch_size, rank, world_size, seed, shuffle=train, drop_last=drop_last)
    return EpochLoader(dataset, batch_sampler=sampler, **options)
