"""A render job: plan what is missing, fan objects out to Blender workers, write, report.

Resumable by construction: the plan skips every view whose files are complete, and a run whose
settings differ from the manifest already in the output folder is refused rather than mixed in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

import iebench
from iebench.cores import available_cores
from iebench.dataset import format as fmt
from iebench.files import remove_temporary, write_atomic, write_json_atomic
from iebench.layout import LATENT_GLOB, object_dir
from iebench.presets import Preset, sample_view_latents
from iebench.render import writer
from iebench.render.collections import read_collection
from iebench.render.given_latents import GivenLatents
from iebench.render.objects import ObjectRef
from iebench.render.pool import WorkerPool, is_stopped_reason
from iebench.render.procedural import is_procedural
from iebench.render.settings import RenderSettings
from iebench.render.sinks import LooseSink, ShardSink
from iebench.render.worker import (
    ObjectResult,
    ObjectTask,
    WorkerOptions,
)
from iebench.scene_constants import scene_record

# Cycles threads per worker process by default. On 2 cores one process with 2 threads renders 1.23x the images a
# second of two processes with one at 256 px, and the same at 64 px (bench/render_workers.py, docs/benchmarks.md).
THREADS_PER_WORKER = 2


class RenderJobError(RuntimeError):
    """A job that must not start (for example, settings that differ from the output's manifest)."""


@dataclass(frozen=True, kw_only=True)
class RenderJob:
    """Everything one `iebench render` invocation does, validated before any work starts."""

    objects: tuple[ObjectRef, ...]  # this job's objects (already partitioned)
    out: Path
    preset: Preset
    seed: int = 0
    views: int = 50
    settings: RenderSettings = RenderSettings()
    workers: int = 0  # 0: one per THREADS_PER_WORKER cores
    job_index: int = 0
    num_jobs: int = 1
    max_faces: int = 5_000_000
    max_mesh_mb: float = 1024.0
    recycle_every: int = 200  # restart a worker after this many objects (Blender's memory creeps up)
    threads: int = 0  # Cycles threads per worker; 0: the cores shared evenly between workers
    source_root: Path | None = None  # where the objects came from (recorded in the manifest)
    shard_plan: dict | None = None  # write shards by this plan (`render.sinks.shard_plan`) instead of loose files
    given: GivenLatents | None = None  # render exactly these views and factors instead of sampling them
    passes: tuple[str, ...] = ()  # named passes (`iebench.passes`) written with every view; none: RGB only
    object_timeout: float | None = None  # seconds an object's import and views may take; None: `default_object_timeout`
    retry_failed: bool = False  # render again the objects an earlier run stopped (timed out, or their worker died)

    def worker_count(self) -> int:
        """Worker processes to start: the flag, or one per THREADS_PER_WORKER cores, never more than objects."""
        count = self.workers or max(1, available_cores() // THREADS_PER_WORKER)
        return max(1, min(count, len(self.objects) or 1))

    def time_limit(self) -> float:
        """Seconds one object's import and views may take before its worker is stopped."""
        if self.object_timeout is not None:
            return self.object_timeout
        return default_object_timeout(self.views, self.settings)  # with given latents, `views` is their most per object

    def threads_per_worker(self) -> int:
        """Cycles threads per worker, so that workers together use every core once."""
        return self.threads or max(1, available_cores() // self.worker_count())


def default_object_timeout(views: int, settings: RenderSettings) -> float:
    """A time limit no real object reaches: 300 s to import, and per view 2 s plus 20 times what a view took on 2 CPU
    cores (0.037 s per sample at 256 px: 0.89 s at 24 spp, docs/benchmarks.md), scaled with the pixel count."""
    per_view = 2.0 + 20 * 0.04 * settings.samples * (settings.resolution / 256) ** 2
    return round(300.0 + views * per_view)


@dataclass
class RenderSummary:
    """What a job did: counts, failures and warnings (object key -> reason)."""

    objects: int = 0
    images_rendered: int = 0
    images_skipped: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    devices: set[str] = field(default_factory=set)  # the Cycles devices that rendered this run's objects


def job_suffix(job_index: int, num_jobs: int) -> str:
    """File-name suffix of a job's own manifest and failure list (empty for a single job)."""
    return "" if num_jobs == 1 else f".job{job_index:05d}-of-{num_jobs:05d}"


def manifest_path(out: Path, job_index: int = 0, num_jobs: int = 1) -> Path:
    """Where a job's manifest lives."""
    return Path(out) / f"_manifest{job_suffix(job_index, num_jobs)}.json"


def failures_path(out: Path, job_index: int = 0, num_jobs: int = 1) -> Path:
    """Where a job's failures (one JSON object per line) live."""
    return Path(out) / f"_failures{job_suffix(job_index, num_jobs)}.jsonl"


def _fingerprint(job: RenderJob) -> dict:
    """What must match between a run and the output it resumes."""
    return {
        "preset": job.preset.to_json(),
        "seed": job.seed,
        "views_per_object": job.views,
        "render": job.settings.image_fingerprint(),
        "job_index": job.job_index,
        "num_jobs": job.num_jobs,
        "latents_source": job.given.source if job.given else None,
        # Only when there are passes, so that an RGB-only render's manifest is as it always was.
        **({"passes": list(job.passes)} if job.passes else {}),
    }


def _manifest(job: RenderJob, summary: RenderSummary | None, status: str, renderer: dict) -> dict:
    return {
        "format": fmt.FORMAT if job.shard_plan else "3diebench-loose/1",
        "generator": f"iebench {iebench.__version__}",
        "status": status,
        **_fingerprint(job),
        "latent_names": list(job.preset.latent_names),
        "layout": "WebDataset shards (see _part*.json)"
        if job.shard_plan
        else "<synset>/<model_id>/image_<i>.jpg + latent_<i>.npy (float64)",
        "render_settings": job.settings.to_json(),
        "scene": scene_record(),
        "renderer": renderer,
        "object_source": {
            "root": str(job.source_root) if job.source_root else None,
            "procedural": bool(job.source_root and is_procedural(job.source_root)),
            **({"collection": collection} if (collection := read_collection(job.source_root)) else {}),  # `iebench objects link`
        },
        "objects": [o.key for o in job.objects],
        "counts": None
        if summary is None
        else {
            "objects": summary.objects,
            "objects_failed": len(summary.failures),
            "images_rendered_this_run": summary.images_rendered,
            "images_already_present": summary.images_skipped,
        },
    }


def _semantic(value):
    """A fingerprint value without the prose (a preset's description and notes may be reworded)."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in ("description", "notes")}
    return value


def settings_mismatch(job: RenderJob, manifest: dict) -> list[str]:
    """The fingerprint keys on which a render manifest differs from what the job would write."""
    wanted = _fingerprint(job) | {"passes": list(job.passes)}
    return [key for key, value in wanted.items() if _semantic(manifest.get(key, [] if key == "passes" else None)) != _semantic(value)]


def check_resumable(job: RenderJob) -> None:
    """Refuse to mix a run into an output folder rendered with other settings."""
    path = manifest_path(job.out, job.job_index, job.num_jobs)
    if not path.is_file():
        rendered = next((ref for ref in job.objects if any(object_dir(job.out, ref.synset, ref.model_id).glob(LATENT_GLOB))), None)
        if rendered is not None:
            others = sorted(p.name for p in job.out.glob("_manifest*.json"))
            why = (
                f"it was rendered with another job layout ({others[0]}): use its --job-index/--num-jobs, or render into a new folder"
                if others
                else "their settings cannot be checked: render into a new folder, or move the old views away"
            )
            raise RenderJobError(f"{job.out} holds views of {rendered.key} but no {path.name}: {why}")
        return
    try:
        previous = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RenderJobError(f"{path} is not valid JSON ({error}); move it away to start over") from None
    if not isinstance(previous, dict):
        raise RenderJobError(f"{path} is not a render manifest; move it away to start over")
    mismatched = settings_mismatch(job, previous)
    if mismatched:
        raise RenderJobError(
            f"{job.out} was rendered with other settings ({', '.join(mismatched)} differ; see {path.name}): "
            "use the same arguments to resume, or a new output folder"
        )


def check_siblings(job: RenderJob) -> None:
    """Refuse a job whose job count or settings differ from those of the other jobs already in OUT (`render.array`)."""
    from iebench.dataset.parts import part_path
    from iebench.render.array import ArrayPlanError, check_sibling_manifests, check_sibling_parts

    own = manifest_path(job.out, job.job_index, job.num_jobs)
    try:
        check_sibling_manifests(job.out, _fingerprint(job), own, shards=job.shard_plan is not None)
        if job.shard_plan is not None:
            check_sibling_parts(job.out, job.shard_plan, part_path(job.out, job_suffix(job.job_index, job.num_jobs)))
    except ArrayPlanError as error:
        raise RenderJobError(str(error)) from None


def make_sink(job: RenderJob) -> LooseSink | ShardSink:
    """The writer of the job's output."""
    if job.shard_plan is None:
        return LooseSink(job.out, job.passes)
    return ShardSink(job.out, job.shard_plan, job_suffix(job.job_index, job.num_jobs), job.objects)


def views_of(job: RenderJob, ref: ObjectRef) -> list[int]:
    """The view indices an object has: 0..views-1, or those the given latents list."""
    if job.given is None:
        return list(range(job.views))
    return sorted(job.given.views.get((ref.synset, ref.model_id), {}))


@dataclass(frozen=True)
class SeededViews(Sequence):
    """(view, latents) of some views of an object, each drawn from its seed when read, not before: planning a render
    of 52,472 objects would otherwise draw 2.6 million latent vectors (about 40 us each) before the first render."""

    preset: Preset
    seed: int
    synset: str
    model_id: str
    views: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, i: int | slice) -> tuple[int, np.ndarray] | SeededViews:
        if isinstance(i, slice):
            return replace(self, views=self.views[i])
        view = self.views[i]
        return view, sample_view_latents(self.preset, self.seed, self.synset, self.model_id, view)


def view_latents(job: RenderJob, ref: ObjectRef, views: list[int]) -> Sequence[tuple[int, np.ndarray]]:
    """(view, latents) of an object's views: the given latents (`--latents`), else the seeded draws (made when read)."""
    if job.given is None:
        return SeededViews(job.preset, job.seed, ref.synset, ref.model_id, tuple(views))
    return tuple((v, job.given.latents_for(job.preset, job.seed, ref.synset, ref.model_id, v)) for v in views)


def plan(job: RenderJob, sink: LooseSink | ShardSink) -> tuple[list[ObjectTask], int]:
    """The tasks still to do (missing views of each object, in object order) and how many views are done."""
    tasks, done = [], 0
    for ref in job.objects:
        wanted = views_of(job, ref)
        missing = sink.missing_views(ref, wanted)
        done += len(wanted) - len(missing)
        if missing:
            tasks.append(ObjectTask(ref, view_latents(job, ref, missing), job.preset.latent_names))
    return tasks, done


def _record(sink: LooseSink | ShardSink, result: ObjectResult, summary: RenderSummary) -> None:
    sink.accept(result)
    summary.images_rendered += len(result.views)
    if result.device:
        summary.devices.add(result.device)
    if result.error:
        summary.failures[result.key] = result.error
    if result.warnings:
        summary.warnings[result.key] = result.warnings


def _write_failures(job: RenderJob, summary: RenderSummary) -> None:
    lines = [json.dumps({"object": key, "severity": "error", "reason": reason}) for key, reason in sorted(summary.failures.items())]
    lines += [
        json.dumps({"object": key, "severity": "warning", "reason": reason})
        for key, reasons in sorted(summary.warnings.items())
        for reason in reasons
    ]
    path = failures_path(job.out, job.job_index, job.num_jobs)
    if lines:
        write_atomic(path, ("\n".join(lines) + "\n").encode())
    else:
        path.unlink(missing_ok=True)


def _run_pool(job: RenderJob, sink: LooseSink | ShardSink, tasks: list[ObjectTask], summary: RenderSummary, progress: tqdm) -> None:
    """Render tasks on Blender workers (`render.pool`), at most one object in flight per worker.

    An object that runs past the job's time limit has its worker killed and replaced, and is recorded
    as timed out. If a worker dies (a Blender crash, out of memory), its object is retried once in a
    fresh worker, and reported as failed if that one dies too.
    """
    options = WorkerOptions(job.settings, job.threads_per_worker(), job.max_faces, job.max_mesh_mb, job.passes)
    deaths: dict[str, int] = {}

    def retry_after_death(task: ObjectTask) -> bool:
        deaths[task.ref.key] = deaths.get(task.ref.key, 0) + 1
        return deaths[task.ref.key] < 2

    views = {task.ref.key: len(task.views) for task in tasks}
    pool = WorkerPool(job.worker_count(), options, job.time_limit(), job.recycle_every)
    for result in pool.run(tasks, retry_after_death):
        _record(sink, result, summary)
        if result.error:
            _write_failures(job, summary)
            progress.write(f"failed: {result.key}: {result.error.splitlines()[0]}")
        progress.update(views[result.key])


EARLIER = "(in an earlier run; --retry-failed renders it again)"


def _carried_failures(job: RenderJob, tasks: list[ObjectTask]) -> tuple[list[ObjectTask], dict[str, str]]:
    """Tasks a resume skips (objects a previous run stopped: timed out, or their worker died), unless --retry-failed."""
    path = failures_path(job.out, job.job_index, job.num_jobs)
    if job.retry_failed or not path.is_file():
        return tasks, {}
    stopped = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a damaged line: that object is simply rendered again
            continue
        if isinstance(record, dict) and record.get("severity") == "error" and is_stopped_reason(record.get("reason", "")):
            stopped[record["object"]] = record["reason"]
    carried = {task.ref.key: stopped[task.ref.key] for task in tasks if task.ref.key in stopped}
    return [task for task in tasks if task.ref.key not in carried], carried


def run(job: RenderJob) -> RenderSummary:
    """Render every missing view of the job's objects; write the manifest and the failure list."""
    start = time.perf_counter()
    job.out.mkdir(parents=True, exist_ok=True)
    check_resumable(job)
    check_siblings(job)
    # This job's own records only: the other jobs of an array write theirs into the same folder.
    remove_temporary(
        job.out, (manifest_path(job.out, job.job_index, job.num_jobs).name, failures_path(job.out, job.job_index, job.num_jobs).name)
    )
    sink = make_sink(job)
    renderer = {"engine": "CYCLES", "blender": _blender_version(), "device_requested": job.settings.device}
    write_json_atomic(manifest_path(job.out, job.job_index, job.num_jobs), _manifest(job, None, "running", renderer))
    try:
        sink.prepare(job.objects)
    except ValueError as error:
        raise RenderJobError(str(error)) from None
    tasks, done = plan(job, sink)
    tasks, carried = _carried_failures(job, tasks)  # read before this run rewrites the failure list
    summary = RenderSummary(objects=len(job.objects), images_skipped=done)
    for key, reason in carried.items():  # recorded again (and left out of their shards), not rendered
        note = "" if reason.endswith(EARLIER) else f" {EARLIER}"
        _record(sink, ObjectResult(key, error=reason + note), summary)
    todo = sum(len(t.views) for t in tasks)
    with tqdm(total=todo, unit="img", desc="render", dynamic_ncols=True, disable=todo == 0) as progress:
        if tasks:
            _run_pool(job, sink, tasks, summary, progress)
    _write_failures(job, summary)
    summary.seconds = time.perf_counter() - start
    status = "complete" if not summary.failures else "incomplete"
    manifest = _manifest(job, summary, status, renderer | {"devices_used_this_run": sorted(summary.devices)})
    write_json_atomic(manifest_path(job.out, job.job_index, job.num_jobs), manifest)
    sink.close(manifest)
    return summary


@dataclass(frozen=True)
class Estimate:
    """A dry run's forecast for a job."""

    images_total: int
    images_todo: int
    seconds_per_image: float  # per worker, measured
    bytes_per_image: float  # JPEG + latent file + passes
    workers: int

    @property
    def eta_seconds(self) -> float:
        """Wall-clock time for the missing images with all workers busy."""
        return self.images_todo * self.seconds_per_image / self.workers

    @property
    def disk_bytes(self) -> float:
        """Disk space of the whole output."""
        return self.images_total * self.bytes_per_image


def estimate(job: RenderJob, calibration_views: int = 3) -> Estimate:
    """Forecast images, disk and time from a short calibration render of the first object's first views (nothing written)."""
    tasks, _ = plan(job, make_sink(job))
    todo = sum(len(t.views) for t in tasks)
    ref = next(o for o in job.objects if views_of(job, o))
    views = view_latents(job, ref, views_of(job, ref)[:calibration_views])  # the views it will render, as it will render them
    total = sum(len(views_of(job, o)) for o in job.objects)
    options = WorkerOptions(job.settings, job.threads_per_worker(), job.max_faces, job.max_mesh_mb, job.passes)
    tasks = [ObjectTask(ref, views[:1], job.preset.latent_names), ObjectTask(ref, views, job.preset.latent_names)]  # warm-up, then timed
    *_, result = WorkerPool(1, options, job.time_limit()).run(tasks, on_death=lambda task: False)  # one worker: in order
    if result.error:
        raise RenderJobError(f"calibration render of {ref.key} failed: {result.error}")
    latent_bytes = len(writer.npy_bytes(np.zeros(len(job.preset.latent_names))))
    jpeg_bytes = float(np.mean([len(v.jpeg) + sum(len(p) for p in v.passes.values()) for v in result.views]))
    return Estimate(
        images_total=total,
        images_todo=todo,
        seconds_per_image=result.seconds / len(views),
        bytes_per_image=jpeg_bytes + latent_bytes,
        workers=job.worker_count(),
    )


def _blender_version() -> str:
    """bpy's version, read from the package metadata (the main process never imports bpy)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bpy")
    except PackageNotFoundError:
        return "not installed"
