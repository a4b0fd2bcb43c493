"""Seconds per training step of a mini scale's configuration: DataLoader workers x memory layout x CPU precision, side by side.

Trains one method (`--method`) at the scale for a few epochs with each combination, in a rotating order over several rounds
(a busy machine then slows every combination alike), and reports the median seconds per step, start-up
included as a user pays it. `iebench.baselines.trainer.MEMORY_FORMAT`, the mini's `workers` and its `cpu_bf16`
come from this.

    python bench/train_step.py SHARDS [--scale laptop] [--method sie] [--epochs 4] [--rounds 2] [--workers 2 0]
        [--layouts contiguous channels-last] [--precisions fp32 bf16]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from iebench.baselines import trainer
from iebench.baselines.precision import native_cpu_bf16
from iebench.orchestration.mini import SCALES, train_config

LAYOUTS = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last}
PRECISIONS = {"fp32": False, "bf16": True}  # the value of `cpu_bf16`


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", type=Path, help="packed shards, e.g. a mini's OUT/shards")
    parser.add_argument("--scale", default="laptop", choices=sorted(SCALES))
    parser.add_argument("--method", default="sie")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 0])
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    args = parser.parse_args()
    combos = [(w, layout, precision) for w in args.workers for layout in args.layouts for precision in args.precisions]
    seconds: dict[tuple[int, str, str], list[float]] = {c: [] for c in combos}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for workers, layout, precision in combos[round_ % len(combos) :] + combos[: round_ % len(combos)]:
                trainer.MEMORY_FORMAT = LAYOUTS[layout]
                run = Path(tmp) / f"run-{workers}-{layout}-{precision}-{round_}"
                config = train_config(SCALES[args.scale], args.method, 0, args.shards, run)
                config = dataclasses.replace(config, epochs=args.epochs, workers=workers, cpu_bf16=PRECISIONS[precision])
                start = time.perf_counter()
                result = trainer.train(config, progress=False)
                steps = sum(1 for line in (result.run / trainer.METRICS_NAME).read_text().splitlines() if '"kind": "step"' in line)
                seconds[(workers, layout, precision)].append((time.perf_counter() - start) / max(steps, 1))
    base = statistics.median(seconds[combos[0]])
    print(
        f"{args.scale} scale, {args.method}, {args.epochs} epochs x {args.rounds} rounds; {platform.processor() or platform.machine()}, torch {torch.__version__}"
    )
    print(f"native bfloat16: {native_cpu_bf16()}")
    print("| workers | layout | precision | s / step (median) | vs first row |\n|---|---|---|---|---|")
    for (workers, layout, precision), values in seconds.items():
        median = statistics.median(values)
        print(f"| {workers} | {layout} | {precision} | {median:.3f} | {base / median:.2f}x |")


if __name__ == "__main__":
    main()
