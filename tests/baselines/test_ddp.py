"""Two processes on the CPU (gloo) give the gradients of one process on the same global batch."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from iebench.baselines.config import TrainConfig
from iebench.baselines.methods import build_method

CONFIG = TrainConfig(projector=(32, 32, 32), image_size=None)


def batch():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(8, 3, 32, 32, generator=generator), torch.randn(8, 3, 32, 32, generator=generator), torch.randn(8, 4, generator=generator)


def model():
    torch.manual_seed(0)
    method = build_method(CONFIG, action_dim=4).double()
    return method.eval()  # BatchNorm on running statistics: the same per sample on any rank (SPEC 8)


def gradients(method) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in method.named_parameters() if p.grad is not None}


def run_rank(rank: int, world: int, port: int, path: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    ddp = torch.nn.parallel.DistributedDataParallel(model())
    x1, x2, action = (t.double()[rank::world] for t in batch())
    ddp(x1, x2, action)["loss"].backward()
    if rank == 0:
        torch.save(gradients(ddp.module), path)
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_gradients_equal_single_process(tmp_path):
    single = model()
    x1, x2, action = (t.double() for t in batch())
    # the gathered batch is ordered rank by rank: give the single process the same order
    order = torch.cat([torch.arange(8)[r::2] for r in range(2)])
    single(x1[order], x2[order], action[order])["loss"].backward()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(run_rank, args=(2, port, str(tmp_path / "grads.pt")), nprocs=2, join=True)
    distributed = torch.load(tmp_path / "grads.pt", weights_only=True)
    expected = gradients(single)
    assert set(distributed) == set(expected)
    for name, grad in expected.items():
        assert torch.allclose(distributed[name], grad, rtol=1e-7, atol=1e-10), name
