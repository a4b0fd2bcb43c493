"""Where a render job's views go: loose files in the original layout, or WebDataset shards.

A sink says which views of an object are still to render (that is what makes a job resumable) and
takes each finished object. The loose sink writes view by view; the shard sink keeps an object's
views until every object of its shard is done, then writes the shard (never rewritten afterwards).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from iebench.classes import class_name, collection_class_names
from iebench.dataset import format as fmt
from iebench.dataset.pack import PackOptions
from iebench.dataset.parts import new_part, part_path, shard_job_suffix
from iebench.dataset.splits import assign_splits, require_split, split_record
from iebench.files import remove_temporary, write_json_atomic
from iebench.layout import object_dir
from iebench.render import writer
from iebench.render.objects import ObjectRef
from iebench.render.worker import ObjectResult

# Bytes of a stored 3DIEBench view at 256 px (SPEC 1: 17 GB for 2.6 M views), for sizing shards before rendering.
BYTES_PER_VIEW_256 = 6_500
BYTES_PER_VIEW_PASSES_256 = 21_000  # depth, normal, mask and camera of a view (docs/benchmarks.md), for sizing only


class LooseSink:
    """The original layout: `<synset>/<model_id>/image_<i>.jpg` and `latent_<i>.npy`."""

    def __init__(self, out: Path, passes: tuple[str, ...] = ()) -> None:
        self.out, self.passes = Path(out), tuple(passes)

    def prepare(self, objects: tuple[ObjectRef, ...]) -> None:
        """Remove temporary files an interrupted run left."""
        for ref in objects:
            remove_temporary(object_dir(self.out, ref.synset, ref.model_id))  # a live writer's files are left alone

    def missing_views(self, ref: ObjectRef, views: list[int]) -> list[int]:
        """Views of the object whose files (image, latents, passes) are not all in place."""
        folder = object_dir(self.out, ref.synset, ref.model_id)
        return [v for v in views if not writer.view_complete(folder, v, self.passes)]

    def accept(self, result: ObjectResult) -> None:
        """Write the object's finished views."""
        folder = object_dir(self.out, *result.key.split("/"))
        for view in result.views:
            writer.write_view(folder, view.index, view.jpeg, view.latents, view.passes)

    def close(self, manifest: dict) -> None:
        """Nothing is pending in the loose layout."""


class ShardSink:
    """Shards planned before rendering (`_part*.json`), each written once all of its objects are rendered.

    `objects` are the job's objects: their ids come from there (and are stored in each sample's
    metadata), never from parsing a sample key.
    """

    def __init__(self, out: Path, part: dict, job: str, objects: tuple[ObjectRef, ...]) -> None:
        self.out, self.part, self.job = Path(out), part, job
        self.shard_of = {key: shard["name"] for shard in part["shards"] for key in shard["keys"]}
        self.ref_of = {ref.key: ref for ref in objects}  # "<synset>/<model_id>" (a result's key) -> the object
        self.pending: dict[str, dict[str, ObjectResult]] = {}
        self.failed: dict[str, str] = {}

    def prepare(self, objects: tuple[ObjectRef, ...]) -> None:
        """Check the plan against one already in OUT, record it, and drop temporary files."""
        path = part_path(self.out, self.job)
        if path.is_file() and json.loads(path.read_text()).get("plan") != self.part["plan"]:
            raise ValueError(f"{self.out} holds shards planned with other options (see {path.name}): use a new folder")
        if not path.is_file():
            write_json_atomic(path, self.part)
        else:
            stored = self._resumed(json.loads(path.read_text()))
            write_json_atomic(path, stored)  # keeps the previous run's manifest until this run's `close`
            self.part = stored | {"render_manifest": self.part["render_manifest"]}
        # Only this job's leftovers: the other jobs of an array write into the same folder at the same time.
        remove_temporary(self.out, (path.name, *(shard["name"] for shard in self.part["shards"])))

    def _resumed(self, stored: dict) -> dict:
        """The plan of a previous run: objects it left out of written shards stay out; a shard it never wrote gets all
        its objects back (it is rendered again whole, its failed objects retried)."""
        planned = {shard["name"]: shard["keys"] for shard in self.part["shards"]}
        for shard in stored["shards"]:
            if not fmt.shard_complete(self.out / shard["name"]):
                retried = set(planned[shard["name"]]) - set(shard["keys"])
                shard["keys"] = planned[shard["name"]]
                stored["skipped"] = sorted(set(stored.get("skipped", [])) - retried)
        return stored

    def missing_views(self, ref: ObjectRef, views: list[int]) -> list[int]:
        """All views of an object whose shard is not written yet, else none."""
        key = fmt.sample_key(ref.synset, ref.model_id)
        return [] if fmt.shard_complete(self.out / self.shard_of[key]) else list(views)

    def accept(self, result: ObjectResult) -> None:
        """Keep the object; write its shard when the shard's last object arrives."""
        ref = self.ref_of[result.key]
        key = fmt.sample_key(ref.synset, ref.model_id)
        name = self.shard_of[key]
        if result.error:
            self.failed[key] = name
        self.pending.setdefault(name, {})[key] = result
        shard = next(s for s in self.part["shards"] if s["name"] == name)
        if set(self.pending[name]) >= set(shard["keys"]):
            self._write(shard, self.pending.pop(name))

    def _write(self, shard: dict, results: dict[str, ObjectResult]) -> None:
        samples = []
        for key in shard["keys"]:
            result = results[key]
            if result.error:
                continue
            ref = self.ref_of[result.key]
            synset, model_id = ref.synset, ref.model_id
            views = sorted(result.views, key=lambda v: v.index)
            samples.append(
                fmt.ObjectSample(
                    synset,
                    model_id,
                    self.part["labels"][synset],
                    class_name(synset, collection_class_names(self.part.get("source"))),
                    tuple(v.jpeg for v in views),
                    np.stack([v.latents for v in views]),
                    tuple(self.part["latent_names"]),
                    self.part["preset"]["name"],
                    tuple(v.passes for v in views) if self.part.get("passes") else (),
                )
            )
        dropped = [k for k in shard["keys"] if results[k].error]
        if dropped:  # a failed object is left out of its shard (and listed), so the rest is not lost
            shard["keys"] = [k for k in shard["keys"] if k not in dropped]
            self.part["skipped"] = sorted(set(self.part.get("skipped", [])) | set(dropped))
            write_json_atomic(part_path(self.out, self.job), self.part)
        fmt.write_shard(self.out / shard["name"], samples)

    def close(self, manifest: dict) -> None:
        """Record the final render manifest in the plan, so `finalize` can describe the render."""
        self.part["render_manifest"] = manifest
        write_json_atomic(part_path(self.out, self.job), self.part)


