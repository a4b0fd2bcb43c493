"""The shard format: one WebDataset sample per object, written byte for byte reproducibly.

A sample is the tar members `<key>.000.jpg ... <key>.NNN.jpg`, `<key>.cls`, `<key>.json` and
`<key>.latents.npy` (with named passes also `<key>.000.depth.png`, ...: `iebench.passes`), in sorted
order, with key `<synset>_<model_id>` (WebDataset splits keys at the
first dot, so keys have none). The key is a name, never parsed: an object's synset and model id are
in its `.json` member and its index entry. JPEG bytes are stored exactly as rendered, never
re-encoded. Every member has mtime 0, owner 0/0 and mode 0444, so the same input gives the same bytes.

Beside each shard `X.tar`, `X.tar.index.json` gives every member's data offset, size and crc32, so a
loader can read two views of an object with two reads and check each; it also holds the shard's
sha256. (Format 1 had no crc32 and no ids in the index; its shards are still read, unchecked.)
"""

from __future__ import annotations

import io
import json
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from iebench.files import atomic_path, sha256_file, write_atomic
from iebench.npy import parse_npy
from iebench.passes import PASSES

FORMAT = "iebench-shards/2"
READABLE_FORMATS = ("iebench-shards/1", FORMAT)
INDEX_SUFFIX = ".index.json"
INFO_NAME = "_info.json"
SPLITS = ("train", "val")
HF_SPLIT_NAMES = {"train": "train", "val": "validation"}


class ShardFormatError(ValueError):
    """A sample or shard that does not follow the format; the message names it."""


class MemberError(ShardFormatError):
    """A member whose bytes are not those its index recorded (cut short or changed); names shard, object and member."""


def decode_latents(data: bytes, key: str, where: str | None = None) -> np.ndarray:
    """A sample's `latents.npy` member as an array; `ShardFormatError` names the object, its member, and the shard
    (`where`) when given."""
    try:
        return parse_npy(data)
    except (ValueError, EOFError) as error:  # an empty member is an EOFError
        prefix = f"{where}: " if where else ""
        raise ShardFormatError(f"{prefix}object {key}: member {key}.latents.npy is not a numpy array ({error})") from None


def sample_key(synset: str, model_id: str) -> str:
    """The WebDataset key of an object: `<synset>_<model_id>` (a name: the ids are stored beside it, never parsed back)."""
    for kind, value in (("class folder", synset), ("object folder", model_id)):
        if not value or "." in value or "/" in value or "\\" in value or not value.isprintable():
            raise ShardFormatError(
                f"{kind} {value!r} of object {synset}/{model_id} cannot be stored in a shard: WebDataset keys end at the "
                "first '.' and may not hold '/' or control characters; rename the folder"
            )
    return f"{synset}_{model_id}"


def check_unique_keys(ids: list[tuple[str, str]]) -> None:
    """Refuse two objects whose keys coincide (`a_b/c` and `a/b_c` are both `a_b_c`), naming both."""
    seen: dict[str, tuple[str, str]] = {}
    for synset, model_id in ids:
        key = sample_key(synset, model_id)
        other = seen.setdefault(key, (synset, model_id))
        if other != (synset, model_id):
            raise ShardFormatError(
                f"objects {other[0]}/{other[1]} and {synset}/{model_id} would both have the sample key {key}: rename one of the folders"
            )


def check_dataset_name(name: str) -> str:
    """A dataset name that can start shard file names (`<name>-<split>-000000.tar`)."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or not name.isprintable():
        raise ShardFormatError(f"--name {name!r} cannot start a file name: use letters, digits, '-' or '_'")
    return name


def view_field(view: int) -> str:
    """Member field of a view's JPEG: 000.jpg, 001.jpg, ..."""
    return f"{view:03d}.jpg"


def pass_field(view: int, name: str) -> str:
    """Member field of a view's pass: 000.depth.png, 000.camera.json, ... (sorts beside the view's 000.jpg)."""
    return PASSES[name].field(view)


def shard_name(name: str, split: str, index: int, job: str = "") -> str:
    """`<name>-<split>-000000.tar`, with a job part (`-job00003-of-00008`) when an array wrote it."""
    return f"{name}-{split}{job}-{index:06d}.tar"


