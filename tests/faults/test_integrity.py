"""Nothing corrupt is trained on: damaged members, edited split arrays and truncated shards are caught and named.

Issue cases 1 (a flipped byte in a JPEG member; a JPEG the decoder warns about), 2 (edited split
arrays, float32 latents) and 5 (a truncated shard).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from iebench.dataset import format as fmt
from iebench.dataset.verify import verify
from iebench.loaders import PairDataset, StreamingPairs, ViewDataset, make_loader
from iebench.loaders.decode import CorruptJPEGError, decode
from iebench.loaders.sources import SourceError

from .conftest import TINY_TRAIN, assert_clean_failure, invoke


def train_entries(root):
    info = json.loads((root / fmt.INFO_NAME).read_text())
    shard = root / info["splits"]["train"]["shards"][0]["name"]
    return shard, fmt.read_index(shard)["samples"]


def flip_byte(shard, span, at=0.5):
    """Flip one byte inside a member's data (the tar stays readable, the member is corrupt)."""
    with open(shard, "r+b") as handle:
        handle.seek(span[0] + int(span[1] * at))
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0x5A]))


def test_a_flipped_byte_in_a_jpeg_is_caught_and_named(shards, tmp_path):
    shard, entries = train_entries(shards)
    key = entries[0]["key"]
    for view in range(4):  # every view, so whichever pair is drawn reads a damaged member
        flip_byte(shard, entries[0]["members"][fmt.view_field(view)])
    data = PairDataset(shards, "train")
    index = next(i for i, e in enumerate(data.objects) if e.key == key)
    with pytest.raises(SourceError, match=rf"{shard.name}: object {key}: member {key}\.00\d\.jpg does not match its checksum"):
        data[index]
    skipping = PairDataset(shards, "train", on_error="skip")
    batch = next(iter(make_loader(skipping, batch_size=len(skipping), num_workers=0, train=False)))
    assert key not in batch["key"] and len(batch["key"]) == len(skipping) - 1
    streamed = StreamingPairs(shards, "train", shuffle_buffer=1)
    with pytest.raises(SourceError, match=rf"object {key}: member {key}\.00\d\.jpg does not match its checksum"):
        list(streamed)
    problems = verify(shards, progress=False)
    assert any(p.startswith(f"{shard.name}: sha256 differs") for p in problems)
    assert any(f"object {key}: member {key}.000.jpg" in p for p in problems), problems
    # Training stops with one line naming shard, object and member, from inside a loader worker too.
    code, output = invoke("train", "--data", shards, "--out", tmp_path / "run", *TINY_TRAIN, "--epochs", "1", "--workers", "1")
    assert_clean_failure(code, output, shard.name, f"object {key}", "member", "checksum")


def test_a_flipped_byte_between_members_is_located_and_finalize_is_not_advised(shards):
    shard, _ = train_entries(shards)
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF  # the tar's end-of-archive padding: no member is touched
    shard.write_bytes(bytes(data))
    problems = verify(shards, progress=False)
    assert problems == [
        f"{shard.name}: sha256 differs from _info.json (changed or corrupt; every member reads intact, "
        "so the damage lies between them, in tar headers or padding: re-pack it or restore it from a copy)"
    ]


