"""Random access to objects and their views, from shards (via offset indexes) or the original layout.

Both sources give the same objects in the same order (sorted keys) with the same labels, so every
dataset in this package works on either.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from iebench.classes import label_map
from iebench.dataset import format as fmt
from iebench.dataset.description import check_split, read_description
from iebench.dataset.finalize import FinalizeError
from iebench.dataset.loose import LooseLayoutError, image_size, latent_count, list_objects, passes_of, schema
from iebench.dataset.parts import PART_GLOB
from iebench.dataset.splits import SIE_SPLIT_FILES, SplitError, assign_splits
from iebench.files import sha256_file
from iebench.layout import image_path, latent_path
from iebench.loaders.member_table import MemberTable, TableError, build_table, cached_table, table_digest
from iebench.object_lists import ObjectListError, read_object_list
from iebench.passes import PASSES


class SourceError(ValueError):
    """Data that cannot be read; the message names the shard or file and the object."""


@dataclass(frozen=True)
class ObjectEntry:
    """One object of a split: key, label, and where its members are (a shard and the object's row of the member
    table, or a folder)."""

    key: str
    label: int
    shard: str | None = None
    row: int | None = None
    folder: str | None = None


class ShardObjects(Sequence):
    """A shard split's objects as `ObjectEntry` items, made on access from the member table (nothing per object is held)."""

    def __init__(self, root: Path, table: MemberTable) -> None:
        self.root, self.table = root, table

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, row: int) -> ObjectEntry:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(row)
        table = self.table
        shard = str(self.root / table.shard_names[table.shards[row]])
        return ObjectEntry(table.key(row), int(table.labels[row]), shard=shard, row=row)


class _HandleCache:
    """Open files kept per process (a forked or spawned worker opens its own)."""

    def __init__(self) -> None:
        self.pid, self.handles = os.getpid(), {}

    def get(self, path: str) -> BinaryIO:
        """The open file at `path`, opened once per process."""
        if self.pid != os.getpid():
            self.pid, self.handles = os.getpid(), {}
        handle = self.handles.get(path)
        if handle is None:
            handle = self.handles[path] = open(path, "rb")
        return handle

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()


_CHECKED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256, per process


