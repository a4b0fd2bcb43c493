"""`iebench finalize`: what needs the whole shard set, written once after every writer is done.

Reads every writer's plan (`_part*.json`: one pack run, or each job of a render array), checks that
each planned shard is complete, then writes the SIE split files and the dataset card `README.md`,
then `_info.json` (with the sha256 of every file of the set), whose presence says the set is whole,
and last `SHA256SUMS`, which lists every file but the writers' plans and manifests, `_info.json` included. Running it again rewrites all of
these from the shards (the way to repair edited split files).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

import iebench
from iebench.classes import class_name, collection_class_names
from iebench.dataset import format as fmt
from iebench.dataset.card import render_card
from iebench.dataset.parts import PART_GLOB, SAME_IN_EVERY_PART
from iebench.files import remove_temporary, sha256_file, write_atomic
from iebench.object_lists import sie_entry

_SAME_IN_EVERY_RENDER = ("seed", "render", "latents_source")  # of the jobs of a render array, beside the part's own keys
SUMS_NAME = "SHA256SUMS"
CARD_NAME = "README.md"


def split_file_names(split: str) -> tuple[str, str, str]:
    """The original SIE split files of a split: objects, labels, latents."""
    return f"{split}_images.npy", f"{split}_labels.npy", f"all_latents_{split}.npy"


def wids_name(split: str) -> str:
    """The shard list of a split in the format `wids` (indexed WebDataset) reads."""
    return f"{split}.wids.json"


def wids_descriptor(name: str, split: str, shards: list[dict]) -> dict:
    """wids' dataset descriptor of a split: shard URLs relative to the folder, with their sample counts and sizes."""
    return {
        "__kind__": "wids-shard-index-v1",
        "wids_version": 1,
        "name": f"{name}-{split}",
        "shardlist": [{"url": s["name"], "nsamples": s["objects"], "filesize": s["bytes"]} for s in shards],
    }


SET_FILES = (fmt.INFO_NAME, SUMS_NAME, CARD_NAME, *(name for split in fmt.SPLITS for name in (*split_file_names(split), wids_name(split))))


class FinalizeError(RuntimeError):
    """A shard set that is not whole or not consistent; the message says which shard or part."""


def load_parts(out: Path) -> list[dict]:
    """Every writer's plan in OUT, checked to describe one dataset."""
    paths = sorted(Path(out).glob(PART_GLOB))
    if not paths:
        raise FinalizeError(f"{out} has no {PART_GLOB}: nothing was packed or rendered to shards there")
    parts = []
    for path in paths:
        try:
            parts.append(json.loads(path.read_text()))
        except ValueError as error:
            raise FinalizeError(f"{path} is not valid JSON ({error}): re-run the pack or render job that wrote it") from None
    for path, part in zip(paths[1:], parts[1:]):
        differing = [k for k in SAME_IN_EVERY_PART if part.get(k) != parts[0].get(k)]
        if differing:
            raise FinalizeError(f"{path.name} and {paths[0].name} differ in {', '.join(differing)}: not one dataset")
    rendered = [(path, part["render_manifest"]) for path, part in zip(paths, parts) if part.get("render_manifest")]
    for path, manifest in rendered[1:]:
        differing = [k for k in _SAME_IN_EVERY_RENDER if manifest.get(k) != rendered[0][1].get(k)]
        if differing:
            raise FinalizeError(f"{path.name} and {rendered[0][0].name} were rendered with other {', '.join(differing)}: not one dataset")
    jobs = parts[0].get("plan", {}).get("num_jobs", 1)
    present = {part.get("plan", {}).get("job_index", 0) for part in parts}
    missing = sorted(set(range(jobs)) - present)
    if missing:
        raise FinalizeError(f"jobs {missing[:10]} of the {jobs}-job array have not started writing to {out}: run them first")
    return parts


def _read_objects(shard: Path, entries: list[dict]) -> dict[str, tuple[str, str, np.ndarray]]:
    """key -> (synset, model_id, latents) of a shard's objects (ids from the index or the samples' metadata)."""
    objects = {}
    with open(shard, "rb") as handle:
        for e in entries:
            data = fmt.read_member(shard, e["key"], "latents.npy", e["members"]["latents.npy"], handle)
            objects[e["key"]] = (*fmt.entry_ids(shard, e, handle), fmt.decode_latents(data, e["key"], shard.name))
    return objects


