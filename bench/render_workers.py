"""Render throughput by processes x threads: which split of this machine's cores renders a batch of objects fastest.

Renders the same procedural objects with each split (worker processes x Cycles threads per worker, every core
used once), in a rotating order over several rounds so that a busy machine slows every split alike, and
reports images per second, wall clock including each worker's start (Blender's import, the scene) as a user
sees it. `RenderJob.worker_count()` takes its default from this measurement.

    python bench/render_workers.py [--objects 8] [--views 6] [--resolution 64 256] [--rounds 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from synthetic import procedural_objects  # bench/synthetic.py (scripts run from bench/)

from iebench.cores import available_cores
from iebench.presets import get_preset
from iebench.render.job import RenderJob, run
from iebench.render.settings import RenderSettings


def splits(cores: int) -> list[tuple[int, int]]:
    """(workers, threads) pairs that use every core once: cores x 1, ..., 1 x cores."""
    return [(cores // threads, threads) for threads in range(1, cores + 1) if cores % threads == 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=8)
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--resolution", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    cores = available_cores()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "objects"
        objects = procedural_objects(root, args.objects)
        seconds: dict[tuple[int, int, int], list[float]] = {}
        for round_ in range(args.rounds):
            for resolution in args.resolution:
                order = splits(cores)
                order = order[round_ % len(order) :] + order[: round_ % len(order)]
                for workers, threads in order:
                    out = Path(tmp) / f"r{round_}-{resolution}-{workers}x{threads}"
                    job = RenderJob(
                        objects=objects,
                        out=out,
                        preset=get_preset("3diebench"),
                        seed=0,
                        views=args.views,
                        settings=RenderSettings(resolution=resolution),
                        workers=workers,
                        threads=threads,
                        source_root=root,
                    )
                    start = time.perf_counter()
                    run(job)
                    seconds.setdefault((resolution, workers, threads), []).append(time.perf_counter() - start)
                    print(
                        f"round {round_}: {resolution} px, {workers} x {threads}: {seconds[resolution, workers, threads][-1]:.1f} s",
                        flush=True,
                    )
    images = args.objects * args.views
    lines = [
        f"{args.objects} procedural objects x {args.views} views, default settings (24 spp), bpy {version('bpy')}, "
        f"{platform.machine()} with {cores} cores; best of {args.rounds} rounds in rotating order",
        "",
        "| resolution | processes x threads | images/s | vs fastest |",
        "|---|---|---|---|",
    ]
    for resolution in args.resolution:
        rates = {(w, t): images / min(s) for (r, w, t), s in seconds.items() if r == resolution}
        best = max(rates.values())
        lines += [f"| {resolution} px | {w} x {t} | {rate:.2f} | {rate / best:.2f} |" for (w, t), rate in rates.items()]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
