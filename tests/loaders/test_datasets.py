"""Loaders over real shards and the original layout of the tiny render."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from iebench.dataset import format as fmt
from iebench.loaders import (
    ObjectViews,
    PairDataset,
    StreamingPairs,
    ViewDataset,
    make_loader,
)
from iebench.loaders.decode import Normalize
from iebench.loaders.sources import SourceError


def test_pairs_match_the_stored_latents(packed, tiny_render):
    job, _ = tiny_render
    out, _ = packed
    data = PairDataset(out, "train", action="rotation", seed=5)
    assert len(data) == 3  # 3 classes x 2 objects: the stratified split keeps one object of each class in train
    folder_of = {fmt.sample_key(ref.synset, ref.model_id): (ref.synset, ref.model_id) for ref in job.objects}
    for index in range(len(data)):
        item = data[index]
        first, second = item["views"].tolist()
        assert first != second
        assert item["view1"].dtype == torch.uint8 and item["view1"].shape == (3, 32, 32)
        synset, model_id = folder_of[item["key"]]
        l1, l2 = (np.load(job.out / synset / model_id / f"latent_{v}.npy") for v in (first, second))
        expected = (Rotation.from_euler("xyz", l1[:3]).inv() * Rotation.from_euler("xyz", l2[:3])).as_quat()
        assert np.allclose(item["action"].numpy(), expected, atol=1e-6)
        from PIL import Image

        stored = np.asarray(Image.open(job.out / synset / model_id / f"image_{first}.jpg"))
        assert np.abs(item["view1"].permute(1, 2, 0).numpy().astype(int) - stored.astype(int)).max() <= 2


def test_pairs_are_deterministic_per_seed_and_epoch(packed):
    out, _ = packed
    a, b = PairDataset(out, seed=1), PairDataset(out, seed=1)
    assert [a.pair(i) for i in range(len(a))] == [b.pair(i) for i in range(len(b))]
    a.set_epoch(3)
    assert torch.equal(a[0]["view1"], b[(3, 0)]["view1"])


def test_epoch_reaches_persistent_workers(packed):
    out, _ = packed
    data = PairDataset(out, seed=0)
    loader = make_loader(data, batch_size=1, num_workers=2, persistent_workers=True, train=False)
    seen = {}
    for epoch in range(4):
        loader.set_epoch(epoch)
        seen[epoch] = {key: tuple(views.tolist()) for batch in loader for key, views in zip(batch["key"], batch["views"])}
        assert seen[epoch] == {data.objects[i].key: data.pair(i, epoch) for i in range(len(data))}
    assert len({tuple(sorted(s.items())) for s in seen.values()}) > 1


def test_spawned_workers_give_the_same_batches(packed):
    """On CUDA machines workers come from a fork server (never forked after CUDA): same items; the latents stay mapped."""
    out, _ = packed
    data = PairDataset(out, seed=0)
    assert data.source._latents.available  # the memory-mapped split files travel as a path
    batches = {}
    for method in ("fork", "forkserver", "spawn"):
        loader = make_loader(data, batch_size=2, num_workers=2, train=False, start_method=method)
        batches[method] = [(batch["key"], batch["action"], batch["view1"]) for batch in loader]
        loader.close()
    for method in ("forkserver", "spawn"):
        for (k1, a1, v1), (k2, a2, v2) in zip(batches["fork"], batches[method], strict=True):
            assert k1 == k2 and torch.equal(a1, a2) and torch.equal(v1, v2)


def test_the_original_layout_gives_the_same_items(packed, tiny_render):
    job, _ = tiny_render
    out, _ = packed
    for split in fmt.SPLITS:
        shards, loose = PairDataset(out, split, seed=2), PairDataset(job.out, split, seed=2)
        assert [o.key for o in shards.objects] == [o.key for o in loose.objects]
        for i in range(len(shards)):
            x, y = shards[i], loose[i]
            assert x["key"] == y["key"] and x["label"] == y["label"]
            assert torch.equal(x["view1"], y["view1"]) and torch.equal(x["action"], y["action"])


def test_a_damaged_first_latent_in_the_original_layout_is_named_on_reading(tiny_render, tmp_path):
    import shutil

    from iebench.dataset.loose import list_objects

    job, _ = tiny_render
    root = tmp_path / "loose"
    shutil.copytree(job.out, root)
    first = list_objects(root)[0]  # the object whose latent file gave the schema
    for latent in first.folder.glob("latent_*.npy"):
        latent.write_bytes(b"not a numpy file")
    key = fmt.sample_key(first.synset, first.model_id)
    split = next(s for s in fmt.SPLITS if key in [o.key for o in PairDataset(root, s).objects])
    data = PairDataset(root, split, seed=2)  # opens: the schema comes from the first readable latent file
    assert data.latent_names == PairDataset(job.out, split).latent_names
    with pytest.raises(SourceError, match=key):
        data[[o.key for o in data.objects].index(key)]


def test_view_and_object_datasets(packed):
    out, info = packed
    views = ViewDataset(out, "val", mode="all")
    assert len(views) == info["splits"]["val"]["objects"] * 4
    item = views[5]
    assert item["view"] == 1 and item["latents"].shape == (7,)
    single = ViewDataset(out, "val", mode="random", seed=0)
    assert len(single) == info["splits"]["val"]["objects"]
    objects = ObjectViews(out, "val")
    first = objects[0]
    assert first["images"].shape == (4, 3, 32, 32) and first["latents"].shape == (4, 7)
    assert torch.equal(first["images"][1], views[1]["image"])


def test_streaming_pairs_match_the_indexed_ones(packed):
    out, info = packed
    stream = StreamingPairs(out, "train", seed=4, shuffle_buffer=4)
    indexed = PairDataset(out, "train", seed=4)
    items = list(stream)
    assert len(items) == info["splits"]["train"]["objects"]
    for item in items:
        index = [o.key for o in indexed.objects].index(item["key"])
        assert tuple(item["views"].tolist()) == indexed.pair(index)
        assert torch.equal(item["action"], indexed[index]["action"])


def test_streaming_refuses_what_it_cannot_read(packed, tmp_path):
    with pytest.raises(SourceError, match="is not a folder of shards"):
        StreamingPairs(str(tmp_path / "nowhere"), "train")
    with pytest.raises(ValueError, match="on_error must be"):
        StreamingPairs(packed[0], "train", on_error="skp")
    with pytest.raises(ValueError, match="no batch would be made"):
        make_loader(StreamingPairs(packed[0], "train"), batch_size=packed[1]["splits"]["train"]["objects"] + 1, num_workers=0)
    with pytest.raises(SourceError, match="unknown split 'test'"):
        StreamingPairs(packed[0], "test")


@pytest.mark.parametrize("shard_size_mb", [100, 0.004])  # one shard for two workers; uneven shards
def test_streaming_workers_share_an_epoch_object_by_object(tiny_render, tmp_path, shard_size_mb):
    from iebench.dataset.pack import PackOptions, pack

    info, _ = pack(tiny_render[0].out, tmp_path / "shards", PackOptions(name="t", shard_size_mb=shard_size_mb, workers=1))
    train = sorted(k for s in info["splits"]["train"]["shards"] for k in s["keys"])
    loader = make_loader(StreamingPairs(tmp_path / "shards", "train", seed=0, shuffle_buffer=2), batch_size=1, num_workers=2)
    for epoch in range(2):  # two workers over local shards: each object once, none twice
        loader.set_epoch(epoch)
        assert sorted(key for batch in loader for key in batch["key"]) == train


def test_normalize_on_the_batch():
    batch = torch.full((2, 3, 8, 8), 128, dtype=torch.uint8)
    out = Normalize(size=16)(batch)
    assert out.shape == (2, 3, 16, 16) and out.dtype == torch.float32
    assert torch.allclose(out[:, 0], torch.tensor((128 / 255 - 0.5016) / 0.1030), atol=1e-4)
    with pytest.raises(TypeError, match="uint8 images"):  # images already in 0-1 would be normalised wrong
        Normalize()(batch.float() / 255)


def test_corrupt_sample_names_the_shard_and_object(packed, tmp_path, caplog):
    import shutil

    out, info = packed
    copy = tmp_path / "set"
    shutil.copytree(out, copy)
    data = PairDataset(copy, "train", seed=0)
    entry = data.objects[0]
    first, _ = data.pair(0)
    offset, size = data.source.span(entry, fmt.view_field(first))[:2]
    with open(entry.shard, "r+b") as handle:
        handle.seek(offset)
        handle.write(b"\0" * size)
    with pytest.raises(SourceError, match=f"object {entry.key}"):
        PairDataset(copy, "train", seed=0)[0]
    skipping = PairDataset(copy, "train", seed=0, on_error="skip")
    assert skipping[0] is None
    batches = list(make_loader(skipping, batch_size=len(skipping), num_workers=0, train=False))
    assert len(batches[0]["key"]) == len(skipping) - 1
    with pytest.raises(SourceError, match=f"object {entry.key}"):
        [item for item in StreamingPairs(copy, "train", seed=0) if item["key"] == entry.key]
    caplog.clear()  # PairDataset's own warning above
    streamed = list(StreamingPairs(copy, "train", seed=0, on_error="skip"))
    assert entry.key not in {item["key"] for item in streamed} and "skipping a bad sample" in caplog.text


def test_undecoded_views_for_gpu_decoding(packed):
    out, _ = packed
    raw, decoded = PairDataset(out, decode_images=False), PairDataset(out)
    item = raw[0]
    assert isinstance(item["view1"], bytes) and item["view1"][:2] == b"\xff\xd8"
    from iebench.loaders.decode import decode

    assert torch.equal(decode(item["view1"]), decoded[0]["view1"])
    batch = next(iter(make_loader(raw, batch_size=2, num_workers=0, train=False)))
    assert isinstance(batch["view1"], list) and len(batch["view1"]) == len(batch["key"]) >= 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="nvJPEG decoding needs a CUDA GPU")
def test_gpu_batch_decode_matches_the_cpu(packed):
    from iebench.loaders.decode import decode, decode_batch_on_gpu

    out, _ = packed
    raw = PairDataset(out, decode_images=False)
    datas = [raw[i]["view1"] for i in range(len(raw))]
    gpu = decode_batch_on_gpu(datas).cpu()
    cpu = torch.stack([decode(d) for d in datas])
    assert gpu.shape == cpu.shape and (gpu.int() - cpu.int()).abs().max() <= 3
