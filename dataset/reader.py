"""Random access to a finalized shard set through its offset indexes (one read per member)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from iebench.classes import class_name, collection_class_names
from iebench.contact_sheet import SheetRow, contact_sheet, spread_over_classes
from iebench.dataset import format as fmt
from iebench.dataset.description import read_description
from iebench.passes import PASSES, preview_image


@dataclass(frozen=True)
class SampleRef:
    """Where one object's members lie: its shard and the index entry, and the object's ids."""

    shard: Path
    key: str
    label: int
    members: dict[str, list[int]]
    synset: str
    model_id: str

    def read(self, field: str, handle: BinaryIO | None = None) -> bytes:
        """One member's bytes, checked against the index (`fmt.MemberError` names shard, object and member)."""
        return fmt.read_member(self.shard, self.key, field, self.members[field], handle)

    def latents(self, handle: BinaryIO | None = None) -> np.ndarray:
        """The object's (views, k) latents."""
        return fmt.decode_latents(self.read("latents.npy", handle), self.key, self.shard.name)

    def sample(self, handle: BinaryIO | None = None) -> fmt.ObjectSample:
        """The whole object read back as a sample `fmt.write_shard` takes: views, latents, passes and all."""
        meta = json.loads(self.read("json", handle))
        views, names = range(meta["views"]), meta.get("passes", [])
        return fmt.ObjectSample(
            meta["synset"],
            meta["model_id"],
            meta["label"],
            meta["class_name"],
            tuple(self.read(fmt.view_field(v), handle) for v in views),
            self.latents(handle),
            tuple(meta["latent_names"]),
            meta["preset"],
            tuple({n: self.read(fmt.pass_field(v, n), handle) for n in names} for v in views) if names else (),
        )


class ShardSet:
    """A finalized shard folder: `_info.json` plus the shards' offset indexes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        described = read_description(self.root)
        self.info, self._indexes = described.info, described.indexes

    @property
    def views_per_object(self) -> int:
        """Views stored per object."""
        return self.info["views_per_object"]

    @property
    def latent_names(self) -> tuple[str, ...]:
        """Names of the latent columns."""
        return tuple(self.info["latent_names"])

    def shard_paths(self, split: str) -> list[Path]:
        """The shards of a split, in name order."""
        if split not in fmt.SPLITS:
            raise ValueError(f"unknown split {split!r}; splits are {', '.join(fmt.SPLITS)}")
        return [self.root / s["name"] for s in self.info["splits"][split]["shards"]]

    def samples(self, split: str) -> Iterator[SampleRef]:
        """Every object of a split, shard by shard, in stored order."""
        for path in self.shard_paths(split):
            for entry in self._indexes[path.name]["samples"]:  # read (and checked) when the set opened
                yield SampleRef(path, entry["key"], entry["label"], entry["members"], *fmt.entry_ids(path, entry))


def shard_contact_sheet(root: Path, split: str = "train", max_objects: int = 12, max_views: int = 8, tile: int = 128) -> Image.Image:
    """A contact sheet of a shard set: rows spread round-robin over the classes."""
    shards = ShardSet(root)
    chosen = spread_over_classes(shards.samples(split), lambda ref: ref.synset, max_objects)
    rows = []
    passes = [name for name in shards.info.get("passes", ()) if PASSES[name].preview is not None]
    names = collection_class_names(shards.info.get("source"))
    for ref in chosen:
        latents = ref.latents()
        views = [(Image.open(io.BytesIO(ref.read(fmt.view_field(v)))), latents[v]) for v in range(min(max_views, len(latents)))]
        rows.append(SheetRow(f"{class_name(ref.synset, names)} ({ref.label})\n{ref.synset}\n{ref.model_id[:10]}\n{split}", views))
        for name in passes:  # a row per pass under the object's images
            rows.append(SheetRow(name, [(preview_image(name, ref.read(fmt.pass_field(v, name))), None) for v in range(len(views))]))
    if not rows:
        raise ValueError(f"split {split!r} of {root} has no objects")
    return contact_sheet(rows, shards.latent_names, tile)
