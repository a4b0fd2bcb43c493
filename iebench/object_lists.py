"""Object lists shared by the renderer and the shards: SIE's `.npy` lists and plain text lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class ObjectListError(ValueError):
    """An object list that cannot be read; the message names the file and the entry."""


def parse_entry(entry: str, source: Path) -> tuple[str, str]:
    """(synset, model_id) from '/<synset>/<model_id>/' or '<synset>/<model_id>'."""
    parts = [p for p in str(entry).strip().replace("\\", "/").split("/") if p]
    if len(parts) < 2:
        raise ObjectListError(f"{source}: entry {entry!r} is not of the form /<synset>/<model_id>/")
    return parts[-2], parts[-1]


def read_object_list(path: Path) -> list[tuple[str, str]]:
    """(synset, model_id) pairs from an SIE list (`.npy` of '/<synset>/<model_id>/') or a text file."""
    path = Path(path)
    if not path.is_file():
        raise ObjectListError(f"object list {path} does not exist")
    if path.suffix == ".npy":
        try:
            entries = [str(e) for e in np.ravel(np.load(path, allow_pickle=False))]
        except ValueError as error:
            raise ObjectListError(f"{path}: not an array of strings ({error})") from None
    else:
        entries = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [parse_entry(e, path) for e in entries]


def object_folders(root: Path) -> list[tuple[str, str, Path]]:
    """(synset, model_id, folder) of every `<root>/<synset>/<model_id>/`, sorted; names starting with '.' or '_' are not classes."""
    found = []
    for synset_dir in sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        found += [(synset_dir.name, folder.name, folder) for folder in sorted(p for p in synset_dir.iterdir() if p.is_dir())]
    return found


def sie_entry(synset: str, model_id: str) -> str:
    """The SIE split files' spelling of an object: '/<synset>/<model_id>/'."""
    return f"/{synset}/{model_id}/"