def shard_plan(
    all_objects: list[ObjectRef],
    mine: list[ObjectRef],
    options: PackOptions,
    *,
    views: int,
    resolution: int,
    preset: dict,
    latent_names: tuple[str, ...],
    job_index: int,
    num_jobs: int,
    source: dict,
    passes: tuple[str, ...] = (),
) -> dict:
    """The `_part*.json` plan of one render job writing shards.

    The split and the labels come from all objects (every job of an array computes the same); the
    job's own objects go, per split, in a seeded order, into shards of a fixed object count sized
    from the expected bytes per view.
    """
    keys = [(o.synset, o.model_id) for o in all_objects]
    fmt.check_dataset_name(options.name)
    fmt.check_unique_keys(keys)  # before anything renders: a key that cannot be stored is refused now
    split_of = assign_splits(keys, split_files=options.split_files, val_fraction=options.val_fraction, seed=options.split_seed)
    require_split([(o.synset, o.model_id) for o in mine], split_of)
    per_view = (BYTES_PER_VIEW_256 + BYTES_PER_VIEW_PASSES_256 * bool(passes)) * (resolution / 256) ** 2 + 200
    per_shard = max(1, int(options.shard_size_mb * 2**20 // (views * per_view)))
    job = shard_job_suffix(job_index, num_jobs)
    shards = []
    for split_index, split in enumerate(fmt.SPLITS):
        members = sorted(fmt.sample_key(o.synset, o.model_id) for o in mine if split_of.get((o.synset, o.model_id)) == split)
        order = np.random.default_rng(np.random.SeedSequence([options.shard_seed, split_index, job_index])).permutation(len(members))
        ordered = [members[i] for i in order]
        for index, start in enumerate(range(0, len(ordered), per_shard)):
            shards.append(
                {"name": fmt.shard_name(options.name, split, index, job), "split": split, "keys": ordered[start : start + per_shard]}
            )
    return new_part(
        name=options.name,
        views=views,
        resolution=resolution,
        latent_names=latent_names,
        preset=preset,
        render_manifest=None,
        passes=passes,
        source=source,
        synsets=[o.synset for o in all_objects],
        split=split_record(split_files=options.split_files, val_fraction=options.val_fraction, seed=options.split_seed),
        shard_seed=options.shard_seed,
        shard_size_mb=options.shard_size_mb,
        skipped=[],
        shards=shards,
        plan={
            "job_index": job_index,
            "num_jobs": num_jobs,
            "objects_per_shard": per_shard,
            "objects": sorted(fmt.sample_key(o.synset, o.model_id) for o in mine),
        },
    )