def sie_arrays(objects: dict[str, tuple[str, str, np.ndarray]], labels: dict[str, int]) -> dict[str, np.ndarray]:
    """The original SIE split files' arrays of one split (by kind: images, labels, latents), objects in key order."""
    order = sorted(objects)
    return {
        "images": np.array([sie_entry(objects[k][0], objects[k][1]) for k in order]),
        "labels": np.array([labels[objects[k][0]] for k in order], dtype=np.int64),
        "latents": np.concatenate([objects[k][2] for k in order]) if order else np.zeros((0, 0)),
    }


def write_sie_files(out: Path, split: str, objects: dict[str, tuple[str, str, np.ndarray]], labels: dict[str, int]) -> None:
    """The original SIE split files of one split: objects, labels, and all latents object-major."""
    arrays = sie_arrays(objects, labels)
    for name, kind in zip(split_file_names(split), ("images", "labels", "latents")):
        buffer = io.BytesIO()
        np.save(buffer, arrays[kind], allow_pickle=False)
        write_atomic(out / name, buffer.getvalue())


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def _collect(out: Path, parts: list[dict]) -> tuple[dict, dict, dict]:
    """Every planned shard checked (written, holding its plan's objects, each object once): per split the counts and
    shards, per split the objects (ids and latents), and the indexes' checksums."""
    views = parts[0]["views_per_object"]
    seen: dict[str, str] = {}
    splits = {split: {"objects": 0, "views": 0, "bytes": 0, "shards": []} for split in fmt.SPLITS}
    objects: dict[str, dict[str, tuple[str, str, np.ndarray]]] = {split: {} for split in fmt.SPLITS}
    index_sums: dict[str, str] = {}
    for part, shard in ((p, s) for p in parts for s in p["shards"]):
        path = out / shard["name"]
        if not fmt.shard_complete(path):
            raise FinalizeError(unwritten_shard(path, part))
        index = fmt.read_index(path)
        index_sums[fmt.index_path(path).name] = sha256_file(fmt.index_path(path))
        keys = [e["key"] for e in index["samples"]]
        if keys != shard["keys"]:
            raise FinalizeError(f"shard {shard['name']} does not hold the objects its plan lists")
        for key in keys:
            if key in seen:
                raise FinalizeError(f"object {key} is in both {seen[key]} and {shard['name']}")
            seen[key] = shard["name"]
        split = splits[shard["split"]]
        split["objects"] += len(keys)
        split["views"] += len(keys) * views
        split["bytes"] += index["bytes"]
        split["shards"].append(
            {"name": shard["name"], "objects": len(keys), "bytes": index["bytes"], "sha256": index["sha256"], "keys": keys}
        )
        objects[shard["split"]].update(_read_objects(path, index["samples"]))
    for split in splits.values():
        split["shards"].sort(key=lambda s: s["name"])
    return splits, objects, index_sums


def unwritten_shard(path: Path, part: dict) -> str:
    """Why a planned shard is not in place, and what writes it: the pack run, or the render job that plans it."""
    from iebench.dataset.description import shard_file_problem

    pack = part.get("source", {}).get("kind") == "loose"
    writer = "the same `iebench pack` command again (it resumes)" if pack else "the render job that plans it again"
    problem = shard_file_problem(path) if path.exists() or path.is_symlink() else None
    if problem is not None:
        return f"{problem}, where the plan has a shard: remove it, then run {writer} to write the shard"
    if path.is_file():
        return f"{fmt.index_path(path)}: missing (it is written before its shard, so it was removed): run {writer} to write both"
    return f"shard {path.name} is not written yet: run {writer} to finish it"


