import numpy as np
import pytest

from iebench.loaders.sampling import EpochBatchSampler, choose_pair


def test_pairs_are_distinct_seeded_and_change_with_the_epoch():
    pairs = [choose_pair(0, 0, f"k{i}", 8) for i in range(200)]
    assert all(a != b and 0 <= a < 8 and 0 <= b < 8 for a, b in pairs)
    assert pairs == [choose_pair(0, 0, f"k{i}", 8) for i in range(200)]
    assert pairs != [choose_pair(0, 1, f"k{i}", 8) for i in range(200)]
    assert pairs != [choose_pair(1, 0, f"k{i}", 8) for i in range(200)]


@pytest.mark.parametrize(
    "size, batch, world, drop_last",
    [(41, 4, 1, False), (41, 4, 3, False), (100, 8, 4, False), (33, 4, 4, False), (100, 8, 4, True), (17, 2, 8, False)],
)
def test_every_object_once_and_equal_batch_counts(size, batch, world, drop_last):
    samplers = [EpochBatchSampler(size, batch, rank, world, seed=3, drop_last=drop_last) for rank in range(world)]
    for epoch in range(2):
        for s in samplers:
            s.set_epoch(epoch)
        batches = [list(s) for s in samplers]
        assert len({len(b) for b in batches}) == 1 and len(batches[0]) == len(samplers[0])
        seen = [i for rank in batches for b in rank for i in b]
        assert len(seen) == len(set(seen))
        if drop_last:
            assert len(seen) == (size // (batch * world)) * batch * world
        else:
            assert sorted(seen) == list(range(size))
        for step in zip(*batches):
            sizes = [len(b) for b in step]
            assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_sie_step_count_keeps_the_last_partial_batch():
    assert len(EpochBatchSampler(41_920, 1024)) == 41
    assert len(EpochBatchSampler(41_920, 1024, drop_last=True)) == 40


def test_orders_differ_between_epochs():
    s = EpochBatchSampler(50, 10)
    first = list(s)
    s.set_epoch(1)
    assert first != list(s)


def test_batch_larger_than_data_is_an_error():
    with pytest.raises(ValueError, match="larger than the data set"):
        EpochBatchSampler(10, 8, 0, 2)


def test_pairs_are_uniform_over_ordered_pairs():
    counts = np.zeros((4, 4))
    for i in range(12000):
        a, b = choose_pair(0, i // 100, f"k{i % 100}", 4)
        counts[a, b] += 1
    assert np.all(np.diag(counts) == 0)
    off = counts[~np.eye(4, dtype=bool)]
    assert off.min() > 850 and off.max() < 1150  # 1000 expected per ordered pair
