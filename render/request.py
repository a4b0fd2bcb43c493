"""What `iebench render` asks for, turned into a `RenderJob`: the scene, the settings, this job's share of the objects.

`RenderRequest` holds the command's options as given; `prepare_job` resolves them in named steps: the
scene (preset, variant, factor overrides), the render settings (a recipe and overrides), the job's
place in an array (flags, else SLURM's variables), the objects (a list, or the views given latents
define), this job's partition of them, and for `--format shards` the shard plan of `_part*.json`.
`render_and_finalize` runs the job and, when it is the only one writing shards, finalizes the set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from iebench.dataset.pack import PackOptions
from iebench.object_lists import ObjectListError, read_object_list
from iebench.passes import parse_passes
from iebench.presets import Preset, PresetError, get_preset, load_variant, parse_factor_flag, with_overrides
from iebench.render.collections import read_collection
from iebench.render.job import RenderJob, RenderSummary, run
from iebench.render.objects import ObjectRef, partition, select_objects
from iebench.render.settings import QUALITIES, RenderSettings

ARRAY_INDEX_ENV = "SLURM_ARRAY_TASK_ID"
ARRAY_COUNT_ENV = "SLURM_ARRAY_TASK_COUNT"


DEFAULT_VIEWS = 50  # as 3DIEBench
MAX_VIEWS = 10_000  # per object: 200 times 3DIEBench's; a larger count is a typo (it would fill the memory planning the views)


@dataclass(frozen=True, kw_only=True)
class RenderRequest:
    """The options of `iebench render`, as given (None: not given, the recipe's or the environment's value)."""

    src: Path
    out: Path
    preset: str = "3diebench"
    variant: Path | None = None  # a TOML variant file
    factors: tuple[str, ...] = ()  # NAME=VALUE or NAME=LO:HI overrides
    views: int | None = None  # None: DEFAULT_VIEWS, or with `latents_from` every view the latents list
    seed: int = 0
    resolution: int = 256
    recipe: str = "default"  # a name of QUALITIES: draft, fast, default, original
    samples: int | None = None
    denoiser: str | None = None
    adaptive: bool | None = None
    prefilter: str | None = None
    jpeg_quality: int = 95
    legacy_bgr: bool = False
    device: str = "cpu"
    workers: int = 0
    job_index: int | None = None  # None: $SLURM_ARRAY_TASK_ID, else 0
    num_jobs: int | None = None  # None: $SLURM_ARRAY_TASK_COUNT, else 1
    object_list: Path | None = None
    max_faces: int = 5_000_000
    max_mesh_mb: float = 1024.0
    latents_from: Path | None = None  # render exactly the views these latents give
    shards: PackOptions | None = None  # write shards with these options instead of loose files
    passes: str = ""  # named passes to store besides RGB, comma-separated (iebench.passes)
    object_timeout: float | None = None  # None: `render.job.default_object_timeout`
    retry_failed: bool = False


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value and value.isdigit() else None


def array_position(job_index: int | None, num_jobs: int | None) -> tuple[int, int]:
    """(this job's index, the number of jobs): the flags, else SLURM's array variables, else (0, 1)."""
    count = num_jobs or _env_int(ARRAY_COUNT_ENV) or 1
    index = job_index if job_index is not None else (_env_int(ARRAY_INDEX_ENV) or 0)
    return index, count


def scene_of(request: RenderRequest) -> Preset:
    """The preset, or the variant built on it, with the --factor overrides."""
    scene = load_variant(request.variant, base=request.preset) if request.variant else get_preset(request.preset)
    return with_overrides(scene, dict(parse_factor_flag(f) for f in request.factors))


def settings_of(request: RenderRequest) -> RenderSettings:
    """The recipe's render settings with the options that override it."""
    base = QUALITIES[request.recipe]
    changes = {
        "resolution": request.resolution,
        "jpeg_quality": request.jpeg_quality,
        "legacy_bgr": request.legacy_bgr,
        "device": request.device,
    }
    overrides = (
        ("samples", request.samples),
        ("denoiser", request.denoiser),
        ("adaptive_sampling", request.adaptive),
        ("denoiser_prefilter", request.prefilter),
    )
    return base.replace(**changes | {k: v for k, v in overrides if v is not None})


def prepare_job(request: RenderRequest) -> RenderJob:
    """The job this process runs, every option checked before anything renders.

    Raises PresetError, ObjectSourceError, ObjectListError or ValueError (GivenLatentsError is one) with a clear message.
    """
    scene = scene_of(request)
    settings = settings_of(request)
    if request.views is not None and not 1 <= request.views <= MAX_VIEWS:
        raise ValueError(
            f"--views must be between 1 and {MAX_VIEWS:,} views per object (3DIEBench has {DEFAULT_VIEWS}), got {request.views:,}"
        )
    passes = parse_passes(request.passes)  # PassError is a ValueError
    job_index, num_jobs = array_position(request.job_index, request.num_jobs)
    listed = read_object_list(request.object_list) if request.object_list else None
    views, given = request.views or DEFAULT_VIEWS, None
    if request.latents_from is not None:
        from iebench.render.given_latents import read_given_latents

        if request.factors or request.variant:
            raise PresetError("--latents defines every factor of every view: it cannot be combined with --factor or --variant")
        if request.views is not None:
            raise ValueError("--latents lists the views to render: it cannot be combined with --views")
        given = read_given_latents(request.latents_from, scene)
        listed = sorted(set(given.views) & set(listed)) if listed is not None else sorted(given.views)
        views = max(len(v) for v in given.views.values())
    if listed == []:
        named = "--latents and --objects share" if request.latents_from is not None and request.object_list else "--objects names"
        raise ObjectListError(f"{named} no object: nothing to render")
    read_collection(request.src)  # a linked collection's record must be readable: the manifest and the card carry it
    everything = select_objects(request.src, listed)
    mine = partition(everything, job_index, num_jobs)
    plan = None
    if request.shards is not None:
        plan = _shard_plan(request, everything, mine, scene, views, job_index, num_jobs, passes)
    return RenderJob(
        objects=tuple(mine),
        out=request.out,
        preset=scene,
        seed=request.seed,
        views=views,
        settings=settings,
        workers=request.workers,
        job_index=job_index,
        num_jobs=num_jobs,
        max_faces=request.max_faces,
        max_mesh_mb=request.max_mesh_mb,
        source_root=request.src,
        shard_plan=plan,
        given=given,
        passes=passes,
        object_timeout=request.object_timeout,
        retry_failed=request.retry_failed,
    )


def _shard_plan(
    request: RenderRequest,
    everything: list[ObjectRef],
    mine: list[ObjectRef],
    scene: Preset,
    views: int,
    job_index: int,
    num_jobs: int,
    passes: tuple[str, ...],
) -> dict:
    from iebench.render.procedural import is_procedural
    from iebench.render.sinks import shard_plan

    collection = {"collection": found} if (found := read_collection(request.src)) else {}
    return shard_plan(
        everything,
        mine,
        request.shards,
        views=views,
        resolution=request.resolution,
        preset=scene.to_json(),
        latent_names=scene.latent_names,
        job_index=job_index,
        num_jobs=num_jobs,
        source={"kind": "render", "path": str(request.src), "procedural": is_procedural(request.src), **collection},
        passes=passes,
    )


def render_and_finalize(job: RenderJob) -> tuple[RenderSummary, dict | None]:
    """Run the job; when it writes shards and is the only job, finalize the set. Returns the summary and `_info.json` (or None)."""
    summary = run(job)
    if job.shard_plan is None or job.num_jobs != 1:
        return summary, None
    from iebench.dataset.finalize import finalize

    return summary, finalize(job.out)
