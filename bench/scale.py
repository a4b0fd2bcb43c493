"""Paper scale: every stage of iebench at 1,000, 10,000 and 52,472 objects x 50 views, timed, with peak memory and growth.

Synthetic data (labelled so in every table): 3DIEBench's member count (50 views and their latents per object, 55
classes) with JPEG bytes reused from a pool of realistic views (about 6.5 KB at 256 px). The loose layout is made at
the smaller sizes only; the largest set is written straight to shards through the format's own writer (the same
shards `iebench pack` writes). Each stage runs in a process of its own, so its peak memory is its own (VmHWM).

    python bench/scale.py --work /big/disk/scale                 # every size (the largest writes about 17 GB)
    python bench/scale.py --work /tmp/scale --sizes 200,2000      # a quick look

Results accumulate in WORK/results.json (a stage already measured is not run again; --again reruns them) and the
tables are printed from it. Stages, per size: loose (make the layout), pack, write (straight to shards), finalize,
verify, verify --quick, info; the loaders' open (cold and warm cache), their memory and pickled size; an epoch of
PairDataset with 0, 4, 8, 16 workers, fork and spawn; the streaming loader's memory over an epoch; render planning of
a ShapeNet-layout tree of tiny meshes; finalize of a 100- and a 1,000-task render array.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = (1_000, 10_000, 52_472)
VIEWS = 50
LOOSE_UP_TO = 10_000  # the loose layout (2 files a view) is made up to this size; larger sets go straight to shards
WORKER_COUNTS = (0, 4, 8, 16)
POOL = 64  # distinct synthetic JPEGs, reused
HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------- synthetic data


def _jpeg_pool(resolution: int) -> list[bytes]:
    sys.path.insert(0, str(HERE))
    from synthetic import synthetic_view

    rng = np.random.default_rng(0)
    return [synthetic_view(rng, resolution) for _ in range(POOL)]


def _ids(objects: int) -> list[tuple[str, str]]:
    """(synset, model_id) of `objects` objects over ShapeNet's 55 synsets, in ShapeNet-like uneven proportions."""
    from iebench.classes import SHAPENET_SYNSETS

    synsets = sorted(SHAPENET_SYNSETS)
    weights = np.linspace(3.0, 0.2, len(synsets))  # the largest class about 15 times the smallest, as in ShapeNet
    counts = np.maximum(1, np.floor(weights / weights.sum() * objects)).astype(int)
    counts[0] += objects - counts.sum()
    return [(synset, f"{i:08x}{n:024x}") for i, (synset, count) in enumerate(zip(synsets, counts)) for n in range(count)]


def _latents(preset, rng: np.random.Generator, views: int) -> np.ndarray:
    """(views, k) latents uniform over each factor's first interval (inside the preset's ranges)."""
    lows = np.array([f.intervals[0][0] for f in preset.factors])
    highs = np.array([f.intervals[0][1] for f in preset.factors])
    return rng.uniform(lows, highs, (views, len(lows)))


def make_loose(root: Path, objects: int, resolution: int) -> dict:
    """The original layout: image_<i>.jpg and latent_<i>.npy per view, synthetic."""
    from iebench.layout import image_path, latent_path
    from iebench.presets import get_preset

    pool, preset, rng = _jpeg_pool(resolution), get_preset("3diebench"), np.random.default_rng(1)
    total = 0
    for number, (synset, model_id) in enumerate(_ids(objects)):
        folder = root / synset / model_id
        folder.mkdir(parents=True, exist_ok=True)
        for view, row in enumerate(_latents(preset, rng, VIEWS)):
            jpeg = pool[(number * VIEWS + view) % POOL]
            image_path(folder, view).write_bytes(jpeg)
            np.save(latent_path(folder, view), row)
            total += len(jpeg) + 128 + 7 * 8
    return {"bytes": total}