def _describe(parts: list[dict], splits: dict, objects: dict) -> dict:
    """`_info.json` but for its `files`: the set's schema and provenance from the first plan, classes, splits."""
    first = parts[0]
    counts = {synset: {s: 0 for s in fmt.SPLITS} for synset in first["labels"]}
    for split in fmt.SPLITS:
        for synset, _, _ in objects[split].values():
            counts[synset][split] += 1
    return {
        "format": fmt.FORMAT,
        "generator": f"iebench {iebench.__version__}",
        "name": first["name"],
        "views_per_object": first["views_per_object"],
        "resolution": first["resolution"],
        "latent_names": first["latent_names"],
        **({"passes": first["passes"]} if first.get("passes") else {}),  # absent from RGB-only sets, as before
        "preset": first["preset"],
        "render_manifest": first["render_manifest"],
        "source": first["source"],
        "split": first["split"],
        "shard_seed": first["shard_seed"],
        "hf_split_names": fmt.HF_SPLIT_NAMES,
        "classes": [
            {"synset": s, "name": class_name(s, collection_class_names(first["source"])), "label": label, **counts[s]}
            for s, label in sorted(first["labels"].items(), key=lambda x: x[1])
        ],
        "skipped": sorted({k for p in parts for k in p.get("skipped", [])}),
        "splits": splits,
    }


def _write_set_files(out: Path, info: dict, objects: dict, labels: dict[str, int]) -> dict[str, str]:
    """The split files, the card and the wids descriptors; returns the sha256 of each."""
    for split in fmt.SPLITS:
        write_sie_files(out, split, objects[split], labels)
    write_atomic(out / CARD_NAME, render_card(info).encode())
    listed = [split for split in fmt.SPLITS if info["splits"][split]["shards"]]  # wids cannot open an empty list
    for split in listed:
        descriptor = wids_descriptor(info["name"], split, info["splits"][split]["shards"])
        write_atomic(out / wids_name(split), (json.dumps(descriptor, indent=1) + "\n").encode())
    names = [wids_name(split) for split in listed] + [name for split in fmt.SPLITS for name in split_file_names(split)] + [CARD_NAME]
    return {name: sha256_file(out / name) for name in names}


def finalize(out: Path) -> dict:
    """Check that the shard set is whole, then write checksums, split files, the card and `_info.json`."""
    from iebench.dataset.description import check_parts_finished  # it reads what this module writes

    out = Path(out)
    parts = load_parts(out)
    check_parts_finished(out, parts)
    remove_temporary(out, SET_FILES)
    splits, objects, index_sums = _collect(out, parts)
    info = _describe(parts, splits, objects)
    files = {s["name"]: s["sha256"] for split in fmt.SPLITS for s in splits[split]["shards"]} | index_sums
    files |= _write_set_files(out, info, objects, parts[0]["labels"])
    info["files"] = dict(sorted(files.items()))
    info_bytes = (json.dumps(info, indent=1) + "\n").encode()
    write_atomic(out / fmt.INFO_NAME, info_bytes)
    sums = info["files"] | {fmt.INFO_NAME: sha256_bytes(info_bytes)}
    write_atomic(out / SUMS_NAME, "".join(f"{sha}  {name}\n" for name, sha in sorted(sums.items())).encode())
    return info


def load_info(out: Path) -> dict:
    """`_info.json` of a finalized shard set, or a clear error."""
    path = Path(out) / fmt.INFO_NAME
    if not path.is_file():
        if not any(Path(out).glob(PART_GLOB)) and not any(Path(out).glob("*.tar")):  # no writer has started a shard set here
            raise FinalizeError(f"{out} is not a shard set (no {fmt.INFO_NAME}, no shards): `iebench pack` makes one from renders")
        raise FinalizeError(
            f"{out} has no {fmt.INFO_NAME}: not a finalized shard set (once every pack or render job writing to it has "
            f"finished, run `iebench finalize {out}`)"
        )
    try:
        info = json.loads(path.read_text())
    except ValueError as error:
        raise FinalizeError(f"{path} is not valid JSON ({error}): run `iebench finalize {out}` to write it again") from None
    if not isinstance(info, dict) or info.get("format") not in fmt.READABLE_FORMATS:
        raise FinalizeError(
            f"{path}: not a shard set's info of format {', '.join(fmt.READABLE_FORMATS)} (run `iebench finalize {out}` to write it again)"
        )
    return info
