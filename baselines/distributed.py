"""Process-group set-up under torchrun, and the gather every loss uses (gradients flow through it)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn  # noqa: F401  (dist.nn.functional.all_gather: the gather with gradients)


class DeviceError(RuntimeError):
    """A device was asked for that this machine does not have."""


def wants_cuda(device: str) -> bool:
    """Whether `--device` (auto, cpu or cuda) runs on CUDA: auto where there is a GPU; cuda without one is an error."""
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA device is available (--device auto or cpu runs on the CPU)")
    return torch.cuda.is_available() if device == "auto" else device == "cuda"


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: its rank among how many, and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this process logs and writes checkpoints."""
        return self.rank == 0


def setup(device: str = "auto") -> Runtime:
    """Join torchrun's process group when its variables are set (NCCL on CUDA, gloo on the CPU)."""
    use_cuda = wants_cuda(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Runtime(rank, world, local_rank, torch.device("cuda", local_rank) if use_cuda else torch.device("cpu"))


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor from all ranks along dim 0, with gradients flowing back to each rank's part.

    Ranks may hold different numbers of rows (the last batch of an epoch differs by one between ranks,
    SPEC 8): each pads its part to the largest, the padded parts are gathered, and the padding is cut
    off again, so no collective ever sees unequal shapes (gloo aborts on them, NCCL hangs).
    Under DDP every rank computes the same loss on the gathered batch; the backward of this gather
    sums the ranks' gradients and DDP averages them, which gives exactly the single-process gradient.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    sizes = [torch.zeros(1, dtype=torch.int64, device=tensor.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], dtype=torch.int64, device=tensor.device))
    counts = [int(size) for size in sizes]
    padding = max(counts) - tensor.shape[0]
    padded = torch.cat([tensor, tensor.new_zeros(padding, *tensor.shape[1:])]) if padding else tensor
    parts = dist.nn.functional.all_gather(padded)
    return torch.cat([part[:count] for part, count in zip(parts, counts)], dim=0)