def _write_group(args: tuple) -> int:
    """Write one planned shard of synthetic samples (in a worker)."""
    out, shard, ids, labels, resolution, seed = args
    from iebench.classes import class_name
    from iebench.dataset import format as fmt
    from iebench.presets import get_preset

    pool, preset, rng = _jpeg_pool(resolution), get_preset("3diebench"), np.random.default_rng(seed)
    samples = []
    for number, (synset, model_id) in enumerate(ids):
        jpegs = tuple(pool[(seed + number * VIEWS + v) % POOL] for v in range(VIEWS))
        latents = _latents(preset, rng, VIEWS)
        samples.append(
            fmt.ObjectSample(synset, model_id, labels[synset], class_name(synset), jpegs, latents, preset.latent_names, "3diebench")
        )
    fmt.write_shard(Path(out) / shard["name"], samples)
    return len(samples)


def write_shards(out: Path, objects: int, resolution: int, tasks: int = 1, per_shard: int = 300) -> dict:
    """Shards written straight through the format's writer, with the plan(s) `finalize` reads: one pack-like plan, or
    one per task of a render array."""
    from concurrent.futures import ProcessPoolExecutor

    from iebench.classes import label_map
    from iebench.cores import available_cores
    from iebench.dataset import format as fmt
    from iebench.dataset.parts import new_part, part_path, shard_job_suffix
    from iebench.dataset.splits import assign_splits, split_record
    from iebench.files import write_json_atomic
    from iebench.presets import get_preset

    out.mkdir(parents=True, exist_ok=True)
    ids = _ids(objects)
    split_of = assign_splits(ids, split_files=None, val_fraction=0.2, seed=0)
    preset = get_preset("3diebench")
    synsets = [s for s, _ in ids]
    labels = label_map(synsets)
    work = []
    for task in range(tasks):
        mine = ids[task::tasks]
        suffix = shard_job_suffix(task, tasks)
        shards = []
        for split in fmt.SPLITS:
            members = sorted((i for i in mine if split_of[i] == split), key=lambda i: fmt.sample_key(*i))
            for n, start in enumerate(range(0, len(members), per_shard)):
                group = members[start : start + per_shard]
                shard = {"name": fmt.shard_name("scale", split, n, suffix), "split": split, "keys": [fmt.sample_key(*i) for i in group]}
                shards.append(shard)
                work.append((str(out), shard, group, labels, resolution, len(work)))
        part = new_part(
            name="scale",
            views=VIEWS,
            resolution=resolution,
            latent_names=preset.latent_names,
            preset=preset.to_json(),
            render_manifest=None,
            source={"kind": "synthetic", "path": "bench/scale.py", "procedural": False},
            synsets=synsets,
            split=split_record(split_files=None, val_fraction=0.2, seed=0),
            shard_seed=0,
            shard_size_mb=per_shard * VIEWS * 6.5 / 1024,
            skipped=[],
            shards=shards,
            plan={"job_index": task, "num_jobs": tasks} if tasks > 1 else None,
        )
        write_json_atomic(part_path(out, suffix if tasks > 1 else ""), part)
    with ProcessPoolExecutor(available_cores()) as pool:
        written = sum(pool.map(_write_group, work, chunksize=1))
    return {"objects": written, "shards": len(work)}


def make_meshes(root: Path, objects: int) -> dict:
    """A ShapeNet-layout tree of tiny meshes (a tetrahedron each), for render planning."""
    tetrahedron = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
    for synset, model_id in _ids(objects):
        folder = root / synset / model_id / "models"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model_normalized.obj").write_text(tetrahedron)
    return {}


# ---------------------------------------------------------------- stages (each in a process of its own)


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _pss(pid: int, under: str) -> tuple[float, float]:
    """(total PSS, PSS of the mappings of files under `under`) of a process, in MB."""
    total = mapped = 0
    inside = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and "-" in fields[0] and len(fields[1]) == 4:  # a mapping's header line (anonymous ones name no file)
            inside = len(fields) >= 6 and fields[5].startswith(under)
        elif fields and fields[0] == "Pss:":
            total += int(fields[1])
            mapped += int(fields[1]) if inside else 0
    return total / 1024, mapped / 1024


