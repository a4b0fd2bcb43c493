"""The jobs of one render array share one plan: a job that disagrees with its siblings' is refused before it writes.

Every job records the plan's identity in what it writes: its manifest (`_manifest.jobIIIII-of-NNNNN.json`: the
job count in the name, the settings that change the images inside), its shard plan (`_part.jobIIIII-of-NNNNN.json`:
the dataset's name, split and labels) and its shards' names (`-jobIIIII-of-NNNNN-`). A job started with another
`--num-jobs` than the array already in the folder would plan other objects into shards of the same names, and one
rendered at another `--resolution` or seed would make a set that is not one dataset: both are refused with the
command that fixes it.
"""

from __future__ import annotations

import json
from pathlib import Path

from iebench.dataset.description import SAME_IN_EVERY_JOB
from iebench.dataset.parts import PART_GLOB, SAME_IN_EVERY_PART

MANIFEST_GLOB = "_manifest*.json"


class ArrayPlanError(ValueError):
    """A job whose plan differs from its siblings' in the same output folder; the message says how to fix it."""


def _semantic(value):
    """A value without the prose (a preset's description and notes may be reworded between versions)."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in ("description", "notes")}
    return value


def differing(keys: tuple[str, ...], mine: dict, theirs: dict) -> list[str]:
    """The keys on which two records differ, the render settings named one by one ("render settings (resolution)")."""
    named = []
    for key in keys:
        a, b = _semantic(mine.get(key)), _semantic(theirs.get(key))
        if a == b:
            continue
        if key == "render" and isinstance(a, dict) and isinstance(b, dict):
            named.append(f"render settings ({', '.join(sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k)))})")
        else:
            named.append(key)
    return named


def _records(out: Path, pattern: str, own: Path) -> list[tuple[Path, dict]]:
    """The siblings' records (manifests or shard plans) in OUT, this job's own left out; unreadable ones are skipped
    (the job that wrote them checks its own when it resumes)."""
    found = []
    for path in sorted(Path(out).glob(pattern)):
        if path.name == own.name:
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            found.append((path, record))
    return found


def _rerun_hint(out: Path, num_jobs: int, shards: bool) -> str:
    """How to start over with another job count: the old array's records (and shards) removed, or a new folder."""
    if num_jobs == 1:
        old = f"{out}/_manifest.json {out}/_part.json" + (f" and the shards in {out}" if shards else "")
    else:
        tail = f"-of-{num_jobs:05d}"
        old = f"{out}/_manifest.job*{tail}.json" + (f" {out}/_part.job*{tail}.json {out}/*-job*{tail}-*" if shards else "")
    return f"to re-plan, remove the old array's files first (rm {old}) or render into a new folder"


def check_sibling_manifests(out: Path, fingerprint: dict, own: Path, shards: bool) -> None:
    """Refuse a job whose job count or image settings differ from another job's manifest in OUT.

    `fingerprint` is what this job's manifest records (preset, seed, views, render settings, job index and count...).
    """
    for path, manifest in _records(out, MANIFEST_GLOB, own):
        theirs = manifest.get("num_jobs", 1)
        if theirs != fingerprint["num_jobs"]:
            raise ArrayPlanError(
                f"{out} holds a job of a {theirs}-job array ({path.name}), and this job is planned for {fingerprint['num_jobs']}: "
                f"the arrays would split the objects differently; use --num-jobs {theirs} (and --job-index 0..{theirs - 1}); "
                + _rerun_hint(out, theirs, shards)
            )
        other = differing(tuple(k for k in SAME_IN_EVERY_JOB if k != "num_jobs"), fingerprint, manifest)
        if other:
            raise ArrayPlanError(
                f"{out} holds a job rendered with other {', '.join(other)} ({path.name}): every job of an array renders with the "
                f"same options; run this job with those of {path.name}, or render into a new folder"
            )


def check_sibling_parts(out: Path, part: dict, own: Path) -> None:
    """Refuse a render job's shard plan that differs from a sibling's (dataset name, split, labels, shard seed...)."""
    for path, theirs in _records(out, PART_GLOB, own):
        count = theirs.get("plan", {}).get("num_jobs", 1)
        if count != part["plan"]["num_jobs"]:
            raise ArrayPlanError(
                f"{out} holds the shard plan of a {count}-job array ({path.name}), and this job is planned for "
                f"{part['plan']['num_jobs']}: use --num-jobs {count}; " + _rerun_hint(out, count, shards=True)
            )
        other = differing(SAME_IN_EVERY_PART, part, theirs)
        if other:
            raise ArrayPlanError(
                f"{out} holds a job's shard plan with other {', '.join(other)} ({path.name}): every job of an array writes one "
                f"dataset; run this job with the options of that one (--name, --val-fraction, --split-seed, --shard-seed...), "
                "or render into a new folder"
            )
