"""The plan of one writer of a shard set, `_part*.json`: one `iebench pack` run, or one job of a render array.

A writer records its plan before it writes a shard: what the set is (name, views, resolution, latents,
preset, labels, split), where it came from, and which objects go into which of its shards. Re-running
the writer checks its plan against the recorded one; `finalize` reads every plan once all writers are done.
"""

from __future__ import annotations

from pathlib import Path

import iebench
from iebench.classes import label_map
from iebench.dataset import format as fmt

PART_GLOB = "_part*.json"
# What every writer's plan of one shard set shares (`finalize` refuses plans that differ; so does a render job at its start).
SAME_IN_EVERY_PART = ("name", "views_per_object", "resolution", "latent_names", "passes", "preset", "labels", "split", "shard_seed")


def shard_job_suffix(job_index: int, num_jobs: int) -> str:
    """What a job of an array adds to the names of its shards: "" for a single writer, else `-jobIIIII-of-NNNNN` (the job
    count in the name, so that an array planned with another count never takes these shards for its own; its plan and
    manifest take `render.job.job_suffix`, `.jobIIIII-of-NNNNN`)."""
    return "" if num_jobs == 1 else f"-job{job_index:05d}-of-{num_jobs:05d}"


def part_path(out: Path, job: str = "") -> Path:
    """The plan of one writer: `_part.json`, or `_part<job suffix>.json` for a job of an array."""
    return Path(out) / f"_part{job}.json"


def new_part(
    *,
    name: str,
    views: int,
    resolution: int,
    latent_names: tuple[str, ...],
    preset: dict,
    render_manifest: dict | None,
    source: dict,
    synsets: list[str],
    split: dict,
    shard_seed: int,
    shard_size_mb: float,
    shards: list[dict],
    skipped: list[str],
    plan: dict | None = None,
    passes: tuple[str, ...] = (),
) -> dict:
    """A writer's plan, as `_part*.json` holds it (`plan`: a render job's own record of its share of the objects)."""
    part = {
        "format": fmt.FORMAT,
        "generator": f"iebench {iebench.__version__}",
        "name": name,
        "views_per_object": views,
        "resolution": resolution,
        "latent_names": list(latent_names),
        **({"passes": list(passes)} if passes else {}),  # only when there are passes: RGB-only plans are unchanged
        "preset": preset,
        "render_manifest": render_manifest,
        "source": source,
        "labels": label_map(synsets),
        "split": split,
        "shard_seed": shard_seed,
        "shard_size_mb": shard_size_mb,
    }
    if plan is not None:
        part["plan"] = plan
    return part | {"skipped": skipped, "shards": shards}
