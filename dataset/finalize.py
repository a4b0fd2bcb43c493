"""`iebench finalize`: what needs the whole shard set, written once after every writer is done.

Reads every writer's plan (`_part*.json`: one pack run, or each job of a render array), checks that
each planned shard is complete, then writes `SHA256SUMS`, the SIE split files, the dataset card
`README.md`, and last `_info.json`, whose presence says the set is whole.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from iebench.dataset import format as fmt
from iebench.dataset.card import render_card

import iebench
from iebench.classes import class_name
from iebench.files import write_atomic, write_json_atomic
from iebench.object_lists import sie_entry

_SAME_IN_EVERY_PART = ("name", "views_per_object", "resolution", "latent_names", "preset", "labels", "split", "shard_seed")


class FinalizeError(RuntimeError):
    """A shard set that is not whole or not consistent; the message says which shard or part."""


def load_parts(out: Path) -> list[dict]:
    """Every writer's plan in OUT, checked to describe one dataset."""
    paths = sorted(Path(out).glob("_part*.json"))
    if not paths:
        raise FinalizeError(f"{out} has no _part*.json: nothing was packed or rendered to shards there")
    parts = [json.loads(p.read_text()) for p in paths]
    for path, part in zip(paths[1:], parts[1:]):
        differing = [k for k in _SAME_IN_EVERY_PART if part.get(k) != parts[0].get(k)]
        if differing:
            raise FinalizeError(f"{path.name} and {paths[0].name} differ in {', '.join(differing)}: not one dataset")
    jobs = parts[0].get("plan", {}).get("num_jobs", 1)
    present = {part.get("plan", {}).get("job_index", 0) for part in parts}
    missing = sorted(set(range(jobs)) - present)
    if missing:
        raise FinalizeError(f"jobs {missing[:10]} of the {jobs}-job array have not started writing to {out}: run them first")
    return parts


def _read_latents(shard: Path, entries: list[dict]) -> dict[str, np.ndarray]:
    with open(shard, "rb") as handle:
        return {e["key"]: np.load(io.BytesIO(fmt.read_member(shard, e["members"]["latents.npy"], handle))) for e in entries}


def write_sie_files(out: Path, split: str, keys: list[str], labels: dict[str, int], latents: dict[str, np.ndarray]) -> None:
    """The original SIE split files of one split: objects, labels, and all latents object-major."""
    order = sorted(keys)
    objects = np.array([sie_entry(*fmt.split_key(k)) for k in order])
    files = {
        f"{split}_images.npy": objects,
        f"{split}_labels.npy": np.array([labels[fmt.split_key(k)[0]] for k in order], dtype=np.int64),
        f"all_latents_{split}.npy": np.concatenate([latents[k] for k in order]) if order else np.zeros((0, 0)),
    }
    for name, array in files.items():
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        write_atomic(out / name, buffer.getvalue())


def finalize(out: Path) -> dict:
    """Check that the shard set is whole, then write checksums, split files, the card and `_info.json`."""
    out = Path(out)
    parts = load_parts(out)
    first = parts[0]
    seen: dict[str, str] = {}
    splits = {split: {"objects": 0, "views": 0, "bytes": 0, "shards": []} for split in fmt.SPLITS}
    latents: dict[str, dict[str, np.ndarray]] = {split: {} for split in fmt.SPLITS}
    for part in parts:
        for shard in part["shards"]:
            path = out / shard["name"]
            if not fmt.shard_complete(path):
                raise FinalizeError(f"shard {shard['name']} is not written yet: finish (re-run) the job that plans it")
            index = fmt.read_index(path)
            keys = [e["key"] for e in index["samples"]]
            if keys != shard["keys"]:
                raise FinalizeError(f"shard {shard['name']} does not hold the objects its plan lists")
            for key in keys:
                if key in seen:
                    raise FinalizeError(f"object {key} is in both {seen[key]} and {shard['name']}")
                seen[key] = shard["name"]
            split = splits[shard["split"]]
            split["objects"] += len(keys)
            split["views"] += len(keys) * first["views_per_object"]
            split["bytes"] += index["bytes"]
            split["shards"].append({"name": shard["name"], "objects": len(keys), "bytes": index["bytes"],
                                    "sha256": index["sha256"], "keys": keys})
            latents[shard["split"]].update(_read_latents(path, index["samples"]))
    for split in splits.values():
        split["shards"].sort(key=lambda s: s["name"])
    counts = {synset: {s: 0 for s in fmt.SPLITS} for synset in first["labels"]}
    for split in fmt.SPLITS:
        for key in latents[split]:
            counts[fmt.split_key(key)[0]][split] += 1
    info = {
        "format": fmt.FORMAT,
        "generator": f"iebench {iebench.__version__}",
        "name": first["name"],
        "views_per_object": first["views_per_object"],
        "resolution": first["resolution"],
        "latent_names": first["latent_names"],
        "preset": first["preset"],
        "render_manifest": first["render_manifest"],
        "source": first["source"],
        "split": first["split"],
        "shard_seed": first["shard_seed"],
        "hf_split_names": fmt.HF_SPLIT_NAMES,
        "classes": [{"synset": s, "name": class_name(s), "label": label, **counts[s]} for s, label in sorted(first["labels"].items(), key=lambda x: x[1])],
        "skipped": sorted({k for p in parts for k in p.get("skipped", [])}),
        "splits": splits,
    }
    for split in fmt.SPLITS:
        write_sie_files(out, split, list(latents[split]), first["labels"], latents[split])
    sums = "".join(f"{s['sha256']}  {s['name']}\n" for split in fmt.SPLITS for s in splits[split]["shards"])
    write_atomic(out / "SHA256SUMS", sums.encode())
    write_atomic(out / "README.md", render_card(info).encode())
    write_json_atomic(out / fmt.INFO_NAME, info)
    return info


def load_info(out: Path) -> dict:
    """`_info.json` of a finalized shard set, or a clear error."""
    path = Path(out) / fmt.INFO_NAME
    if not path.is_file():
        raise FinalizeError(f"{out} has no {fmt.INFO_NAME}: not a finalized shard set (run `iebench finalize {out}`)")
    return json.loads(path.read_text())
