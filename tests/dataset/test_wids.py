"""`finalize` writes each split's shard list as wids (indexed WebDataset, by the webdataset authors) reads it."""

import json

import pytest

wids = pytest.importorskip("wids", reason="the wids package is in the dev extra")


def test_wids_opens_every_split_and_reads_the_same_samples(packed, tmp_path):
    out, info = packed
    for split in ("train", "val"):
        descriptor = json.loads((out / f"{split}.wids.json").read_text())
        assert [s["url"] for s in descriptor["shardlist"]] == [s["name"] for s in info["splits"][split]["shards"]]
        dataset = wids.ShardListDataset(str(out / f"{split}.wids.json"), cache_dir=str(tmp_path / "cache"), transformations=[])
        assert len(dataset) == info["splits"][split]["objects"]
        keys = [k for s in info["splits"][split]["shards"] for k in s["keys"]]
        for index in (0, len(dataset) - 1):
            sample = dataset[index]
            assert sample["__key__"] == keys[index]
            assert sample[".000.jpg"].read()[:2] == b"\xff\xd8"  # a JPEG, the renderer's bytes
            assert int(sample[".cls"].read()) == json.loads(sample[".json"].read())["label"]
    assert "train.wids.json" in info["files"]