def test_a_jpeg_the_decoder_warns_about_is_an_error(loose, tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(buffer, format="JPEG", quality=95)
    good = buffer.getvalue()
    warned = good[:-2] + b"\0" * 37 + good[-2:]  # libjpeg: "Corrupt JPEG data: ... extraneous bytes before marker 0xd9"
    decode(good)
    with pytest.raises(CorruptJPEGError, match="Corrupt JPEG data"):
        decode(warned)
    folder = next(p for p in sorted(loose.glob("*/*")) if p.is_dir())
    for view in range(4):
        (folder / f"image_{view}.jpg").write_bytes(warned)
    out = tmp_path / "out"
    code, output = invoke("pack", loose, out, "--workers", "1")  # PIL ignores libjpeg's warnings: it packs
    assert code == 0, output
    key = fmt.sample_key(folder.parent.name, folder.name)
    problems = verify(out, progress=False)
    assert any(f"object {key}: member {key}.002.jpg: view 2 does not decode cleanly (Corrupt JPEG data" in p for p in problems)
    split = "train" if key in {e.key for e in PairDataset(out, "train").objects} else "val"
    data = PairDataset(out, split)
    index = next(i for i, e in enumerate(data.objects) if e.key == key)
    with pytest.raises(SourceError, match=rf"object {key}: member {key}\.00\d\.jpg: view \d does not decode cleanly \(Corrupt JPEG"):
        data[index]


def test_edited_split_arrays_are_refused_until_finalize_rewrites_them(shards):
    path = shards / "all_latents_train.npy"
    latents = np.load(path)
    latents[1:3, 0] += 0.25  # rows of the first object
    np.save(path, latents)
    problems = verify(shards, progress=False)
    objects = sorted(k for s in json.loads((shards / fmt.INFO_NAME).read_text())["splits"]["train"]["shards"] for k in s["keys"])
    assert any(p.startswith("all_latents_train.npy: rows of 1 objects") and objects[0] in p for p in problems), problems
    assert any(p.startswith("all_latents_train.npy: sha256 differs from _info.json") for p in problems)
    assert any(p.startswith("SHA256SUMS: all_latents_train.npy does not match") for p in problems)
    for dataset in (PairDataset, ViewDataset):
        with pytest.raises(SourceError, match="all_latents_train.npy: does not match the sha256 recorded in _info.json.*iebench finalize"):
            dataset(shards, "train")
    code, _ = invoke("finalize", shards)
    assert code == 0 and verify(shards, progress=False) == []
    assert PairDataset(shards, "train")[0]["action"].shape == (4,)


def test_every_file_of_the_set_is_in_sha256sums(shards):
    listed = {line.split("  ", 1)[1] for line in (shards / "SHA256SUMS").read_text().splitlines()}
    files = {p.name for p in shards.iterdir()} - {"SHA256SUMS", "_part.json"}
    assert listed == files
    assert any(n.endswith(".index.json") for n in listed) and {"_info.json", "README.md", "val_labels.npy"} <= listed
    (shards / "README.md").write_text("edited\n")
    assert any(p.startswith("README.md: sha256 differs") for p in verify(shards, progress=False))


def test_float32_latents_are_refused_before_rendering(shards, procedural_root, tmp_path):
    path = shards / "all_latents_val.npy"
    np.save(path, np.load(path).astype(np.float32))
    code, output = invoke("render", procedural_root, "--out", tmp_path / "again", "--latents", path)
    assert_clean_failure(code, output, "all_latents_val.npy", "float32, not float64")
    assert not (tmp_path / "again").exists()


def test_a_truncated_shard_is_named_before_training(shards, tmp_path):
    shard, entries = train_entries(shards)
    cut = entries[-1]["members"]["000.jpg"][0] + 10  # inside the last object's first view: every pair reads a cut member
    with open(shard, "r+b") as handle:
        handle.truncate(cut)
    with pytest.raises(SourceError, match=rf"{shard.name}: \d+ bytes, _info.json says \d+ \(truncated or changed\)"):
        PairDataset(shards, "train")
    skipping = PairDataset(shards, "train", on_error="skip")  # the intact objects load, the cut one is left out
    keys = [item["key"] for item in (skipping[i] for i in range(len(skipping))) if item is not None]
    intact = [e.key for e in skipping.objects if e.shard != str(shard)]
    assert intact and set(intact) <= set(keys) and entries[-1]["key"] not in keys
    problems = verify(shards, progress=False)
    assert any(f"object {entries[-1]['key']}: member {entries[-1]['key']}.000.jpg is cut short" in p for p in problems), problems
    code, output = invoke("train", "--data", shards, "--out", tmp_path / "run", *TINY_TRAIN, "--epochs", "1", "--workers", "0")
    assert_clean_failure(code, output, shard.name, "truncated")
    assert len(output.splitlines()) <= 3
