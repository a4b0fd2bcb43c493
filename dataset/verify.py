"""`iebench verify`: check a finalized shard set against `_info.json`, and report every problem found.

Each problem names the file, and within a shard the object and member: a shard whose sha256 differs
also gets the members whose bytes differ from their crc32 in the index. The split arrays are
compared with the latents, objects and labels in the shards, every file is checked against its
recorded sha256 and `SHA256SUMS`, and files that are no part of the set are reported.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from iebench.cores import available_cores
from iebench.dataset import format as fmt
from iebench.dataset import tarstream
from iebench.dataset.description import parse_sums, unfinished_render
from iebench.dataset.finalize import CARD_NAME, SET_FILES, SUMS_NAME, load_info, sie_arrays, split_file_names
from iebench.dataset.parts import PART_GLOB
from iebench.files import TMP_MARK, sha256_file
from iebench.jpeg import CorruptJPEGError, jpeg_size
from iebench.passes import check_passes
from iebench.presets import preset_from_json

# What else a shard folder may hold: the writers' plans and render records, and `iebench show`'s default sheet.
WRITER_RECORDS = (PART_GLOB, "_manifest*.json", "_failures*.jsonl", "contact_sheet.png")
PARALLEL_FROM_BYTES = 64 * 2**20  # a smaller set is checked in this process: starting workers would cost more than they save


def _check_sample(key: str, present: set[str], fields: dict[str, bytes], info: dict, preset, ids: tuple[str, str]) -> Iterator[str]:
    """Problems of one sample: `present` are its members in the index, `fields` those read intact, `ids` its index's."""
    views = info["views_per_object"]
    passes = info.get("passes", ())
    expected = {fmt.view_field(v) for v in range(views)} | {"cls", "json", "latents.npy"}
    expected |= {fmt.pass_field(v, name) for v in range(views) for name in passes}
    if present != expected:
        missing, extra = sorted(expected - present), sorted(present - expected)
        yield f"object {key}: members differ from the format (missing {missing[:5]}, unexpected {extra[:5]})"
    yield from _check_views(key, fields, views, info["resolution"])
    yield from _check_passes(key, fields, views, passes, info["resolution"])
    if "latents.npy" in fields:
        yield from _check_latents(key, fields["latents.npy"], views, len(info["latent_names"]), preset)
    synset = ids[0]
    if "json" in fields:
        synset = yield from _check_metadata(key, fields["json"], ids, views)
    label = next((c["label"] for c in info["classes"] if c["synset"] == synset), None)
    if "cls" in fields and fields["cls"].decode(errors="replace") != str(label):
        yield f"object {key}: member {key}.cls is {fields['cls']!r}, expected label {label} of class {synset}"


def _check_views(key: str, fields: dict[str, bytes], views: int, resolution: int) -> Iterator[str]:
    """Every view read intact decodes cleanly at the set's resolution."""
    for view in range(views):
        data = fields.get(fmt.view_field(view))
        if data is None:
            continue
        try:
            size = jpeg_size(data)
        except CorruptJPEGError as error:
            yield f"object {key}: member {key}.{fmt.view_field(view)}: view {view} does not decode cleanly ({error})"
            continue
        if size != (resolution, resolution):
            yield f"object {key}: member {key}.{fmt.view_field(view)}: view {view} is a {size[0]}x{size[1]} JPEG, expected a {resolution}x{resolution} JPEG"


def _check_passes(key: str, fields: dict[str, bytes], views: int, passes: tuple[str, ...], resolution: int) -> Iterator[str]:
    """Every pass read intact decodes, at the set's size, with the values its table allows (depth positive on the mask)."""
    for view in range(views if passes else 0):
        present = {name: fields[fmt.pass_field(view, name)] for name in passes if fmt.pass_field(view, name) in fields}
        for name, problem in check_passes(present, resolution):
            yield f"object {key}: member {key}.{fmt.pass_field(view, name)}: view {view}: {problem}"


def _check_latents(key: str, data: bytes, views: int, k: int, preset) -> Iterator[str]:
    """The latents are a float64 (views, k) array inside the preset's ranges."""
    try:
        latents = fmt.decode_latents(data, key)
    except fmt.ShardFormatError as error:
        yield str(error)
        return
    if latents.shape != (views, k) or latents.dtype != np.float64:
        yield f"object {key}: member {key}.latents.npy holds {latents.dtype} {latents.shape}, expected float64 ({views}, {k})"
        return
    outside = np.nonzero(~preset.contains(latents))[0]
    if len(outside):
        yield f"object {key}: views {outside[:5].tolist()} have latents outside preset {preset.name!r}'s ranges"