def stage_loader_open(shards: Path, cache: Path) -> dict:
    """PairDataset's open with a cold and a warm member-table cache: seconds, memory added, pickled bytes, index bytes."""
    import pickle

    os.environ["IEBENCH_CACHE"] = str(cache)
    shutil.rmtree(cache, ignore_errors=True)
    import torch  # noqa: F401  (imported before the baseline: the loaders need it anyway)

    from iebench.loaders import PairDataset

    before = _rss_mb()
    start = time.perf_counter()
    data = PairDataset(shards, "train", seed=0)
    cold = time.perf_counter() - start
    added_cold = _rss_mb() - before
    del data
    start = time.perf_counter()
    data = PairDataset(shards, "train", seed=0)
    warm = time.perf_counter() - start
    members = len(data) * len(data.source.table.fields)
    return {
        "objects": len(data),
        "open_cold_s": cold,
        "open_warm_s": warm,
        "rss_added_cold_mb": added_cold,
        "index_bytes_per_member": data.source.table.nbytes / members,
        "pickled_bytes": len(pickle.dumps(data)),
    }


def stage_loader_epoch(shards: Path, cache: Path, workers: int, method: str, batch: int = 256) -> dict:  # noqa: C901
    """One epoch of PairDataset through make_loader: first batch, pairs/s, and the workers' memory at its end."""
    os.environ["IEBENCH_CACHE"] = str(cache)
    from iebench.loaders import PairDataset, make_loader

    data = PairDataset(shards, "train", seed=0)
    batch = min(batch, len(data) // 2)
    loader = make_loader(data, batch_size=batch, num_workers=workers, start_method=method if workers else None, persistent_workers=False)
    start = time.perf_counter()
    first, pairs, pss = None, 0, {}
    iterator = iter(loader)
    for step, batch_data in enumerate(iterator):
        if first is None:
            first = time.perf_counter() - start
        pairs += len(batch_data["key"])
        if step == len(loader) - 2 or len(loader) == 1:  # the workers at the end of the epoch, still alive
            pids = [w.pid for w in getattr(iterator, "_workers", [])] or [os.getpid()]
            pss = {pid: _pss(pid, str(cache)) for pid in pids}
    seconds = time.perf_counter() - start
    index_mb = data.source.table.nbytes / 2**20
    return {
        "workers": workers,
        "method": method if workers else "-",
        "first_batch_s": first,
        "pairs_per_s": pairs / seconds,
        "pairs": pairs,
        "pss_total_mb": sum(p[0] for p in pss.values()),
        "pss_index_mb": sum(p[1] for p in pss.values()),
        "index_mb": index_mb,
    }


def stage_stream(shards: Path, every: int = 2000) -> dict:
    """The streaming loader over a whole epoch: its RSS every `every` items."""
    from iebench.loaders import StreamingPairs

    trace, count, start = [], 0, time.perf_counter()
    for count, _ in enumerate(StreamingPairs(shards, "train", seed=0), 1):
        if count % every == 0:
            trace.append((count, _rss_mb()))
    trace.append((count, _rss_mb()))
    return {"items": count, "seconds": time.perf_counter() - start, "rss_trace_mb": trace}


def stage_decode_floor(resolution: int, decodes: int = 4000) -> dict:
    """One core's strict JPEG decode rate (libjpeg-turbo through torchvision, as verify and the loaders decode)."""
    from iebench.jpeg import decode_jpeg_strict

    pool = _jpeg_pool(resolution)
    decode_jpeg_strict(pool[0])
    start = time.perf_counter()
    for i in range(decodes):
        decode_jpeg_strict(pool[i % POOL])
    seconds = time.perf_counter() - start
    return {"images_per_s": decodes / seconds, "kb_per_image": sum(map(len, pool)) / POOL / 1024}


def stage_render_plan(meshes: Path, out: Path, num_jobs: int) -> dict:
    """Planning a render of every mesh: scan, select, partition, shard plan (job 0 of an array) and every view's latents."""
    from iebench.dataset.pack import PackOptions
    from iebench.render import job as render_job
    from iebench.render.request import RenderRequest, prepare_job

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    request = RenderRequest(src=meshes, out=out, shards=PackOptions(name="plan"), job_index=0, num_jobs=num_jobs, views=VIEWS)
    job = prepare_job(request)
    prepared = time.perf_counter() - start
    render_job.check_resumable(job)
    tasks, _ = render_job.plan(job, render_job.make_sink(job))
    return {"objects": len(job.objects), "prepare_s": prepared, "seconds": time.perf_counter() - start, "tasks": len(tasks)}


def _pack(root: Path, out: Path) -> dict:
    from iebench.dataset.pack import PackOptions, pack

    shutil.rmtree(out, ignore_errors=True)
    info, _ = pack(root, out, PackOptions(name="scale"))
    return {"shards": sum(len(s["shards"]) for s in info["splits"].values())}


def _write(out: Path, objects: int, resolution: int, tasks: int = 1, per_shard: int = 300) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    return write_shards(out, objects, resolution, tasks, per_shard)


def _finalize(shards: Path) -> dict:
    from iebench.dataset.finalize import finalize

    info = finalize(shards)
    return {"objects": sum(s["objects"] for s in info["splits"].values())}


def _verify(shards: Path, quick: bool = False) -> dict:
    from iebench.dataset.verify import verify

    problems = verify(shards, progress=False, quick=quick)
    return {"problems": len(problems), "first": problems[:3]}


def _info(shards: Path) -> dict:
    subprocess.run([sys.executable, "-m", "iebench.cli", "info", str(shards)], check=True, capture_output=True)
    return {}


STAGES = {
    "decode-floor": stage_decode_floor,
    "loose": make_loose,
    "pack": _pack,
    "write": _write,
    "finalize": _finalize,
    "verify": _verify,
    "info": _info,
    "meshes": make_meshes,
    "render-plan": stage_render_plan,
    "loader-open": stage_loader_open,
    "loader-epoch": stage_loader_epoch,
    "stream": stage_stream,
}
PATH_ARGS = ("root", "out", "shards", "cache", "meshes")


def run_stage(name: str, args: dict) -> dict:
    """Run one stage in this process: its result, seconds and peak memory."""
    args = {k: Path(v) if k in PATH_ARGS else v for k, v in args.items()}
    start = time.perf_counter()
    result = STAGES[name](**args)
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(), **result}