@dataclass(frozen=True)
class ObjectSample:
    """One object's sample, ready to write."""

    synset: str
    model_id: str
    label: int
    class_name: str
    jpegs: tuple[bytes, ...]
    latents: np.ndarray  # (views, k) float64
    latent_names: tuple[str, ...]
    preset: str
    passes: tuple[dict[str, bytes], ...] = ()  # per view, pass name -> bytes (none: the RGB-only sample)

    @property
    def key(self) -> str:
        """The sample key."""
        return sample_key(self.synset, self.model_id)

    def members(self) -> list[tuple[str, bytes]]:
        """(field, bytes) in sorted field order."""
        meta = {
            "synset": self.synset,
            "model_id": self.model_id,
            "class_name": self.class_name,
            "label": self.label,
            "views": len(self.jpegs),
            "latent_names": list(self.latent_names),
            "preset": self.preset,
        }
        names = sorted({name for view in self.passes for name in view})
        if names:
            meta["passes"] = names
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(self.latents, dtype=np.float64), allow_pickle=False)
        fields = [(view_field(v), jpeg) for v, jpeg in enumerate(self.jpegs)]
        fields += [(pass_field(v, name), data) for v, view in enumerate(self.passes) for name, data in view.items()]
        fields += [
            ("cls", str(self.label).encode()),
            ("json", json.dumps(meta, sort_keys=True).encode()),
            ("latents.npy", buffer.getvalue()),
        ]
        return sorted(fields)


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_shard(path: Path, samples: list[ObjectSample]) -> dict:
    """Write a shard and its index atomically (temporary names, index renamed first, tar last); returns the index.

    Index entries: key, synset, model id, label, and per member [offset, size, crc32]. On any failure
    the temporary tar is removed; an OSError names the shard.
    """
    path = Path(path)
    entries = []
    with atomic_path(path) as tmp_tar:
        with tarfile.open(tmp_tar, "w", format=tarfile.GNU_FORMAT) as tar:
            for sample in samples:
                members = {}
                for field, data in sample.members():
                    tar.addfile(_tarinfo(f"{sample.key}.{field}", len(data)), io.BytesIO(data))
                    # The data ends at the padded end of the archive so far (long names add headers before it).
                    padded = -(-len(data) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                    members[field] = [tar.offset - padded, len(data), zlib.crc32(data)]
                entries.append(
                    {"key": sample.key, "synset": sample.synset, "model_id": sample.model_id, "label": sample.label, "members": members}
                )
        index = {"format": FORMAT, "shard": path.name, "bytes": tmp_tar.stat().st_size, "sha256": sha256_file(tmp_tar), "samples": entries}
        write_atomic(index_path(path), (json.dumps(index, separators=(",", ":")) + "\n").encode())
    return index


def index_path(shard: Path) -> Path:
    """The offset index beside a shard."""
    return Path(shard).with_name(Path(shard).name + INDEX_SUFFIX)


def shard_complete(path: Path) -> bool:
    """A shard counts as written when both it and its index are in place (the tar is renamed last)."""
    return Path(path).is_file() and index_path(path).is_file()


def read_index(shard: Path) -> dict:
    """The offset index of a shard."""
    path = index_path(shard)
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise ShardFormatError(f"{path}: the shard's offset index is missing (re-pack, or restore it from a copy)") from None
    except (OSError, ValueError) as error:
        raise ShardFormatError(f"{path}: cannot read the index ({error}): re-pack, or restore it from a copy") from None
    if not isinstance(index, dict) or index.get("format") not in READABLE_FORMATS or not isinstance(index.get("samples"), list):
        raise ShardFormatError(f"{path}: not an offset index of format {', '.join(READABLE_FORMATS)}")
    return index


def entry_ids(shard: Path, entry: dict, handle: BinaryIO | None = None) -> tuple[str, str]:
    """(synset, model_id) of an index entry: stored in it (format 2), else read from the sample's `.json` member."""
    if "synset" in entry and "model_id" in entry:
        return entry["synset"], entry["model_id"]
    meta = json.loads(read_member(shard, entry["key"], "json", entry["members"]["json"], handle))
    return meta["synset"], meta["model_id"]


def read_member(shard: Path, key: str, field: str, span: list[int], handle: BinaryIO | None = None) -> bytes:
    """One member's bytes from its [offset, size, crc32] in the index (one read), checked.

    Raises `MemberError` naming shard, object and member when the read comes short or the crc32
    differs from the index's (format-1 indexes have no crc32: only the size is checked).
    """
    offset, size = span[0], span[1]
    if handle is None:
        with open(shard, "rb") as own:
            own.seek(offset)
            data = own.read(size)
    else:
        handle.seek(offset)
        data = handle.read(size)
    if len(data) != size:
        raise MemberError(
            f"{shard}: object {key}: member {key}.{field} is cut short ({len(data)} of {size} bytes; "
            "the shard is truncated): re-pack it or restore it from a copy"
        )
    if len(span) > 2 and zlib.crc32(data) != span[2]:
        raise MemberError(
            f"{shard}: object {key}: member {key}.{field} does not match its checksum in the index "
            "(the shard is corrupt or was changed): re-pack it or restore it from a copy"
        )
    return data
