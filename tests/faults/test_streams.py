"""Streams that go wrong: a member named twice, a command that stalls or fails mid-stream, an edited object count.

Issue cases: a duplicated member in a piped stream replaced view 0 silently; a cut-short stream yielded no
object (its whole objects are read now) and closing it hid the error; `_info.json`'s object count raised
from 3 to 5 made `StreamingPairs` yield 5 items from 3 objects. (Shards over HTTP: tests/loaders/test_remote_streams.py.)
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time

import pytest

from iebench.dataset import format as fmt
from iebench.loaders import StreamingPairs
from iebench.loaders.remote import RemoteOptions
from iebench.loaders.sources import SourceError
from iebench.loaders.streaming import DUPLICATE, iterate_samples


def train_members(root) -> list[tuple[str, bytes]]:
    """(name, bytes) of every member of the train split's shards, in shard then tar order (real objects)."""
    info = json.loads((root / fmt.INFO_NAME).read_text())
    members = []
    for shard in info["splits"]["train"]["shards"]:
        with tarfile.open(root / shard["name"]) as tar:
            members += [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    return members


def write_tar(path, members: list[tuple[str, bytes]]):
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def keys_of(members) -> list[str]:
    return list(dict.fromkeys(name.split(".", 1)[0] for name, _ in members))


def piped_pairs(url: str, info: dict, objects: int, **options) -> StreamingPairs:
    options = {"shuffle_buffer": 1, "remote": RemoteOptions(timeout=0.5)} | options
    return StreamingPairs([url], num_samples=objects, latent_names=tuple(info["latent_names"]), views=info["views_per_object"], **options)


@pytest.fixture
def set_info(shards):
    return json.loads((shards / fmt.INFO_NAME).read_text())


def test_a_duplicated_member_is_named_or_skipped(shards, set_info, tmp_path, caplog):
    members = train_members(shards)
    first, second = keys_of(members)[:2]
    at = max(i for i, (name, _) in enumerate(members) if name.startswith(first + "."))
    other_view = next(data for name, data in members if name == f"{second}.000.jpg")
    tar = write_tar(tmp_path / "dup.tar", members[: at + 1] + [(f"{first}.000.jpg", other_view)] + members[at + 1 :])
    url = f"pipe:cat {tar}"
    objects = len(keys_of(members))
    with pytest.raises(SourceError, match=rf"{url}: object {first}: member {first}\.000\.jpg comes twice in the stream"):
        list(piped_pairs(url, set_info, objects))
    kept = list(piped_pairs(url, set_info, objects, on_error="skip"))
    assert first not in {item["key"] for item in kept} and len(kept) == objects
    assert "comes twice" in caplog.text
    # An object whose members are not together is refused too (the later run would be another copy of it).
    split = write_tar(tmp_path / "split.tar", members + [(f"{first}.cls", b"0")])
    samples = list(iterate_samples(str(split)))
    assert [key for key, _ in samples] == [*keys_of(members), first]
    assert "comes twice in the stream (its members are not together)" in samples[-1][1][DUPLICATE].message


def test_a_command_that_fails_mid_stream_keeps_its_whole_objects(shards, set_info, tmp_path):
    members = train_members(shards)
    keys = keys_of(members)
    assert len(keys) >= 2
    tar = write_tar(tmp_path / "all.tar", members)
    with tarfile.open(tar) as reader:
        start = next(m.offset_data for m in reader.getmembers() if m.name.startswith(keys[-1] + "."))
    url = f"pipe:head -c {start + 10} {tar}; exit 3"
    with pytest.raises(SourceError, match=rf"not a readable tar stream in object {keys[-1]} .*the command exited with status 3"):
        list(piped_pairs(url, set_info, len(keys)))  # the tar's error, not the exit status raised over it on close
    kept = list(piped_pairs(url, set_info, len(keys), on_error="skip"))
    assert {item["key"] for item in kept} == set(keys[:-1]) and len(kept) == len(keys)
    with pytest.raises(SourceError, match=r"pipe:exit 2: the stream did not end cleanly \(the command exited with status 2\)"):
        list(iterate_samples("pipe:exit 2"))


def test_a_stalled_command_is_stopped_after_the_timeout(shards, set_info, tmp_path):
    members = train_members(shards)
    tar = write_tar(tmp_path / "all.tar", members)
    url = f"pipe:head -c 5000 {tar}; sleep 60"
    start = time.monotonic()
    with pytest.raises(SourceError, match=rf"{url}: no data for 0.5 s \(the command was stopped\) in object "):
        list(piped_pairs(url, set_info, len(keys_of(members))))
    assert time.monotonic() - start < 5  # not the 60 s the command would sleep


def test_an_object_count_raised_in_info_is_refused(shards, set_info):
    held = set_info["splits"]["train"]["objects"]
    set_info["splits"]["train"]["objects"] = held + 2
    (shards / fmt.INFO_NAME).write_text(json.dumps(set_info))
    with pytest.raises(SourceError, match=r"_info\.json does not match its sha256 in SHA256SUMS .*iebench finalize"):
        StreamingPairs(shards, "train")
    sums = shards / "SHA256SUMS"  # an edit that kept SHA256SUMS in step is held to the shards' indexes
    digest = hashlib.sha256((shards / fmt.INFO_NAME).read_bytes()).hexdigest()
    sums.write_text(
        "".join(
            f"{digest}  {fmt.INFO_NAME}\n" if line.endswith(f"  {fmt.INFO_NAME}") else line + "\n" for line in sums.read_text().splitlines()
        )
    )
    with pytest.raises(SourceError, match=rf"split train has {held + 2} objects by its record, {held} in its shards' indexes"):
        StreamingPairs(shards, "train")