# ---------------------------------------------------------------- the plan and the tables


class Runner:
    """Runs stages in child processes and keeps their results in WORK/results.json."""

    def __init__(self, work: Path, again: bool) -> None:
        self.work, self.path = work, work / "results.json"
        self.results = {} if again or not self.path.is_file() else json.loads(self.path.read_text())

    def __call__(self, label: str, stage: str, **args) -> dict:
        if label in self.results:
            return self.results[label]
        print(f"[{time.strftime('%H:%M:%S')}] {label} ...", flush=True)
        env = dict(os.environ, PYTHONPATH=str(HERE))
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--stage", stage, "--args", json.dumps(args, default=str)],
            capture_output=True,
            text=True,
            env=env,
        )
        if done.returncode:
            print(done.stdout[-2000:], done.stderr[-4000:], sep="\n")
            raise SystemExit(f"stage {label} failed")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"    {result['seconds']:.1f} s, peak {result['peak_rss_mb']:.0f} MB", flush=True)
        self.results[label] = result
        self.path.write_text(json.dumps(self.results, indent=1))
        return result


def measure(work: Path, sizes: list[int], resolution: int, again: bool, loaders_at: int) -> dict:
    """Every stage at every size (the loaders at `loaders_at` only)."""
    run = Runner(work, again)
    run("decode-floor", "decode-floor", resolution=resolution)
    for n in sizes:
        shards = work / f"shards-{n}"
        if n <= LOOSE_UP_TO:
            run(f"loose/{n}", "loose", root=work / f"loose-{n}", objects=n, resolution=resolution)
            run(f"pack/{n}", "pack", root=work / f"loose-{n}", out=shards)
        else:
            run(f"write/{n}", "write", out=shards, objects=n, resolution=resolution)
        run(f"finalize/{n}", "finalize", shards=shards)
        run(f"verify/{n}", "verify", shards=shards)
        run(f"verify-quick/{n}", "verify", shards=shards, quick=True)
        run(f"info/{n}", "info", shards=shards)
        run(f"loader-open/{n}", "loader-open", shards=shards, cache=work / f"cache-{n}")
        if n == loaders_at:
            for workers in WORKER_COUNTS:
                for method in ("fork", "spawn") if workers else ("-",):
                    run(
                        f"loader-epoch/{n}/{workers}/{method}",
                        "loader-epoch",
                        shards=shards,
                        cache=work / f"cache-{n}",
                        workers=workers,
                        method=method,
                    )
            run(f"stream/{n}", "stream", shards=shards)
    largest = max(sizes)
    run(f"meshes/{largest}", "meshes", root=work / f"meshes-{largest}", objects=largest)
    for jobs in (1, 1000):
        run(f"render-plan/{largest}/{jobs}", "render-plan", meshes=work / f"meshes-{largest}", out=work / f"plan-{jobs}", num_jobs=jobs)
    for tasks in (100, 1000):
        out = work / f"array-{tasks}"
        run(f"array-write/{tasks}", "write", out=out, objects=20 * tasks, resolution=32, tasks=tasks, per_shard=10)
        run(f"array-finalize/{tasks}", "finalize", shards=out)
    return run.results