def _sha256_once(path: Path) -> str:
    """sha256 of a file, computed once per process for an unchanged file."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKED:
        _CHECKED[key] = sha256_file(path)
    return _CHECKED[key]


class SplitLatents:
    """A split's latents from the SIE split files (`<split>_images.npy` + `all_latents_<split>.npy`), memory-mapped.

    Reading two rows of a memory-mapped array costs far less than parsing an object's latent member
    or files for every pair; the pages are shared by all worker processes. With `checksums` (a shard
    set's `_info.json` records them) both files must match theirs, or `SourceError` says to run
    `iebench finalize`; a shard set without recorded checksums (format 1) does not use them at all.
    Latents must be float64 (k columns); files that do not describe the split's objects are not used.
    """

    def __init__(self, root: Path, split: str, views: int, checksums: dict[str, str] | None = None) -> None:
        self.available = False
        images, latents = Path(root) / f"{split}_images.npy", Path(root) / f"all_latents_{split}.npy"
        if checksums is not None:
            for path in (images, latents):
                recorded = checksums.get(path.name)
                if recorded is None:
                    return  # a set finalized before checksums were recorded: read the latents from the shards
                if not path.is_file():
                    raise SourceError(f"{path}: missing (run `iebench finalize {root}` to write the split files again)")
                if _sha256_once(path) != recorded:
                    raise SourceError(
                        f"{path}: does not match the sha256 recorded in _info.json (edited or corrupt): "
                        f"run `iebench finalize {root}` to write the split files again from the shards"
                    )
        if not (images.is_file() and latents.is_file()):
            return
        try:
            count = len(np.load(images, mmap_mode="r"))
            array = np.load(latents, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise SourceError(f"{latents.parent}: split files {images.name}, {latents.name} unreadable ({error})") from None
        if array.dtype != np.float64:
            raise SourceError(
                f"{latents}: latents are {array.dtype}, 3DIEBench's are float64: use the original file "
                "(rounded latents would give wrong actions)"
            )
        if array.ndim != 2 or array.shape[0] != count * views:
            return  # not the files of this data: fall back to the per-object latents
        self.images, self.views, self.array, self.available = images, views, array, True
        self._sorted_keys()  # read (and checked) now; a worker process reads it again on first use rather than receiving it

    def _sorted_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted keys as bytes, each one's first row), read from the object list on first use in each process."""
        lookup = self.__dict__.get("_sorted")
        if lookup is None:
            try:
                keys = np.array([fmt.sample_key(s, m).encode() for s, m in read_object_list(self.images)], dtype=bytes)
            except (ObjectListError, fmt.ShardFormatError) as error:
                raise SourceError(f"{self.images}: split file unreadable ({error})") from None
            order = np.argsort(keys, kind="stable")
            lookup = self.__dict__["_sorted"] = (keys[order], order.astype(np.int64) * self.views)
        return lookup

    def rows(self, key: str, views: list[int]) -> np.ndarray | None:
        """The latents of some views of an object, or None if the object is not in the files."""
        if not self.available:
            return None
        keys, starts = self._sorted_keys()
        wanted = key.encode()
        at = int(np.searchsorted(keys, wanted))
        if at == len(keys) or keys[at] != wanted:
            return None
        return np.array(self.array[[int(starts[at]) + v for v in views]], dtype=np.float64)

    def __getstate__(self) -> dict:
        state = {name: value for name, value in self.__dict__.items() if name != "_sorted"}
        if self.available:
            state["array"] = self.array.filename  # a spawned worker maps the file again rather than receiving a copy
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.available:
            self.array = np.load(state["array"], mmap_mode="r")


class ShardSource:
    """A finalized shard folder, read member by member through the offset indexes.

    Every member read is checked against its crc32 in the index, so a changed or truncated shard
    raises `SourceError` naming shard, object and member instead of giving wrong bytes. With
    `check_sizes`, shards whose size differs from `_info.json`'s are refused when the source opens.
    """

    def __init__(self, root: Path, split: str, check_sizes: bool = True) -> None:
        self.root = Path(root)
        if split not in fmt.SPLITS:
            raise SourceError(f"{self.root}: unknown split {split!r}; splits are {', '.join(fmt.SPLITS)}")
        try:  # `_info.json` held to SHA256SUMS, its render's status and the shard files
            described = read_description(self.root, (split,), check_sizes, read_indexes=False)
        except FinalizeError as error:
            raise SourceError(str(error)) from None
        info = described.info
        self.latent_names = tuple(info["latent_names"])
        self.views_per_object = info["views_per_object"]
        self.resolution = info["resolution"]
        self.passes = tuple(info.get("passes", ()))
        listed = info["splits"][split]["shards"]
        self.shards = [self.root / s["name"] for s in listed]
        try:  # the indexes are read, and held to _info.json, only when the member table is built (once per set)
            digest = table_digest(self.root / fmt.INFO_NAME, split, self.shards)
            self.table = cached_table(digest, lambda: self._build_table(info, split, check_sizes))
        except (FinalizeError, fmt.ShardFormatError, TableError) as error:
            raise SourceError(str(error)) from None
        self.objects = ShardObjects(self.root, self.table)
        self.class_ids = tuple(c["synset"] for c in sorted(info["classes"], key=lambda c: c["label"]))  # label -> class id
        self._files = _HandleCache()
        self._latents = SplitLatents(self.root, split, self.views_per_object, info.get("files", {}))

    def _build_table(self, info: dict, split: str, check_sizes: bool) -> MemberTable:
        """The split's member table from its shards' indexes, each held to `_info.json` first."""
        indexes = check_split(self.root, info, split, check_sizes)
        return build_table(self.shards, [indexes[shard.name] for shard in self.shards])

    def latent_rows(self, entry: ObjectEntry, views: list[int]) -> np.ndarray:
        """The latents of some views of an object (from the split files when present)."""
        rows = self._latents.rows(entry.key, views)
        return self.read_latents(entry)[views] if rows is None else rows

    def read_view(self, entry: ObjectEntry, view: int) -> bytes:
        """The JPEG bytes of one view (one read, checked)."""
        return self._read(entry, fmt.view_field(view))

    def read_pass(self, entry: ObjectEntry, view: int, name: str) -> bytes:
        """The stored bytes of one pass of one view (one read, checked)."""
        return self._read(entry, fmt.pass_field(view, name))

    def read_latents(self, entry: ObjectEntry) -> np.ndarray:
        """The object's (views, k) latents."""
        try:
            return fmt.decode_latents(self._read(entry, "latents.npy"), entry.key, str(entry.shard))
        except fmt.ShardFormatError as error:
            raise SourceError(str(error)) from None

    def span(self, entry: ObjectEntry, field: str) -> list[int] | None:
        """[offset, size, crc32] of one of an object's members in its shard, or None if it has no such member."""
        return self.table.span(entry.row, field)

    def _read(self, entry: ObjectEntry, field: str) -> bytes:
        span = self.span(entry, field)
        if span is None:
            raise SourceError(f"{entry.shard}: object {entry.key} has no member {entry.key}.{field}")
        try:
            return fmt.read_member(entry.shard, entry.key, field, span, self._files.get(entry.shard))
        except fmt.ShardFormatError as error:
            raise SourceError(str(error)) from None
        except OSError as error:
            raise SourceError(f"{entry.shard}: object {entry.key}: member {entry.key}.{field} cannot be read ({error})") from None


class LooseSource:
    """The original layout (`<synset>/<model_id>/image_<i>.jpg`, `latent_<i>.npy`).

    The split is the folder's SIE split files when it has them (the published release does), else the
    same stratified split `iebench pack` makes by default (val fraction 0.2, seed 0).
    """

    def __init__(self, root: Path, split: str, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        if split not in fmt.SPLITS:
            raise SourceError(f"{self.root}: unknown split {split!r}; splits are {', '.join(fmt.SPLITS)}")
        found = list_objects(self.root)
        self.views_per_object = max(len(o.views) for o in found)
        self.latent_names = schema(self.root, latent_count(found)).latent_names
        self.passes = passes_of(self.root, found)
        self.resolution = image_size(found)
        keys = [(o.synset, o.model_id) for o in found]
        has_sie = all((self.root / name).is_file() for name in SIE_SPLIT_FILES.values())
        split_of = assign_splits(keys, split_files=self.root if has_sie else None, val_fraction=val_fraction, seed=split_seed)
        labels = label_map([o.synset for o in found])
        self.class_ids = tuple(sorted(labels, key=labels.__getitem__))  # label -> class id
        self.objects = sorted(
            (
                ObjectEntry(fmt.sample_key(o.synset, o.model_id), labels[o.synset], folder=str(o.folder))
                for o in found
                if split_of.get((o.synset, o.model_id)) == split
            ),
            key=lambda e: e.key,
        )
        self._latents = SplitLatents(self.root, split, self.views_per_object)

    def latent_rows(self, entry: ObjectEntry, views: list[int]) -> np.ndarray:
        """The latents of some views of an object: from the split files when present, else two small files."""
        rows = self._latents.rows(entry.key, views)
        if rows is not None:
            return rows
        try:
            return np.stack([np.load(latent_path(entry.folder, v)) for v in views]).astype(np.float64)
        except (OSError, ValueError) as error:
            raise SourceError(f"object {entry.key} in {entry.folder}: latents unreadable ({error})") from None

    def read_view(self, entry: ObjectEntry, view: int) -> bytes:
        """The JPEG bytes of one view."""
        path = image_path(entry.folder, view)
        try:
            return path.read_bytes()
        except OSError as error:
            raise SourceError(f"object {entry.key}: cannot read {path} ({error})") from None

    def read_pass(self, entry: ObjectEntry, view: int, name: str) -> bytes:
        """The stored bytes of one pass of one view (`depth_<i>.png`, ...)."""
        path = Path(entry.folder) / PASSES[name].loose_name(view)
        try:
            return path.read_bytes()
        except OSError as error:
            raise SourceError(f"object {entry.key}: cannot read {path} ({error})") from None

    def read_latents(self, entry: ObjectEntry) -> np.ndarray:
        """The object's (views, k) latents."""
        try:
            return np.stack([np.load(latent_path(entry.folder, v)) for v in range(self.views_per_object)])
        except (OSError, ValueError) as error:
            raise SourceError(f"object {entry.key} in {entry.folder}: latents unreadable ({error})") from None


def check_on_error(on_error: str) -> None:
    """The bad-data policies a loader takes: raise (the default) or skip."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


def requested_passes(passes: str | tuple[str, ...], held: tuple[str, ...], root: Path | str) -> tuple[str, ...]:
    """The passes a loader was asked for, as a tuple (`"mask"` is one pass, not four letters), all held by `root`."""
    passes = (passes,) if isinstance(passes, str) else tuple(passes)
    missing = [name for name in passes if name not in held]
    if missing:
        raise SourceError(
            f"{root} has no {', '.join(missing)} pass (it holds {', '.join(held) or 'none'}): "
            f"render it with `iebench render ... --passes {','.join(passes)}`"
        )
    return passes


def open_source(root: Path, split: str, check_sizes: bool = True) -> ShardSource | LooseSource:
    """The source for a folder: shards when it has `_info.json`, else the original layout.

    A folder of shards without `_info.json` is not finalized: the error says to run `iebench finalize`.
    """
    root = Path(root)
    if (root / fmt.INFO_NAME).is_file():
        return ShardSource(root, split, check_sizes)
    if root.is_dir() and (any(root.glob("*.tar")) or any(root.glob(PART_GLOB))):
        raise SourceError(
            f"{root} holds shards but no {fmt.INFO_NAME}: the set is not finalized. Once every pack or render "
            f"job writing to it has finished, run `iebench finalize {root}`"
        )
    if not root.is_dir():
        raise SourceError(f"{root} does not exist or is not a folder")
    try:
        return LooseSource(root, split)
    except (LooseLayoutError, SplitError, ObjectListError) as error:
        raise SourceError(str(error)) from None
