"""Each way a shard set can be wrong is reported by `verify`."""

import io
import json
import shutil
from dataclasses import replace

import pytest
from PIL import Image

from iebench.dataset import format as fmt
from iebench.dataset.reader import ShardSet
from iebench.dataset.verify import verify


@pytest.fixture
def copy(packed, tmp_path):
    out, _ = packed
    target = tmp_path / "set"
    shutil.copytree(out, target)
    return target


def info_of(root):
    return json.loads((root / fmt.INFO_NAME).read_text())


def rewrite(root, shard_name, change):
    """Rewrite one shard with its samples changed by `change(sample) -> sample`, and fix _info.json's size and sha."""
    path = root / shard_name
    samples = []
    for ref in ShardSet(root).samples("train"):
        if ref.shard != path:
            continue
        samples.append(change(ref.sample()))
    index = fmt.write_shard(path, samples)
    info = info_of(root)
    for shard in info["splits"]["train"]["shards"]:
        if shard["name"] == shard_name:
            shard["sha256"], shard["bytes"] = index["sha256"], index["bytes"]
    (root / fmt.INFO_NAME).write_text(json.dumps(info))


def first_train_shard(root):
    return info_of(root)["splits"]["train"]["shards"][0]["name"]


def test_a_good_set_verifies(copy):
    assert verify(copy, progress=False) == []


def test_changed_bytes_fail_the_checksum(copy):
    path = copy / first_train_shard(copy)
    data = bytearray(path.read_bytes())
    data[2000] ^= 0xFF
    path.write_bytes(bytes(data))
    assert any("sha256" in p for p in verify(copy, progress=False))


def test_missing_shard(copy):
    (copy / first_train_shard(copy)).unlink()
    assert any("missing" in p for p in verify(copy, progress=False))


def test_undecodable_jpeg(copy):
    def truncate(sample):
        return replace(sample, jpegs=(sample.jpegs[0][:300], *sample.jpegs[1:]))

    rewrite(copy, first_train_shard(copy), truncate)
    assert any("view 0 does not decode" in p for p in verify(copy, progress=False))


def test_wrong_image_size(copy):
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="JPEG")

    def shrink(sample):
        return replace(sample, jpegs=(buffer.getvalue(), *sample.jpegs[1:]))

    rewrite(copy, first_train_shard(copy), shrink)
    assert any("expected a 32x32 JPEG" in p for p in verify(copy, progress=False))


def test_latents_out_of_range_or_misshapen(copy):
    def bad_latents(sample):
        latents = sample.latents.copy()
        latents[1, 3] = 1.5  # floor hue beyond 1
        return replace(sample, latents=latents)

    rewrite(copy, first_train_shard(copy), bad_latents)
    problems = verify(copy, progress=False)
    assert any("outside preset '3diebench'" in p and "views [1]" in p for p in problems)


def test_object_in_two_splits(copy):
    info = info_of(copy)
    train = info["splits"]["train"]["shards"][0]
    shutil.copy(copy / train["name"], copy / "tiny-val-000099.tar")
    shutil.copy(fmt.index_path(copy / train["name"]), fmt.index_path(copy / "tiny-val-000099.tar"))
    info["splits"]["val"]["shards"].append(train | {"name": "tiny-val-000099.tar"})
    (copy / fmt.INFO_NAME).write_text(json.dumps(info))
    assert any("again in tiny-val-000099.tar (val)" in p for p in verify(copy, progress=False))


def test_cli_exits_non_zero_with_the_report(copy):
    from click.testing import CliRunner

    from iebench.cli import main

    (copy / first_train_shard(copy)).unlink()
    result = CliRunner().invoke(main, ["verify", str(copy)])
    assert result.exit_code == 1 and "missing" in result.output


def test_quick_checks_sizes_and_checksums_and_workers_find_the_same_problems(copy, monkeypatch):
    from iebench.dataset import verify as verify_module

    assert verify(copy, progress=False, quick=True) == []
    shard = info_of(copy)["splits"]["train"]["shards"][0]["name"]
    data = bytearray((copy / shard).read_bytes())
    data[700] ^= 0xFF  # inside the first member's bytes: the same size, another sha256
    (copy / shard).write_bytes(bytes(data))
    quick = verify(copy, progress=False, quick=True)
    assert len(quick) == 1 and quick[0].startswith(f"{shard}: sha256 differs from _info.json")
    one = verify(copy, progress=False, workers=1)
    monkeypatch.setattr(verify_module, "PARALLEL_FROM_BYTES", 0)  # a tiny set, checked over processes all the same
    assert verify(copy, progress=False, workers=2) == one and any("does not match its checksum in the index" in p for p in one)