def exponent(results: dict, stage: str, sizes: list[int]) -> str:
    """The growth exponent of a stage's time between the two largest sizes that have it: t ~ n^e."""
    have = [n for n in sizes if f"{stage}/{n}" in results]
    if len(have) < 2:
        return "-"
    a, b = have[-2], have[-1]
    return f"{math.log(results[f'{stage}/{b}']['seconds'] / results[f'{stage}/{a}']['seconds']) / math.log(b / a):.2f}"


def _stage_table(results: dict, sizes: list[int]) -> list[str]:
    lines = ["| stage | " + " | ".join(f"{n:,} objects" for n in sizes) + " | growth exponent (two largest) |"]
    lines.append("|---" * (len(sizes) + 2) + "|")
    for stage in ("loose", "pack", "write", "finalize", "verify", "verify-quick", "info"):
        cells = [f"{r['seconds']:.1f} s, {r['peak_rss_mb']:.0f} MB" if (r := results.get(f"{stage}/{n}")) else "-" for n in sizes]
        if any(c != "-" for c in cells):
            lines.append(f"| {stage} | " + " | ".join(cells) + f" | {exponent(results, stage, sizes)} |")
    lines += [
        f"\n{stage}/{n} found problems: {r['first']}"
        for stage in ("verify", "verify-quick")
        for n in sizes
        if (r := results.get(f"{stage}/{n}")) and r["problems"]
    ]
    return lines


def _rate_table(results: dict, sizes: list[int]) -> list[str]:
    from iebench.cores import available_cores

    floor = results.get("decode-floor")
    if not floor:
        return []
    cores, rate = available_cores(), floor["images_per_s"]
    lines = [
        "",
        f"Decode floor: {rate:,.0f} images/s on one core ({floor['kb_per_image']:.1f} KB JPEGs); the target for pack and verify, "
        f"80 % of {cores} cores x the floor: {0.8 * cores * rate:,.0f} views/s",
        "",
        "| views/s (share of cores x floor) | " + " | ".join(f"{n:,}" for n in sizes) + " |",
        "|---" * (len(sizes) + 1) + "|",
    ]
    for stage in ("pack", "verify", "verify-quick"):
        cells = [
            f"{n * VIEWS / r['seconds']:,.0f} ({n * VIEWS / r['seconds'] / (cores * rate):.0%})"
            if (r := results.get(f"{stage}/{n}"))
            else "-"
            for n in sizes
        ]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return lines


