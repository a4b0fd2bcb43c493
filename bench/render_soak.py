"""Soak: memory over a long render (Blender workers recycled every N objects) and the pack that follows.

Renders procedural objects with the real renderer (`render.job.run`, loose layout), then packs them
(`dataset.pack.pack`), while a thread samples every process of the run from /proc: the main process,
each Blender worker and each pack worker, its resident memory (VmRSS) every `--interval` seconds,
with the number of objects finished so far. Long BlenderProc runs are known to grow; here a worker
purges what each object brought and is replaced every `--recycle-every` objects.

Prints (1) memory by tenth of the run: the largest worker's RSS and the main process's, with the
workers alive; (2) each worker's life: RSS a tenth into it (after start-up) and at its end, and the growth per
object it rendered (objects a worker rendered are estimated from the run's rate while it lived).

    python bench/render_soak.py [--objects 1000] [--views 8] [--resolution 64] [--samples 8] [--workers 2] [--recycle-every 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from synthetic import procedural_objects  # bench/synthetic.py (scripts run from bench/)

from iebench.cores import available_cores
from iebench.dataset.pack import PackOptions, pack
from iebench.layout import latent_name
from iebench.presets import get_preset
from iebench.render.job import RenderJob, run
from iebench.render.settings import RenderSettings


def _children() -> dict[int, int]:
    """pid -> parent pid of every process on the machine."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return parents


def descendants(root: int) -> list[int]:
    """Every process below `root`."""
    parents = _children()
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process in MiB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def kind(pid: int) -> str:
    """What a process of the run is, from its command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "resource_tracker" in command:
        return "tracker"
    return "worker" if "multiprocessing" in command or "spawn" in command else "other"


@dataclass
class Sample:
    seconds: float
    phase: str
    done: int  # objects rendered (render) or shards written (pack)
    main: float
    workers: dict[int, float] = field(default_factory=dict)


class Sampler(threading.Thread):
    """Samples the run's processes every `interval` seconds until stopped."""

    def __init__(self, interval: float, progress) -> None:
        super().__init__(daemon=True)
        self.interval, self.progress, self.phase = interval, progress, "render"
        self.samples: list[Sample] = []
        self.stopped = threading.Event()
        self.start_time = time.perf_counter()

    def run(self) -> None:
        me = os.getpid()
        while not self.stopped.is_set():
            workers = {}
            for pid in descendants(me):
                if kind(pid) == "worker":
                    value = rss_mib(pid)
                    if value is not None:
                        workers[pid] = value
            self.samples.append(
                Sample(time.perf_counter() - self.start_time, self.phase, self.progress(self.phase), rss_mib(me) or 0.0, workers)
            )
            self.stopped.wait(self.interval)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--recycle-every", type=int, default=200, help="Objects per worker before it is replaced (the renderer's default).")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--out", type=Path, help="Keep the objects, render and shards here (default: a temporary folder).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.out or Path(tmp)
        objects_root, render_out, shards = base / "objects", base / "render", base / "shards"
        refs = procedural_objects(objects_root, args.objects)
        settings = RenderSettings(resolution=args.resolution, samples=args.samples, denoiser="off")
        job = RenderJob(
            objects=refs,
            out=render_out,
            preset=get_preset("3diebench"),
            seed=0,
            views=args.views,
            settings=settings,
            workers=args.workers,
            recycle_every=args.recycle_every,
            source_root=objects_root,
        )

        def progress(phase: str) -> int:
            if phase == "render":
                return sum(1 for _ in render_out.glob(f"*/*/{latent_name(args.views - 1)}")) if render_out.exists() else 0
            return sum(1 for _ in shards.glob("*.tar")) if shards.exists() else 0

        sampler = Sampler(args.interval, progress)
        sampler.start()
        start = time.perf_counter()
        summary = run(job)
        render_seconds = time.perf_counter() - start
        sampler.phase = "pack"
        start = time.perf_counter()
        info, _ = pack(render_out, shards, PackOptions(name="soak", shard_size_mb=1, workers=args.workers))
        pack_seconds = time.perf_counter() - start
        time.sleep(args.interval)
        sampler.stopped.set()
        sampler.join()
    if summary.failures:
        print(f"warning: {len(summary.failures)} objects failed to render")
    report(sampler.samples, args, len(refs), render_seconds, pack_seconds, info)


def report(samples: list[Sample], args, objects: int, render_seconds: float, pack_seconds: float, info: dict) -> None:
    render = [s for s in samples if s.phase == "render"]
    packing = [s for s in samples if s.phase == "pack"]
    print(
        f"\n{objects} procedural objects x {args.views} views at {args.resolution} px, {args.samples} spp, no denoiser; "
        f"{args.workers} Blender workers recycled every {args.recycle_every} objects; RSS sampled every {args.interval} s; "
        f"{platform.machine()}, {available_cores()} cores. Render {render_seconds:.0f} s, pack {pack_seconds:.0f} s "
        f"({sum(info['splits'][s]['objects'] for s in info['splits'])} objects in "
        f"{sum(len(info['splits'][s]['shards']) for s in info['splits'])} shards).\n"
    )
    print("| phase | objects done | workers alive (distinct so far) | largest worker RSS (MiB) | main process RSS (MiB) |")
    print("|---|---|---|---|---|")
    seen: set[int] = set()
    for tenth in range(10):
        lo, hi = objects * tenth / 10, objects * (tenth + 1) / 10
        window = [s for s in render if lo <= s.done < hi or (tenth == 9 and s.done >= hi)]
        if not window:
            continue
        for s in window:
            seen |= set(s.workers)
        alive = max(len(s.workers) for s in window)
        largest = max((max(s.workers.values()) for s in window if s.workers), default=0.0)
        print(f"| render | {int(lo)}-{int(hi)} | {alive} ({len(seen)}) | {largest:.0f} | {max(s.main for s in window):.0f} |")
    if packing:
        largest = max((max(s.workers.values()) for s in packing if s.workers), default=0.0)
        alive = max(len(s.workers) for s in packing)
        print(f"| pack | all | {alive} | {largest:.0f} | {max(s.main for s in packing):.0f} |")
    print(
        "\n| render worker | lived (s) | objects (est.) | RSS a tenth into its life (MiB) | RSS at its end (MiB) | growth per object (MiB) |"
    )
    print("|---|---|---|---|---|---|")
    rate = objects / max(render_seconds, 1e-9) / max(args.workers, 1)  # objects per second per worker
    lives: dict[int, list[tuple[float, float]]] = {}
    for s in render:
        for pid, value in s.workers.items():
            lives.setdefault(pid, []).append((s.seconds, value))
    short = 0
    for number, (_pid, life) in enumerate(sorted(lives.items(), key=lambda item: item[1][0][0])):
        seconds = life[-1][0] - life[0][0]
        estimated = max(1.0, seconds * rate)
        if len(life) < 10 or estimated < 10:
            short += 1  # the run's tail: too short a life to measure a growth
            continue
        first, last = life[max(2, len(life) // 10)][1], life[-1][1]  # after start-up: Blender loaded, first objects done
        print(f"| {number} | {seconds:.0f} | {estimated:.0f} | {first:.0f} | {last:.0f} | {(last - first) / estimated:+.3f} |")
    if short:
        print(f"\n({short} workers of the run's tail lived too short to measure)")


if __name__ == "__main__":
    main()
