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
    return (
        torch.randn(8, 3, 32, 32, generator=generator),
        torch.randn(8, 3, 32, 32, generator=generator),
        torch.randn(8, 4, generator=generator),
    )


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


@pytest.fixture
def thirteen_objects(tiny_render, tmp_path):
    """13 training objects (and 3 val), real renders: the tiny render's 6 objects, copied under new ids."""
    import shutil

    import numpy as np

    job, _ = tiny_render
    data = tmp_path / "data"
    shutil.copytree(job.out, data)
    objects = sorted(p for p in data.glob("*/*") if p.is_dir())
    for copy in range(1, 3):
        for folder in objects:
            shutil.copytree(folder, folder.with_name(f"{folder.name}-{copy}"))
    names = [f"/{p.parent.name}/{p.name}/" for p in sorted(p for p in data.glob("*/*") if p.is_dir())]
    assert len(names) == 18
    np.save(data / "train_images.npy", np.array(names[:13]))
    np.save(data / "val_images.npy", np.array(names[13:16]))
    return data


@pytest.mark.slow
def test_torchrun_two_ranks_train_on_uneven_batches(thirteen_objects, tmp_path):
    """13 objects over 2 gloo ranks with a global batch of 4: the ranks' batches are (2, 2), (2, 2), (3, 2)."""
    import json
    import subprocess
    import sys

    (tmp_path / "tiny.toml").write_text("projector = [32, 32, 32]\nimage_size = 32\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        str(port),
        "-m",
        "iebench.cli",
        "train",
        "--data",
        str(thirteen_objects),
        "--out",
        str(tmp_path / "run"),
        "--config",
        str(tmp_path / "tiny.toml"),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--workers",
        "0",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [0, 1]
    assert len([r for r in records if r["kind"] == "step"]) == 6  # 3 steps an epoch: 13 objects = 4 + 4 + 5
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["epoch"] == 1


def test_gather_pads_and_cuts_unequal_parts(tmp_path):
    """The gather of 3 rows on one rank and 2 on the other: 5 rows, in rank order, gradients to each rank's own rows."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_gather_rank, args=(port, str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        gathered, grad = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert torch.equal(gathered, torch.cat([torch.full((3, 2), 0.0), torch.full((2, 2), 1.0)]))
        assert torch.equal(grad, torch.full((3 - rank, 2), 2.0 * (rank + 1)))  # summed over both ranks' identical losses


def _gather_rank(rank: int, port: int, out: str) -> None:
    from iebench.baselines.distributed import gather

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    mine = torch.full((3 - rank, 2), float(rank), requires_grad=True)
    gathered = gather(mine)
    weights = torch.cat([torch.ones(3, 2), 2 * torch.ones(2, 2)])
    (gathered * weights).sum().backward()
    torch.save((gathered.detach(), mine.grad), os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()
