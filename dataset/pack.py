"""`iebench pack`: the original layout of loose files -> WebDataset shards, in parallel, resumable.

Steps: list and check every object (all views, well-formed latents) before writing anything; split
by object; order each split with a seeded permutation; cut it into shards of about the target size;
record that plan in `_part.json`; write the shards over several processes (a finished shard is never
rewritten, so a re-run resumes); then `finalize` writes `_info.json`, checksums, split files, card.
"""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from iebench.classes import class_name, collection_class_names
from iebench.cores import available_cores
from iebench.dataset import format as fmt
from iebench.dataset.loose import (
    LooseLayoutError,
    LooseObject,
    image_size,
    latent_count,
    list_objects,
    load_npy,
    passes_of,
    read_latents,
    render_manifest,
    schema,
)
from iebench.dataset.parts import new_part, part_path
from iebench.dataset.splits import assign_splits, require_split, split_record
from iebench.files import TMP_MARK, remove_temporary, write_json_atomic
from iebench.layout import image_name, image_path, latent_name, latent_path
from iebench.passes import PASSES, check_passes

PARALLEL_CHECK_FROM = 64  # objects: fewer are checked in this process (starting workers would cost more than they save)


class PackError(RuntimeError):
    """Input that cannot be packed, or an output folder packed from something else; names what is wrong.

    The message is one line (with the first problem); `details` lists every problem when there are several.
    """

    def __init__(self, message: str, details: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.details = list(details)


@dataclass(frozen=True, kw_only=True)
class PackOptions:
    """How to pack: the dataset name, split, order and shard size."""

    name: str = "3diebench"
    val_fraction: float = 0.2
    split_seed: int = 0
    split_files: Path | None = None  # a folder with the original SIE split files, instead of our split
    shard_seed: int = 0
    shard_size_mb: float = 100.0
    workers: int = 0
    skip_bad: bool = False


def check_object(obj: LooseObject, views: int, k: int, passes: tuple[str, ...] = (), resolution: int | None = None) -> str | None:
    """Why an object cannot be packed (missing views, missing or malformed latents, missing passes), or None.

    With `resolution`, every image and pass is also decoded and its size checked (what writing the shard does).
    """
    if obj.views != tuple(range(views)):
        missing = sorted(set(range(views)) - set(obj.views))
        return f"{obj.key}: views {missing[:10]} missing (expected {image_name(0)}..{image_name(views - 1)})"
    for view in range(views):
        if not latent_path(obj.folder, view).is_file():
            return f"{obj.key}: {latent_name(view)} missing"
        try:
            latents = read_latents(obj, view)
        except LooseLayoutError as error:
            return str(error)
        if latents.shape != (k,):
            return f"{obj.key}: {latent_name(view)} has {latents.shape[0]} values, expected {k}"
        for name in passes:
            if not (obj.folder / PASSES[name].loose_name(view)).is_file():
                return f"{obj.key}: {PASSES[name].loose_name(view)} missing (the set has passes {', '.join(passes)})"
    if resolution is not None:
        try:
            read_checked(obj.folder, obj.synset, obj.model_id, views, resolution, passes)
        except (PackError, OSError) as error:
            return str(error)
    return None


def folder_bytes(folder: Path) -> int:
    """The bytes of the files in an object's folder (what its sample will about weigh)."""
    with os.scandir(folder) as entries:
        return sum(entry.stat().st_size for entry in entries if entry.is_file())


def _check_and_measure(obj: LooseObject, **check: object) -> tuple[str | None, int]:
    """(`check_object`'s verdict, the object's bytes) in one pass over its folder."""
    problem = check_object(obj, **check)
    return problem, 0 if problem else folder_bytes(obj.folder)


def _check_all(
    objects: list[LooseObject], views: int, k: int, passes: tuple[str, ...], resolution: int | None, workers: int
) -> tuple[list[str | None], dict[str, int]]:
    """`check_object` over every object, and each good object's bytes (by key): over `workers` processes when there
    are enough objects to share out (reading two files a view is the slow part, and with --skip-bad decoding)."""
    check = partial(_check_and_measure, views=views, k=k, passes=passes, resolution=resolution)
    desc = "check (decoding)" if resolution is not None else "check"
    if workers == 1 or len(objects) < PARALLEL_CHECK_FROM:
        results = [check(o) for o in tqdm(objects, desc=desc, unit="obj", leave=False)]
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            results = list(tqdm(pool.map(check, objects, chunksize=16), total=len(objects), desc=desc, unit="obj", leave=False))
    sizes = {obj.key: size for obj, (problem, size) in zip(objects, results) if problem is None}
    return [problem for problem, _ in results], sizes


def plan_shards(
    objects: list[LooseObject], split_of: dict, options: PackOptions, job: str = "", sizes: dict[str, int] | None = None
) -> list[dict]:
    """Shards per split: objects in a seeded random order, cut at about `shard_size_mb` (`sizes`: each object's
    bytes by key where already measured)."""
    target = options.shard_size_mb * 2**20
    shards = []
    for split in fmt.SPLITS:
        members = sorted((o for o in objects if split_of[(o.synset, o.model_id)] == split), key=lambda o: o.key)
        order = np.random.default_rng(np.random.SeedSequence([options.shard_seed, fmt.SPLITS.index(split)])).permutation(len(members))
        groups, current, size = [], [], 0
        for position in order:
            obj = members[position]
            obj_bytes = sizes[obj.key] if sizes and obj.key in sizes else folder_bytes(obj.folder)
            if current and size + obj_bytes > target:
                groups.append(current)
                current, size = [], 0
            current.append(fmt.sample_key(obj.synset, obj.model_id))
            size += obj_bytes
        groups += [current] if current else []
        shards += [{"name": fmt.shard_name(options.name, split, i, job), "split": split, "keys": keys} for i, keys in enumerate(groups)]
    return shards


def read_checked(
    obj_folder: Path, synset: str, model_id: str, views: int, resolution: int, passes: tuple[str, ...] = ()
) -> tuple[list[bytes], np.ndarray, list[dict[str, bytes]]]:
    """One object's JPEG bytes, (views, k) latents and pass bytes, every JPEG and pass checked to decode at the size.

    PIL decodes here: it keeps pack workers free of torch (about 400 MB each). A JPEG that decodes
    only with a libjpeg warning ("Corrupt JPEG data: ...") passes PIL, which ignores warnings; `verify`
    reports it and the loaders refuse it, both decoding strictly.
    """
    jpegs, latents, views_passes = [], [], []
    for view in range(views):
        path = image_path(obj_folder, view)
        data = path.read_bytes()
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                size = image.size
        except UnidentifiedImageError:
            raise PackError(f"{synset}/{model_id}: {path.name} is not a readable JPEG (not an image file)") from None
        except (OSError, SyntaxError) as error:
            raise PackError(f"{synset}/{model_id}: {path.name} is not a readable JPEG ({error})") from None
        if size != (resolution, resolution):
            raise PackError(f"{synset}/{model_id}: {path.name} is {size[0]}x{size[1]}, expected {resolution}x{resolution}")
        jpegs.append(data)
        latents.append(load_npy(latent_path(obj_folder, view)).astype(np.float64))
        stored = {name: (obj_folder / PASSES[name].loose_name(view)).read_bytes() for name in passes}
        problems = check_passes(stored, resolution)
        if problems:
            name, problem = problems[0]
            raise PackError(f"{synset}/{model_id}: {PASSES[name].loose_name(view)} {problem}")
        views_passes.append(stored)
    return jpegs, np.stack(latents), views_passes


def load_sample(
    obj_folder: Path,
    synset: str,
    model_id: str,
    views: int,
    resolution: int,
    label: int,
    latent_names: tuple[str, ...],
    preset: str,
    passes: tuple[str, ...] = (),
    names: dict[str, str] | None = None,
) -> fmt.ObjectSample:
    """One object's files as the sample a shard stores (`read_checked` checks them); `names`: a collection's class names."""
    jpegs, latents, views_passes = read_checked(obj_folder, synset, model_id, views, resolution, passes)
    return fmt.ObjectSample(
        synset,
        model_id,
        label,
        class_name(synset, names),
        tuple(jpegs),
        latents,
        latent_names,
        preset,
        tuple(views_passes) if passes else (),
    )


def _write_planned_shard(out: Path, shard: dict, part: dict, folders: dict[str, tuple[str, str, Path]]) -> str | None:
    """Write one planned shard (in a worker process); returns an error message or None.

    `folders` maps each key to its object's (synset, model_id, folder). An OSError (no space left,
    unreadable file) is raised, so that the command reports it as such.
    """
    try:
        samples = []
        for key in shard["keys"]:
            synset, model_id, folder = folders[key]
            samples.append(
                load_sample(
                    folder,
                    synset,
                    model_id,
                    part["views_per_object"],
                    part["resolution"],
                    part["labels"][synset],
                    tuple(part["latent_names"]),
                    part["preset"]["name"],
                    tuple(part.get("passes", ())),
                    collection_class_names(part.get("source")),
                )
            )
        fmt.write_shard(out / shard["name"], samples)
        return None
    except OSError:
        raise
    except (PackError, ValueError) as error:
        return f"{shard['name']}: {error}"


# What makes two packs the same data: the same shards of the same objects, views, size, latents, passes and split
# method. Not where the source or the split files lie (the shards pin the assignment): a folder moved between two
# runs, or a path spelt another way, resumes.
SAME_PACK = ("name", "views_per_object", "resolution", "latent_names", "passes", "labels", "split", "shards")


def _identity(plan: dict) -> dict:
    """What of a plan decides the data, as JSON holds it."""
    same = {key: plan.get(key) for key in SAME_PACK}
    if isinstance(same["split"], dict):
        same["split"] = {k: v for k, v in same["split"].items() if k != "path"}
    return json.loads(json.dumps(same))


def _stored_plan(path: Path) -> dict | None:
    """The plan already in OUT, as far as it decides the data (None if it cannot be read: it is written again)."""
    try:
        return _identity(json.loads(path.read_text()))
    except (ValueError, AttributeError):
        return None


def _claim_output(out: Path, part: dict) -> Path:
    """Make OUT the pack's: a new or empty folder, or one holding this very plan (a resume); returns the plan's path."""
    existing = part_path(out)
    foreign = sorted(p.name for p in out.iterdir() if TMP_MARK not in p.name) if out.is_dir() and not existing.is_file() else []
    if foreign:  # a pack killed before its plan was written leaves only temporary files: those are its own
        raise PackError(f"{out} is not empty and holds no shard set of pack's (e.g. {foreign[0]!r}): pack into a new or empty folder")
    stored = _stored_plan(existing) if existing.is_file() else None
    if stored is not None and stored != _identity(part):
        raise PackError(f"{out} holds shards packed from other input or options (see {existing.name}): use a new folder")
    out.mkdir(parents=True, exist_ok=True)
    return existing


def _many(problems: list[str], what: str) -> tuple[str, str]:
    """("3 objects" or "an object", " (and 2 more, listed above)" or ""): how an error counts its problems."""
    count = f"{len(problems)} {what}s" if len(problems) > 1 else f"a{'n' if what[0] in 'aeiou' else ''} {what}"
    return count, f" (and {len(problems) - 1} more, listed above)" if len(problems) > 1 else ""


def _good_objects(src: Path, objects: list[LooseObject], checks: list[str | None], skip_bad: bool) -> list[LooseObject]:
    """The objects without a problem; without `skip_bad`, any problem stops the pack before anything is written."""
    problems = [problem for problem in checks if problem]
    if problems and not skip_bad:
        count, more = _many(problems, "object")
        raise PackError(
            f"{count} cannot be packed (nothing was written; fix it, or --skip-bad packs the others): {problems[0]}{more}",
            problems if len(problems) > 1 else (),
        )
    good = [o for o, problem in zip(objects, checks) if not problem]
    if not good:
        raise PackError(f"{src}: every object has a problem, so --skip-bad leaves nothing to pack (nothing was written): {problems[0]}")
    return good


def _write_shards(out: Path, part: dict, objects: list[LooseObject], workers: int) -> None:
    """Write the plan's shards not yet complete, in parallel; failures are reported once every worker has stopped."""
    todo = [s for s in part["shards"] if not fmt.shard_complete(out / s["name"])]
    folders = {fmt.sample_key(o.synset, o.model_id): (o.synset, o.model_id, o.folder) for o in objects}
    errors: list[str] = []
    failure: OSError | None = None
    with (
        ProcessPoolExecutor(max(1, min(workers, len(todo) or 1)), mp_context=get_context("spawn")) as pool,
        tqdm(total=sum(len(s["keys"]) for s in todo), desc="pack", unit="obj") as progress,
    ):
        futures = {pool.submit(_write_planned_shard, out, s, part, {k: folders[k] for k in s["keys"]}): s for s in todo}
        for future in futures:
            if future.cancelled():
                continue
            try:
                error = future.result()
            except OSError as raised:  # the first one is raised once every worker has stopped (and cleaned up)
                failure = failure or raised
                for pending in futures:
                    pending.cancel()
                continue
            if error:
                errors.append(error)
            progress.update(len(futures[future]["keys"]))
    if failure is not None:
        raise failure
    if errors:
        count, more = _many(errors, "shard")
        raise PackError(
            f"{count} could not be written: {errors[0]}{more}; re-render or replace the file and run the same command again "
            "(the other shards are complete: it resumes), or pack with --skip-bad into a new folder",
            errors if len(errors) > 1 else (),
        )


def _collection_of(manifest: dict | None) -> dict:
    """The linked collection the render's objects came from (`iebench objects link`), as a set's source records it."""
    collection = ((manifest or {}).get("object_source") or {}).get("collection")
    return {"collection": collection} if collection else {}


def pack(src: Path, out: Path, options: PackOptions = PackOptions()) -> tuple[dict, list[str]]:
    """Pack a loose-layout folder into shards; returns the finalized `_info.json` and, for each object skipped
    (`skip_bad`), why: "<synset>/<model_id>: <problem>"."""
    from iebench.dataset.description import check_render_finished
    from iebench.dataset.finalize import FinalizeError, finalize

    src, out = Path(src), Path(out)
    try:
        check_render_finished(src)  # an unfinished render, or jobs of different plans, is not packed
    except FinalizeError as error:
        raise PackError(str(error)) from None
    objects = list_objects(src)
    try:
        fmt.check_dataset_name(options.name)
        fmt.check_unique_keys([(o.synset, o.model_id) for o in objects])
    except fmt.ShardFormatError as error:
        raise PackError(f"{src}: {error} (nothing was written)") from None
    views = max(len(o.views) for o in objects)
    passes, manifest = passes_of(src, objects), render_manifest(src)
    try:
        preset = schema(src, latent_count(objects))
        resolution = int(manifest["render_settings"]["resolution"]) if manifest else image_size(objects)
    except LooseLayoutError as error:
        raise PackError(f"{error} (nothing was written)") from None
    workers = options.workers or available_cores()
    # --skip-bad decodes every image first: a bad one found while a shard is written could not be skipped.
    deep = resolution if options.skip_bad else None
    checks, sizes = _check_all(objects, views, len(preset.latent_names), passes, deep, workers)
    good = _good_objects(src, objects, checks, options.skip_bad)
    skipped = sorted({o.key for o in objects} - {o.key for o in good})
    problems = sorted(problem for problem in checks if problem)
    keys = [(o.synset, o.model_id) for o in good]
    split_of = assign_splits(keys, split_files=options.split_files, val_fraction=options.val_fraction, seed=options.split_seed)
    require_split(keys, split_of)
    part = new_part(
        name=options.name,
        views=views,
        resolution=resolution,
        latent_names=preset.latent_names,
        preset=preset.to_json(),
        render_manifest=manifest,
        passes=passes,
        source={
            "kind": "loose",
            "path": str(src.resolve()),
            "procedural": bool(manifest and manifest.get("object_source", {}).get("procedural")),
            **_collection_of(manifest),
        },
        synsets=[o.synset for o in good],
        split=split_record(split_files=options.split_files, val_fraction=options.val_fraction, seed=options.split_seed),
        shard_seed=options.shard_seed,
        shard_size_mb=options.shard_size_mb,
        skipped=skipped,
        shards=plan_shards(good, split_of, options, sizes=sizes),
    )
    existing = _claim_output(out, part)
    remove_temporary(out, (existing.name, *(s["name"] for s in part["shards"])))
    write_json_atomic(existing, part)
    _write_shards(out, part, good, workers)
    return finalize(out), problems
