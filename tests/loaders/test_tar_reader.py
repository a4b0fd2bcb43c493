"""The streaming loader's own tar reader against Python's tarfile: the same members, fewer bytes read."""

import io
import tarfile

import pytest

from iebench.loaders.sources import SourceError
from iebench.loaders.streaming import iterate_samples


def by_tarfile(path) -> list[tuple[str, dict[str, bytes]]]:
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for member in tar:
            if member.isfile():
                key, _, field = member.name.rsplit("/", 1)[-1].partition(".")
                samples.setdefault(key, {})[field] = tar.extractfile(member).read()
    return list(samples.items())


def test_every_member_of_real_shards_as_tarfile_reads_it(packed):
    out, info = packed
    for shard in info["splits"]["train"]["shards"] + info["splits"]["val"]["shards"]:
        assert list(iterate_samples(str(out / shard["name"]))) == by_tarfile(out / shard["name"])


def test_only_the_wanted_fields_are_kept(packed):
    out, info = packed
    shard = out / info["splits"]["train"]["shards"][0]["name"]
    expected = by_tarfile(shard)
    kept = list(iterate_samples(str(shard), lambda key: {"001.jpg", "cls"}))
    assert [k for k, _ in kept] == [k for k, _ in expected]
    assert all(fields == {"001.jpg": full["001.jpg"], "cls": full["cls"]} for (_, fields), (_, full) in zip(kept, expected))


@pytest.mark.parametrize("format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_in_every_tar_format(tmp_path, format):
    folder = "d" * 90 if format == tarfile.USTAR_FORMAT else "d" * 150  # ustar: a prefix; GNU and pax: a long-name record
    members = [(f"{folder}/obj_a.000.jpg", b"x" * 700), (f"{folder}/obj_a.cls", b"3"), (f"{folder}/obj_b.000.jpg", b"y" * 10)]
    with tarfile.open(tmp_path / "t.tar", "w", format=format) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert list(iterate_samples(str(tmp_path / "t.tar"))) == [
        ("obj_a", {"000.jpg": b"x" * 700, "cls": b"3"}),
        ("obj_b", {"000.jpg": b"y" * 10}),
    ]
    # a stream that cannot seek: the skipped bytes are read and dropped
    assert list(iterate_samples(f"pipe:cat {tmp_path / 't.tar'}", lambda key: {"cls"})) == [("obj_a", {"cls": b"3"}), ("obj_b", {})]


def test_a_cut_or_damaged_stream_is_one_clear_error(packed, tmp_path):
    out, info = packed
    shard = (out / info["splits"]["train"]["shards"][0]["name"]).read_bytes()
    (tmp_path / "cut.tar").write_bytes(shard[: len(shard) // 2 + 100])
    with pytest.raises(
        SourceError, match=r"cut.tar: not a readable tar stream in object \S+ \(\d+ whole objects? before it\) .*truncated or corrupt"
    ):
        list(iterate_samples(str(tmp_path / "cut.tar")))
    damaged = bytearray(shard)
    damaged[10] ^= 0xFF  # inside the first header's name: its checksum no longer holds
    (tmp_path / "bad.tar").write_bytes(bytes(damaged))
    with pytest.raises(SourceError, match="checksum"):
        list(iterate_samples(str(tmp_path / "bad.tar")))
