"""A split's offset index as flat arrays, memory-mapped from a cache file that every worker process shares.

Shard indexes are JSON (one dict of members per object). Held as Python objects they cost about 250 bytes a
member, are pickled whole into every spawned worker, and reference counting copies their pages into every
forked one. Here the same facts are numpy arrays, 16 bytes a member: `spans` (objects x fields) of
(offset int64, size uint32, crc32 uint32), with the fields shared by every object (`000.jpg`, ...,
`latents.npy`); a member an object lacks has size `MISSING`. Keys, labels and each object's shard are arrays
too, so nothing grows with the number of members in Python.

The arrays are built once per set and split from the shards' indexes and saved as `.npy` files in a cache
folder (`IEBENCH_CACHE`, else `~/.cache/iebench`), named by a digest of `_info.json` and the indexes' sizes
and times, so a re-finalized or re-packed set builds a new table. Workers map the same files: a pickled table
is its folder's path. Where the cache cannot be written, the table stays in memory (and is pickled whole).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iebench.dataset import format as fmt
from iebench.files import TMP_MARK

TABLE_VERSION = 1
MISSING = np.iinfo(np.uint32).max  # the size of a member an object does not have
SPAN = np.dtype([("offset", "<i8"), ("size", "<u4"), ("crc", "<u4")])
NO_CRC_FORMAT = "iebench-shards/1"  # its indexes hold no crc32: members are checked by size only
_ARRAYS = ("keys", "labels", "shards", "spans")


class TableError(ValueError):
    """Shard indexes that do not describe a split's members; the message names the shard."""


def cache_root() -> Path:
    """Where member tables are cached: `$IEBENCH_CACHE`, else `~/.cache/iebench`."""
    return Path(os.environ.get("IEBENCH_CACHE") or Path.home() / ".cache" / "iebench")


def table_digest(info_path: Path, split: str, shards: list[Path]) -> str:
    """A name for the table of one split of one set: `_info.json`'s bytes and each index's size and mtime."""
    digest = hashlib.sha256(f"member-table/{TABLE_VERSION}/{split}\n".encode())
    digest.update(Path(info_path).read_bytes())
    for shard in shards:
        try:
            stat = fmt.index_path(shard).stat()
            digest.update(f"{shard.name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{shard.name} missing\n".encode())  # reading it fails with its own message
    return digest.hexdigest()[:32]


