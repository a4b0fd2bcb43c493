"""Two ranks on the CPU (gloo): equal batch counts, no object on both ranks, every object once per epoch."""

import json
import os
import socket

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_rank(rank: int, world: int, port: int, root: str, result_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from iebench.loaders import PairDataset, StreamingPairs, make_loader

    out = {}
    data = PairDataset(root, "train", seed=0)
    loader = make_loader(data, batch_size=1, num_workers=1)
    for epoch in range(2):
        loader.set_epoch(epoch)
        out[f"indexed{epoch}"] = [list(batch["key"]) for batch in loader]
    stream = StreamingPairs(root, "train", seed=0, shuffle_buffer=2)
    streamed = make_loader(stream, batch_size=1, num_workers=2)  # more workers than this rank has shards
    streamed.set_epoch(0)
    out["streaming"] = [list(batch["key"]) for batch in streamed]
    dist.barrier()  # a rank with fewer batches would hang here
    with open(os.path.join(result_dir, f"rank{rank}.json"), "w") as handle:
        json.dump(out, handle)
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_share_an_epoch_exactly(packed, tmp_path):
    out, info = packed
    mp.spawn(run_rank, args=(2, free_port(), str(out), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    train = {k for s in info["splits"]["train"]["shards"] for k in s["keys"]}
    for epoch in range(2):
        batches = [r[f"indexed{epoch}"] for r in ranks]
        assert len(batches[0]) == len(batches[1])
        keys = [set(k for b in rank for k in b) for rank in batches]
        assert not keys[0] & keys[1]
        assert keys[0] | keys[1] == train
    assert len(ranks[0]["streaming"]) == len(ranks[1]["streaming"]) == len(train) // 2