def _check_metadata(key: str, data: bytes, ids: tuple[str, str], views: int) -> Generator[str, None, str]:
    """The metadata names the index's object and the set's view count; returns the synset it names (the index's if unreadable)."""
    try:
        meta = json.loads(data)
        meta_ids = (meta["synset"], meta["model_id"])
    except (ValueError, KeyError, TypeError) as error:
        yield f"object {key}: member {key}.json is not the sample's metadata ({error})"
        return ids[0]
    if meta_ids != ids:
        yield f"object {key}: member {key}.json names {meta_ids[0]}/{meta_ids[1]}, the index {ids[0]}/{ids[1]}"
    elif fmt.sample_key(*meta_ids) != key:
        yield f"object {key}: member {key}.json names {meta_ids[0]}/{meta_ids[1]}, whose key is {fmt.sample_key(*meta_ids)}"
    if meta.get("views") != views:
        yield f"object {key}: member {key}.json says {meta.get('views')} views, the set {views}"
    return meta_ids[0]


def _tar_members(path: Path) -> list[tuple[str, int, int]]:
    """(name, data offset, size) of every member, from the tar's own headers (parsed directly: tarfile's parser
    costs several times more a member)."""
    found = []
    with open(path, "rb") as handle:
        for name, size in tarstream.members(handle):
            found.append((name, handle.tell(), size))
            tarstream.skip(handle, -(-size // tarstream.BLOCK) * tarstream.BLOCK)
    return found


@dataclass
class ShardReport:
    """What checking one shard found: problems, its tar's sha256, and its objects (key -> ids and latents, or None
    where they could not be read intact)."""

    problems: list[str] = dataclass_field(default_factory=list)
    sha256: str | None = None
    objects: dict[str, tuple[str, str, np.ndarray] | None] = dataclass_field(default_factory=dict)
    keys: list[str] = dataclass_field(default_factory=list)  # as its index lists them (an object listed twice, twice)


def _shard_file_problems(name: str, path: Path, shard: dict) -> list[str]:
    """A listed shard that is missing, not a file, or of another size than `_info.json` records."""
    if not path.exists():
        return [f"{name}: missing"]
    if not path.is_file():
        return [f"{name}: not a file (listed in _info.json as a shard): restore the shard or re-pack the set"]
    if path.stat().st_size != shard["bytes"]:
        return [f"{name}: {path.stat().st_size} bytes, _info.json says {shard['bytes']} (truncated or changed)"]
    return []


def _check_shard_quick(out: Path, shard: dict) -> ShardReport:
    """Size and sha256 of one shard against `_info.json` (what `verify --quick` checks)."""
    name, path = shard["name"], out / shard["name"]
    report = ShardReport(_shard_file_problems(name, path, shard))
    if path.is_file():
        report.sha256 = sha256_file(path)
        if report.sha256 != shard["sha256"]:
            report.problems.append(
                f"{name}: sha256 differs from _info.json (changed or corrupt; `iebench verify` without --quick says where)"
            )
    return report


def _check_shard(out: Path, split: str, shard: dict, info: dict) -> ShardReport:
    """Everything about one shard: its file, sha256, index, every member against its crc32, every sample's content."""
    name, path = shard["name"], out / shard["name"]
    report = ShardReport(_shard_file_problems(name, path, shard))
    report.objects = {key: None for key in shard["keys"]}  # until read intact
    if not path.is_file():
        return report
    problems = report.problems
    report.sha256 = sha256_file(path)
    changed = report.sha256 != shard["sha256"]
    try:
        index = fmt.read_index(path)
    except fmt.ShardFormatError as error:
        report.problems += [f"{name}: sha256 differs from _info.json (changed or corrupt)"] * changed + [str(error)]
        return report
    keys = [e["key"] for e in index["samples"]]
    if keys != shard["keys"]:
        problems.append(f"{name}: its index lists {len(keys)} objects, _info.json {len(shard['keys'])} (or in another order)")
    preset = preset_from_json(info["preset"])
    indexed: dict[str, tuple[int, int]] = {}
    with open(path, "rb") as handle:
        for entry in index["samples"]:
            key = entry["key"]
            found, ids, fields, intact = _read_entry(path, entry, handle, indexed)
            problems.extend(f"{name}: {p}" for p in found)
            report.keys.append(key)
            problems.extend(f"{name}: {p}" for p in _check_sample(key, set(entry["members"]), fields, info, preset, ids))
            latents = _intact_latents(fields) if intact else None
            report.objects[key] = (ids[0], ids[1], latents) if latents is not None else None
    problems += _check_tar_against_index(name, path, indexed)
    if changed:
        where = (
            "the problems that follow say where"
            if problems
            else "every member reads intact, so the damage lies between them, in tar headers or padding: re-pack it or restore it from a copy"
        )
        problems.insert(0, f"{name}: sha256 differs from _info.json (changed or corrupt; {where})")
    return report


def _read_entry(path: Path, entry: dict, handle, indexed: dict[str, tuple[int, int]]) -> tuple[list[str], tuple[str, str], dict, bool]:
    """Read one indexed sample's members and ids: (problems, ids, the members read intact, whether all were)."""
    key, fields, intact, problems = entry["key"], {}, True, []
    for field, span in entry["members"].items():
        indexed[f"{key}.{field}"] = (span[0], span[1])
        try:
            fields[field] = fmt.read_member(path, key, field, span, handle)
        except fmt.MemberError as error:
            problems.append(str(error).replace(f"{path}: ", "", 1))
            intact = False
    try:
        ids = fmt.entry_ids(path, entry, handle)
    except (fmt.ShardFormatError, ValueError, KeyError) as error:
        problems.append(f"object {key}: no synset and model id in its index entry or metadata ({error})")
        ids = ("?", "?")
    return problems, ids, fields, intact


def _intact_latents(fields: dict[str, bytes]) -> np.ndarray | None:
    """The sample's latents array, or None when it has none that loads."""
    if "latents.npy" not in fields:
        return None
    try:
        return fmt.decode_latents(fields["latents.npy"], "")
    except fmt.ShardFormatError:
        return None


def _check_tar_against_index(name: str, path: Path, indexed: dict[str, tuple[int, int]]) -> list[str]:
    """The tar's own members are those its index lists, at the offsets it records."""
    try:
        members = _tar_members(path)
    except (EOFError, ValueError, OSError) as error:
        return [f"{name}: not a readable tar ({error})"]
    problems = []
    if {m[0] for m in members} != set(indexed):
        problems.append(f"{name}: the tar holds {len(members)} members, its index {len(indexed)}")
    for member, offset, size in members:
        if member in indexed and indexed[member] != (offset, size):
            problems.append(f"{name}: index entry {member} does not point at its member")
    return problems


def _check_split_files(out: Path, info: dict, split: str, objects: dict[str, tuple[str, str, np.ndarray] | None]) -> list[str]:
    """The SIE split arrays of a split against the shards' objects, latents and labels."""
    if any(v is None for v in objects.values()):
        return []  # a shard's objects are unreadable (reported): there is nothing sure to compare with
    labels = {c["synset"]: c["label"] for c in info["classes"]}
    expected = sie_arrays(objects, labels)
    problems = []
    fix = f"run `iebench finalize {out}` to write it again from the shards"
    for name, kind in zip(split_file_names(split), ("images", "labels", "latents")):
        path = out / name
        if not path.is_file():
            problems.append(f"{name}: missing ({fix})")
            continue
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            problems.append(f"{name}: not a readable .npy file ({error}; {fix})")
            continue
        want = expected[kind]
        if kind == "latents" and array.dtype != want.dtype:
            problems.append(f"{name}: holds {array.dtype}, expected {want.dtype} ({fix})")
        elif array.shape != want.shape:
            problems.append(f"{name}: shape {array.shape}, expected {want.shape} for {len(objects)} objects ({fix})")
        elif not np.array_equal(array, want):
            order = sorted(objects)
            if kind == "latents":
                views = info["views_per_object"]
                rows = np.nonzero(np.any(array != want, axis=1))[0]
                differing = sorted({order[r // views] for r in rows})
                problems.append(
                    f"{name}: rows of {len(differing)} objects ({', '.join(differing[:5])}) differ from the latents in their shards ({fix})"
                )
            else:
                differing = [order[i] for i in np.nonzero(array != want)[0]]
                problems.append(f"{name}: entries of {len(differing)} objects ({', '.join(differing[:5])}) differ from the shards ({fix})")
    return problems


def _digest_problems(actual: str | None, expected: str, missing: str, differs: str) -> list[str]:
    """`missing` when there is no file to hash, `differs` when its hash is not the expected one, else nothing."""
    if actual is None:
        return [missing]
    return [differs] if actual != expected else []


def _check_checksums(out: Path, info: dict, tar_sums: dict[str, str]) -> list[str]:
    """Every recorded file against its sha256 (`_info.json`'s `files`), and `SHA256SUMS` against the files."""
    fix = f"run `iebench finalize {out}` to write it again"
    problems = []
    computed = dict(tar_sums)

    def sha(name: str) -> str | None:
        if name not in computed and (out / name).is_file():
            computed[name] = sha256_file(out / name)
        return computed.get(name)

    recorded = info.get("files", {})
    recorded_shards = {s["name"]: s["sha256"] for split in fmt.SPLITS for s in info["splits"][split]["shards"]}
    for name, digest in recorded.items():
        if not name.endswith(".tar"):  # a tar is checked with its shard
            problems += _digest_problems(
                sha(name), digest, f"{name}: missing", f"{name}: sha256 differs from _info.json (changed or corrupt; {fix})"
            )
    sums = out / SUMS_NAME
    if not sums.is_file():
        return problems + [f"{SUMS_NAME}: missing ({fix})"]
    listed, malformed = parse_sums(sums.read_text(errors="replace"))
    problems += [f"{SUMS_NAME}: line {number} is not `<sha256>  <name>` ({line[:60]!r}): {fix}" for number, line in malformed]
    for name, digest in listed.items():
        if name in tar_sums and tar_sums[name] != recorded_shards.get(name):
            continue  # a changed shard is reported with its own check, where finalize is no cure
        problems += _digest_problems(
            sha(name),
            digest,
            f"{SUMS_NAME}: lists {name}, which is missing",
            f"{SUMS_NAME}: {name} does not match its line (changed or corrupt; {fix})",
        )
    if recorded:
        unlisted = sorted((set(recorded) | {fmt.INFO_NAME}) - set(listed))
        if unlisted:
            problems.append(f"{SUMS_NAME}: does not list {', '.join(unlisted[:5])} ({fix})")
    return problems


def _check_folder(out: Path, info: dict) -> list[str]:
    """Files in OUT that are no part of the set: a stray tar is read by no loader, a temporary file is a crash's leftover."""
    shards = [s["name"] for split in fmt.SPLITS for s in info["splits"][split]["shards"]]
    known = set(shards) | {fmt.index_path(out / s).name for s in shards} | set(SET_FILES) | {CARD_NAME}
    known |= {p.name for pattern in WRITER_RECORDS for p in out.glob(pattern)}
    problems = []
    for path in sorted(out.iterdir()):
        if path.name in known:
            continue
        if TMP_MARK in path.name:
            problems.append(
                f"{path.name}: a temporary file left by an interrupted run: remove it (the next pack, render or "
                "finalize into this folder removes it too)"
            )
        elif path.name.endswith(".tar"):
            problems.append(
                f"{path.name}: a shard that _info.json does not list: no loader reads it; remove it, or pack its objects into the set"
            )
        else:
            problems.append(f"{path.name}: not a file of this shard set (_info.json does not list it): remove it or move it elsewhere")
    return problems


def _check_shards(out: Path, info: dict, quick: bool, workers: int, progress: bool) -> list[tuple[str, dict, ShardReport]]:
    """Every listed shard checked, over `workers` processes (shards in the order `_info.json` lists them)."""
    shards = [(split, s) for split in fmt.SPLITS for s in info["splits"][split]["shards"]]
    check = partial(_check_shard_quick, out) if quick else None
    bar = tqdm(total=len(shards), desc="verify --quick" if quick else "verify", unit="shard", disable=not progress)
    if workers <= 1 or len(shards) <= 1 or sum(s["bytes"] for _, s in shards) < PARALLEL_FROM_BYTES:
        reports = []
        for split, shard in shards:
            reports.append(check(shard) if quick else _check_shard(out, split, shard, info))
            bar.update()
    else:
        with ProcessPoolExecutor(min(workers, len(shards)), mp_context=get_context("spawn")) as pool:
            futures = [
                pool.submit(check, shard) if quick else pool.submit(_check_shard, out, split, shard, info) for split, shard in shards
            ]
            reports = []
            for future in futures:
                reports.append(future.result())
                bar.update()
    bar.close()
    return [(split, shard, report) for (split, shard), report in zip(shards, reports)]


def verify(out: Path, progress: bool = True, quick: bool = False, workers: int = 0) -> list[str]:
    """Every problem of the shard set in OUT (an empty list means it verified).

    `quick` checks every file's size and sha256 only (at disk speed: the everyday check of a copied set); the full
    check also reads every member, decodes every image and compares the split files with the shards. Shards are
    checked over `workers` processes (0: every available core).
    """
    out = Path(out)
    info = load_info(out)
    problems: list[str] = _check_folder(out, info)
    owner: dict[str, str] = {}
    tar_sums: dict[str, str] = {}
    objects: dict[str, dict] = {split: {} for split in fmt.SPLITS}
    for split, shard, report in _check_shards(out, info, quick, workers or available_cores(), progress):
        problems += report.problems
        if report.sha256 is not None:
            tar_sums[shard["name"]] = report.sha256
        for key in report.keys:
            if key in owner:
                problems.append(f"{shard['name']}: object {key} is in {owner[key]} and again in {shard['name']} ({split})")
            owner[key] = f"{shard['name']} ({split})"
        objects[split].update(report.objects)
    if not quick:
        for split in fmt.SPLITS:
            problems += _check_split_files(out, info, split, objects[split])
    problems += _check_checksums(out, info, tar_sums)
    unfinished = unfinished_render(info.get("render_manifest"))
    if unfinished:
        problems.append(f"{fmt.INFO_NAME}: records a render that had not finished ({unfinished}): finish the render, then pack it again")
    return problems
