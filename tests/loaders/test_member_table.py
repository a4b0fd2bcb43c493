"""The loaders' offset index: flat arrays of 16 bytes a member, mapped from one cache file that workers share."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from iebench.dataset import format as fmt
from iebench.loaders import PairDataset
from iebench.loaders.member_table import MISSING, MemberTable, TableError, build_table


def _index(keys: list[str], views: int, start: int = 0) -> dict:
    """A shard index listing `keys`, each with `views` JPEG members and its three metadata members."""
    samples, offset = [], start
    for key in keys:
        members = {}
        for field in [fmt.view_field(v) for v in range(views)] + ["cls", "json", "latents.npy"]:
            members[field] = [offset, 100 + len(field), offset % 997]
            offset += 512
        samples.append({"key": key, "label": len(key) % 3, "members": members})
    return {"format": fmt.FORMAT, "samples": samples}


def test_the_table_holds_every_span_sorted_by_key_in_16_bytes_a_member():
    shards = [Path("/set/a.tar"), Path("/set/b.tar")]
    indexes = [_index([f"k{i:04d}" for i in range(1, 400, 2)], 50), _index([f"k{i:04d}" for i in range(0, 400, 2)], 50)]
    table = build_table(shards, indexes)
    assert len(table) == 400 and [table.key(i) for i in range(400)] == [f"k{i:04d}" for i in range(400)]
    assert table.spans.dtype.itemsize == 16 and table.spans.shape == (400, 53)
    assert table.nbytes / (400 * 53) < 17  # keys, labels and shard numbers add under a byte a member
    for row in (0, 1, 399):
        shard = table.shard_names[table.shards[row]]
        sample = next(s for s in indexes[shards.index(Path("/set", shard))]["samples"] if s["key"] == table.key(row))
        assert {field: table.span(row, field) for field in sample["members"]} == sample["members"]
        assert table.labels[row] == sample["label"]
    assert table.span(0, "000.depth.png") is None


def test_a_member_one_object_lacks_and_an_object_listed_twice():
    index = _index(["a", "b"], 2)
    del index["samples"][1]["members"]["001.jpg"]
    table = build_table([Path("s.tar")], [index])
    assert table.span(1, "001.jpg") is None and table.spans[1, table.fields.index("001.jpg")]["size"] == MISSING
    with pytest.raises(TableError, match="object a is listed twice .*s.tar and t.tar"):
        build_table([Path("s.tar"), Path("t.tar")], [_index(["a"], 2), _index(["a"], 2)])


def test_a_saved_table_is_mapped_and_pickles_as_its_folder(tmp_path):
    table = build_table([Path("s.tar")], [_index(["x", "y"], 3)])
    table.save(tmp_path / "t")
    mapped = MemberTable.load(tmp_path / "t")
    assert isinstance(mapped.spans, np.memmap)
    assert len(pickle.dumps(mapped)) < 200  # the path, not the arrays
    again = pickle.loads(pickle.dumps(mapped))
    assert again.span(1, "002.jpg") == table.span(1, "002.jpg") and again.key(1) == "y"


def test_a_dataset_index_is_arrays_and_a_pickled_dataset_stays_small(packed, member_table_cache):
    out, _ = packed
    data = PairDataset(out, "train", seed=0)
    table = data.source.table
    assert isinstance(table.spans, np.memmap) and Path(table.folder).is_relative_to(member_table_cache)
    assert not any(isinstance(value, dict) and len(value) >= len(data) for value in vars(data.source).values())
    assert len(pickle.dumps(data)) < 8_000  # paths and settings: what a spawned worker receives does not grow with the set
    clone = pickle.loads(pickle.dumps(data))
    assert [clone[i]["key"] for i in range(len(data))] == [data[i]["key"] for i in range(len(data))]
