"""`iebench verify`: check a finalized shard set against `_info.json`, and report every problem found."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from iebench.dataset import format as fmt
from iebench.dataset.finalize import load_info
from PIL import Image
from tqdm import tqdm

from iebench.presets import preset_from_json


def _check_sample(key: str, fields: dict[str, bytes], info: dict, preset, split: str) -> Iterator[str]:
    views, resolution, k = info["views_per_object"], info["resolution"], len(info["latent_names"])
    expected = {fmt.view_field(v) for v in range(views)} | {"cls", "json", "latents.npy"}
    if set(fields) != expected:
        missing, extra = sorted(expected - set(fields)), sorted(set(fields) - expected)
        yield f"{key}: fields differ from the format (missing {missing[:5]}, unexpected {extra[:5]})"
    for view in range(views):
        data = fields.get(fmt.view_field(view))
        if data is None:
            continue
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                if image.size != (resolution, resolution) or image.format != "JPEG":
                    yield f"{key}: view {view} is a {image.format} of {image.size}, expected a {resolution}x{resolution} JPEG"
        except (OSError, SyntaxError) as error:
            yield f"{key}: view {view} does not decode ({error})"
    if "latents.npy" in fields:
        try:
            latents = np.load(io.BytesIO(fields["latents.npy"]), allow_pickle=False)
        except ValueError as error:
            yield f"{key}: latents.npy is not a numpy array ({error})"
        else:
            if latents.shape != (views, k) or latents.dtype != np.float64:
                yield f"{key}: latents are {latents.dtype} {latents.shape}, expected float64 ({views}, {k})"
            else:
                outside = np.nonzero(~preset.contains(latents))[0]
                if len(outside):
                    yield f"{key}: views {outside[:5].tolist()} have latents outside preset {preset.name!r}'s ranges"
    synset = fmt.split_key(key)[0]
    label = next((c["label"] for c in info["classes"] if c["synset"] == synset), None)
    if fields.get("cls", b"").decode(errors="replace") != str(label):
        yield f"{key}: cls is {fields.get('cls', b'')!r}, expected label {label}"
    if "json" in fields:
        meta = json.loads(fields["json"])
        if meta.get("synset") != synset or meta.get("views") != views:
            yield f"{key}: json names {meta.get('synset')}/{meta.get('model_id')} with {meta.get('views')} views"


def verify(out: Path, progress: bool = True) -> list[str]:
    """Every problem of the shard set in OUT (an empty list means it verified)."""
    out = Path(out)
    info = load_info(out)
    preset = preset_from_json(info["preset"])
    problems: list[str] = []
    owner: dict[str, str] = {}
    shards = [(split, s) for split in fmt.SPLITS for s in info["splits"][split]["shards"]]
    for split, shard in tqdm(shards, desc="verify", unit="shard", disable=not progress):
        path = out / shard["name"]
        if not path.is_file():
            problems.append(f"{shard['name']}: missing")
            continue
        if path.stat().st_size != shard["bytes"]:
            problems.append(f"{shard['name']}: {path.stat().st_size} bytes, _info.json says {shard['bytes']}")
        if fmt.sha256_file(path) != shard["sha256"]:
            problems.append(f"{shard['name']}: sha256 differs from _info.json (changed or corrupt)")
        samples: dict[str, dict[str, bytes]] = {}
        try:
            with tarfile.open(path) as tar:
                for member in tar:
                    key, _, field = member.name.partition(".")
                    samples.setdefault(key, {})[field] = tar.extractfile(member).read()
        except (tarfile.TarError, OSError) as error:
            problems.append(f"{shard['name']}: not a readable tar ({error})")
            continue
        if list(samples) != shard["keys"]:
            problems.append(f"{shard['name']}: holds {len(samples)} objects, _info.json lists {len(shard['keys'])} (or in another order)")
        for key, fields in samples.items():
            if key in owner:
                problems.append(f"{key}: in {owner[key]} and again in {shard['name']} ({split})")
            owner[key] = f"{shard['name']} ({split})"
            problems.extend(f"{shard['name']}: {p}" for p in _check_sample(key, fields, info, preset, split))
        problems.extend(_check_index(path, samples))
    return problems


def _check_index(path: Path, samples: dict[str, dict[str, bytes]]) -> list[str]:
    """The offset index must point at each member's exact bytes."""
    if not fmt.index_path(path).is_file():
        return [f"{path.name}: offset index missing"]
    index = fmt.read_index(path)
    problems = []
    with open(path, "rb") as handle:
        for entry in index["samples"]:
            fields = samples.get(entry["key"], {})
            for field, span in entry["members"].items():
                if fmt.read_member(path, span, handle) != fields.get(field):
                    problems.append(f"{path.name}: index entry {entry['key']}.{field} does not point at its bytes")
                    break
    return problems