@dataclass
class MemberTable:
    """Every object of a split, sorted by key: its key, label, shard and the spans of its members."""

    fields: tuple[str, ...]
    shard_names: tuple[str, ...]
    keys: np.ndarray  # (objects,) bytes
    labels: np.ndarray  # (objects,) int64
    shards: np.ndarray  # (objects,) int32, into shard_names
    spans: np.ndarray  # (objects, fields) SPAN
    checked: bool = True  # False for format-1 indexes (no crc32)
    folder: Path | None = None  # where the arrays are mapped from, if they are

    def __len__(self) -> int:
        return len(self.keys)

    def key(self, row: int) -> str:
        """The sample key of an object."""
        return self.keys[row].decode()

    def span(self, row: int, field: str) -> list[int] | None:
        """[offset, size, crc32] of one member (without the crc32 for format-1 shards), or None if the object lacks it."""
        column = self._columns.get(field)
        if column is None:
            return None
        offset, size, crc = self.spans[row, column].tolist()
        if size == MISSING:
            return None
        return [offset, size, crc] if self.checked else [offset, size]

    @property
    def _columns(self) -> dict[str, int]:
        columns = self.__dict__.get("_column_map")
        if columns is None:
            columns = self.__dict__["_column_map"] = {field: i for i, field in enumerate(self.fields)}
        return columns

    @property
    def nbytes(self) -> int:
        """Bytes the arrays hold (mapped or in memory)."""
        return sum(getattr(self, name).nbytes for name in _ARRAYS)

    def save(self, folder: Path) -> None:
        """Write the table to `folder` (created whole under a temporary name, then renamed)."""
        folder = Path(folder)
        tmp = folder.with_name(f"{folder.name}{TMP_MARK}{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            for name in _ARRAYS:
                np.save(tmp / f"{name}.npy", getattr(self, name), allow_pickle=False)
            meta = {"version": TABLE_VERSION, "fields": self.fields, "shard_names": self.shard_names, "checked": self.checked}
            (tmp / "meta.json").write_text(json.dumps(meta))
            os.replace(tmp, folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (folder / "meta.json").is_file():  # another process may have renamed the same table into place first
                raise

    @classmethod
    def load(cls, folder: Path) -> MemberTable:
        """A saved table, its arrays memory-mapped."""
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("version") != TABLE_VERSION:
            raise ValueError(f"{folder}: member table version {meta.get('version')}, expected {TABLE_VERSION}")
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
        return cls(tuple(meta["fields"]), tuple(meta["shard_names"]), checked=meta["checked"], folder=folder, **arrays)

    def __getstate__(self) -> dict:
        if self.folder is not None:
            return {"folder": str(self.folder)}  # a worker maps the same files
        state = dict(self.__dict__)
        state.pop("_column_map", None)
        return state

    def __setstate__(self, state: dict) -> None:
        if set(state) == {"folder"}:
            state = MemberTable.load(Path(state["folder"])).__dict__
        self.__dict__.update(state)


def build_table(shards: list[Path], indexes: list[dict]) -> MemberTable:
    """The table of the objects the shards' indexes list, sorted by key; `TableError` names a shard that lists an object twice."""
    samples = [(number, sample) for number, index in enumerate(indexes) for sample in index["samples"]]
    fields = sorted({field for _, sample in samples for field in sample["members"]})
    width = 3 if all(index.get("format") != NO_CRC_FORMAT for index in indexes) else 2
    spans = np.zeros((len(samples), len(fields), 3), np.int64)
    spans[:, :, 1] = MISSING
    common = tuple(fields)  # the writer stores every object's members in sorted order: one list of spans per object
    rows = [row for row, (_, sample) in enumerate(samples) if tuple(sample["members"]) == common]
    if rows:
        values = [span for row in rows for span in samples[row][1]["members"].values()]
        spans[rows, :, :width] = np.array(values, dtype=np.int64).reshape(len(rows), len(fields), width)
    column = {field: i for i, field in enumerate(fields)}
    for row in sorted(set(range(len(samples))) - set(rows)):  # an object with members of its own (or in another order)
        for field, span in samples[row][1]["members"].items():
            spans[row, column[field], : len(span)] = span
    keys = np.array([sample["key"].encode() for _, sample in samples], dtype=bytes)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    if len(sorted_keys) > 1:
        repeated = np.nonzero(sorted_keys[1:] == sorted_keys[:-1])[0]
        if len(repeated):
            key = sorted_keys[repeated[0]].decode()
            where = sorted({shards[samples[i][0]].name for i in order[repeated[0] : repeated[0] + 2]})
            raise TableError(f"object {key} is listed twice ({' and '.join(where)}): run `iebench verify {shards[0].parent}`")
    table = np.zeros((len(samples), len(fields)), SPAN)
    table["offset"], table["size"], table["crc"] = spans[order, :, 0], spans[order, :, 1], spans[order, :, 2]
    labels = np.array([sample["label"] for _, sample in samples], dtype=np.int64)[order]
    owner = np.array([number for number, _ in samples], dtype=np.int32)[order]
    names = tuple(shard.name for shard in shards)
    return MemberTable(tuple(fields), names, sorted_keys, labels, owner, table, checked=width == 3)


def cached_table(digest: str, build: callable) -> MemberTable:
    """The table named `digest`: mapped from the cache when there, else built by `build()` and cached (kept in memory
    when the cache cannot be written)."""
    folder = cache_root() / "member-tables" / digest
    if (folder / "meta.json").is_file():
        try:
            return MemberTable.load(folder)
        except (OSError, ValueError):
            shutil.rmtree(folder, ignore_errors=True)  # a damaged cache entry is built again
    table = build()
    try:
        table.save(folder)
    except OSError:
        return table
    return MemberTable.load(folder)
