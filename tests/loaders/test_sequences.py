"""SequenceDataset over real shards and the original layout of the tiny render."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from iebench.loaders import ObjectViews, PairDataset, SequenceDataset, make_loader
from iebench.loaders.actions import compute_action


def test_sequences_carry_exact_actions_between_consecutive_views(packed):
    out, _ = packed
    data = SequenceDataset(out, "train", length=3, action="rotation", seed=4)
    whole = ObjectViews(out, "train")
    assert len(data) == len(whole) == 3
    for index in range(len(data)):
        item, every = data[index], whole[index]
        chosen = item["indices"].tolist()
        assert len(set(chosen)) == 3 and item["key"] == every["key"] and item["label"] == every["label"]
        assert item["views"].dtype == torch.uint8 and item["views"].shape == (3, 3, 32, 32)
        assert torch.equal(item["views"], every["images"][chosen])
        assert np.array_equal(item["latents"].numpy(), every["latents"].numpy()[chosen])
        assert item["actions"].shape == (2, 4) and item["actions"].dtype == torch.float32
        for i in range(2):  # the quaternion of R_i^-1 R_{i+1}, signs as SIE's pairs have them
            r_i, r_next = (Rotation.from_euler("xyz", every["latents"].numpy()[v, :3]) for v in chosen[i : i + 2])
            assert np.allclose(item["actions"][i].numpy(), (r_i.inv() * r_next).as_quat(), atol=1e-6)
    colour = SequenceDataset(out, "train", length=4, action="rotation-color", seed=4)[0]
    expected = compute_action("rotation-color", colour["latents"].numpy()[:-1], colour["latents"].numpy()[1:], colour_names(out))
    assert colour["actions"].shape == (3, 6) and np.array_equal(colour["actions"].numpy(), expected)


def colour_names(root):
    return PairDataset(root, "train").latent_names


def test_sequences_are_deterministic_per_seed_and_epoch_and_change_with_them(packed):
    out, _ = packed
    a, b = SequenceDataset(out, length=3, seed=1), SequenceDataset(out, length=3, seed=1)
    assert [a.sequence(i) for i in range(len(a))] == [b.sequence(i) for i in range(len(b))]
    by_epoch = [tuple(a.sequence(i, epoch) for i in range(len(a))) for epoch in range(6)]
    assert len(set(by_epoch)) > 1
    other = SequenceDataset(out, length=3, seed=2)
    assert any(other.sequence(i, e) != a.sequence(i, e) for i in range(len(a)) for e in range(3))
    a.set_epoch(3)
    assert torch.equal(a[0]["views"], b[(3, 0)]["views"]) and a[0]["indices"].tolist() == list(b.sequence(0, 3))


def test_epoch_reaches_persistent_workers_and_every_object_comes_once(packed):
    out, _ = packed
    data = SequenceDataset(out, length=3, seed=0)
    loader = make_loader(data, batch_size=1, num_workers=2, persistent_workers=True, train=False)
    seen = {}
    for epoch in range(4):
        loader.set_epoch(epoch)
        seen[epoch] = {key: tuple(ix.tolist()) for batch in loader for key, ix in zip(batch["key"], batch["indices"])}
        assert seen[epoch] == {data.objects[i].key: data.sequence(i, epoch) for i in range(len(data))}
    assert len({tuple(sorted(s.items())) for s in seen.values()}) > 1
    batch = next(iter(make_loader(data, batch_size=3, num_workers=0)))
    assert batch["views"].shape == (3, 3, 3, 32, 32) and batch["actions"].shape == (3, 2, 4)
    ranks = [make_loader(data, batch_size=1, num_workers=0, rank=r, world_size=2, train=False) for r in (0, 1)]
    keys = [{k for b in loader for k in b["key"]} for loader in ranks]
    assert len(list(ranks[0])) == len(list(ranks[1]))  # two ranks: the same number of batches, no object on both
    assert not keys[0] & keys[1] and keys[0] | keys[1] == {o.key for o in data.objects}


def test_the_original_layout_gives_the_same_sequences(packed, tiny_render):
    job, _ = tiny_render
    out, _ = packed
    for split in ("train", "val"):
        shards, loose = SequenceDataset(out, split, length=4, seed=2), SequenceDataset(job.out, split, length=4, seed=2)
        assert [o.key for o in shards.objects] == [o.key for o in loose.objects]
        for i in range(len(shards)):
            x, y = shards[i], loose[i]
            assert x["indices"].tolist() == y["indices"].tolist() and torch.equal(x["views"], y["views"])
            assert torch.equal(x["actions"], y["actions"])


def test_a_sequence_longer_than_an_object_is_refused(packed):
    out, _ = packed
    with pytest.raises(ValueError, match="a sequence of 5 distinct views needs 2 to 4"):
        SequenceDataset(out, length=5)
    with pytest.raises(ValueError, match="needs 2 to 4"):
        SequenceDataset(out, length=1)