def _loader_tables(results: dict, sizes: list[int]) -> list[str]:
    lines = ["", "| PairDataset (train split) | " + " | ".join(f"{n:,}" for n in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    rows = (
        ("objects", "objects", "{:,}"),
        ("open, cold cache (s)", "open_cold_s", "{:.2f}"),
        ("open, warm cache (s)", "open_warm_s", "{:.3f}"),
        ("memory the cold open adds (MB)", "rss_added_cold_mb", "{:.1f}"),
        ("index bytes a member", "index_bytes_per_member", "{:.1f}"),
        ("pickled dataset (bytes)", "pickled_bytes", "{:,}"),
    )
    for title, key, form in rows:
        lines.append(
            f"| {title} | " + " | ".join(form.format(r[key]) if (r := results.get(f"loader-open/{n}")) else "-" for n in sizes) + " |"
        )
    epochs = [r for label, r in results.items() if label.startswith("loader-epoch/")]
    if epochs:
        lines += [
            "",
            "| workers | start | first batch (s) | pairs/s | summed PSS of the processes (MB) | of which the index (MB) | index size (MB) |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['workers']} | {r['method']} | {r['first_batch_s']:.2f} | {r['pairs_per_s']:,.0f} | {r['pss_total_mb']:,.0f} "
            f"| {r['pss_index_mb']:.1f} | {r['index_mb']:.1f} |"
            for r in epochs
        ]
    for label, r in results.items():
        if label.startswith("stream/"):
            trace = r["rss_trace_mb"]
            lines.append(
                f"\nStreamingPairs, {label.split('/')[1]} objects: {r['items']:,} items in {r['seconds']:.0f} s; RSS {trace[0][1]:.0f} MB "
                f"after {trace[0][0]:,} items, {max(t[1] for t in trace):.0f} MB at most, {trace[-1][1]:.0f} MB at the end"
            )
    return lines


def _planning_lines(results: dict) -> list[str]:
    lines = [
        f"\nrender planning ({label.split('/', 1)[1].replace('/', ' objects, job 0 of ')}): {r['tasks']:,} objects planned "
        f"in {r['seconds']:.1f} s (scan and select {r['prepare_s']:.1f} s), peak {r['peak_rss_mb']:.0f} MB"
        for label, r in results.items()
        if label.startswith("render-plan/")
    ]
    for tasks in (100, 1000):
        if r := results.get(f"array-finalize/{tasks}"):
            lines.append(
                f"\nfinalize of a {tasks}-task array ({20 * tasks:,} objects): {r['seconds']:.1f} s, peak {r['peak_rss_mb']:.0f} MB"
            )
    return lines


def tables(results: dict, sizes: list[int]) -> str:
    """Markdown tables of the results."""
    return "\n".join(_stage_table(results, sizes) + _rate_table(results, sizes) + _loader_tables(results, sizes) + _planning_lines(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="a folder on a disk with room (the largest size takes about 17 GB)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="object counts, comma-separated")
    parser.add_argument("--resolution", type=int, default=256, help="of the synthetic views (256: about 6.5 KB each)")
    parser.add_argument("--loaders-at", type=int, help="the size at which the loaders' epochs run [default: the largest]")
    parser.add_argument("--again", action="store_true", help="measure every stage again")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--args", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(run_stage(args.stage, json.loads(args.args))))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    args.work.mkdir(parents=True, exist_ok=True)
    from iebench.cores import available_cores

    results = measure(args.work, sizes, args.resolution, args.again, args.loaders_at or max(sizes))
    print(
        f"\nsynthetic views ({args.resolution} px JPEGs reused from a pool of {POOL}), {VIEWS} per object; "
        f"{platform.machine()}, {available_cores()} cores, Python {platform.python_version()}\n"
    )
    print(tables(results, sizes))


if __name__ == "__main__":
    main()
