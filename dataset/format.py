"""The shard format: one WebDataset sample per object, written byte for byte reproducibly.

A sample is the tar members `<key>.000.jpg ... <key>.NNN.jpg`, `<key>.cls`, `<key>.json` and
`<key>.latents.npy`, in sorted order, with key `<synset>_<model_id>` (WebDataset splits keys at the
first dot, so keys have none). JPEG bytes are stored exactly as rendered, never re-encoded. Every
member has mtime 0, owner 0/0 and mode 0444, so the same input gives the same bytes.

Beside each shard `X.tar`, `X.tar.index.json` gives every member's data offset and size, so a
loader can read two views of an object with two reads; it also holds the shard's sha256.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iebench.files import TMP_MARK, write_atomic

FORMAT = "iebench-shards/1"
INDEX_SUFFIX = ".index.json"
INFO_NAME = "_info.json"
SPLITS = ("train", "val")
HF_SPLIT_NAMES = {"train": "train", "val": "validation"}


class ShardFormatError(ValueError):
    """A sample or shard that does not follow the format; the message names it."""


def sample_key(synset: str, model_id: str) -> str:
    """The WebDataset key of an object: `<synset>_<model_id>`."""
    key = f"{synset}_{model_id}"
    if "." in key or "/" in key:
        raise ShardFormatError(f"object {synset}/{model_id}: ids may not contain '.' or '/' (WebDataset keys)")
    return key


def split_key(key: str) -> tuple[str, str]:
    """(synset, model_id) of a sample key."""
    synset, _, model_id = key.partition("_")
    return synset, model_id


def view_field(view: int) -> str:
    """Member field of a view's JPEG: 000.jpg, 001.jpg, ..."""
    return f"{view:03d}.jpg"


def shard_name(name: str, split: str, index: int, job: str = "") -> str:
    """`<name>-<split>-000000.tar`, with a job part (`-job00003`) when an array wrote it."""
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
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(self.latents, dtype=np.float64), allow_pickle=False)
        fields = [(view_field(v), jpeg) for v, jpeg in enumerate(self.jpegs)]
        fields += [("cls", str(self.label).encode()), ("json", json.dumps(meta, sort_keys=True).encode()),
                   ("latents.npy", buffer.getvalue())]
        return sorted(fields)


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_shard(path: Path, samples: list[ObjectSample]) -> dict:
    """Write a shard and its index atomically (temporary names, index renamed first, tar last); returns the index."""
    path = Path(path)
    tmp_tar = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    entries = []
    with tarfile.open(tmp_tar, "w", format=tarfile.GNU_FORMAT) as tar:
        for sample in samples:
            members = {}
            for field, data in sample.members():
                tar.addfile(_tarinfo(f"{sample.key}.{field}", len(data)), io.BytesIO(data))
                # The data ends at the padded end of the archive so far (long names add headers before it).
                padded = -(-len(data) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                members[field] = [tar.offset - padded, len(data)]
            entries.append({"key": sample.key, "label": sample.label, "members": members})
    index = {"format": FORMAT, "shard": path.name, "bytes": tmp_tar.stat().st_size, "sha256": sha256_file(tmp_tar),
             "samples": entries}
    write_atomic(index_path(path), (json.dumps(index, separators=(",", ":")) + "\n").encode())
    os.replace(tmp_tar, path)
    return index


def index_path(shard: Path) -> Path:
    """The offset index beside a shard."""
    return Path(shard).with_name(Path(shard).name + INDEX_SUFFIX)


def shard_complete(path: Path) -> bool:
    """A shard counts as written when both it and its index are in place (the tar is renamed last)."""
    return Path(path).is_file() and index_path(path).is_file()


def read_index(shard: Path) -> dict:
    """The offset index of a shard."""
    try:
        return json.loads(index_path(shard).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ShardFormatError(f"{index_path(shard)}: cannot read the index ({error})") from None


def read_member(shard: Path, entry: list[int], handle=None) -> bytes:
    """One member's bytes from its [offset, size] in the index (one read)."""
    offset, size = entry
    if handle is not None:
        handle.seek(offset)
        return handle.read(size)
    with open(shard, "rb") as own:
        own.seek(offset)
        return own.read(size)


def remove_temporary(folder: Path) -> None:
    """Delete temporary shard files an interrupted run left behind."""
    for leftover in Path(folder).glob(f"*{TMP_MARK}*"):
        leftover.unlink(missing_ok=True)
