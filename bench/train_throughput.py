"""Training speed of the `tiny` preset on this machine's CPU, and whether the loader keeps up.

Trains SIE for a few epochs on synthetic shards shaped like the demo's (128 px, 8 views per object)
and reads the trainer's own per-epoch accounting: seconds waiting for data vs computing.

    python bench/train_throughput.py [--objects 64] [--epochs 3] [--workers 0 2] [--methods sie vicreg ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch
from synthetic import write_loose  # bench/synthetic.py (scripts run from bench/)

from iebench.baselines.config import resolve
from iebench.baselines.trainer import train
from iebench.cores import available_cores
from iebench.dataset.pack import PackOptions, pack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--methods", nargs="+", default=["sie"], help="methods to time (with the last --workers value)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_loose(Path(tmp) / "loose", args.objects, 8, size=128)
        pack(Path(tmp) / "loose", Path(tmp) / "shards", PackOptions(name="bench", val_fraction=0.0))
        runs = [("sie", w) for w in args.workers] + [(m, args.workers[-1]) for m in args.methods if m != "sie"]
        for method, workers in runs:
            run = Path(tmp) / f"run-{method}-{workers}"
            config = resolve(
                "tiny", method=method, data=str(Path(tmp) / "shards"), out=str(run), epochs=args.epochs, workers=workers, device="cpu"
            )
            train(config, progress=False)
            epochs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if '"kind": "epoch"' in l][1:]
            steps = sum(1 for l in (run / "metrics.jsonl").read_text().splitlines() if '"kind": "step"' in l) // args.epochs
            waited = sum(e["data_seconds"] for e in epochs)
            computed = sum(e["compute_seconds"] for e in epochs)
            seconds = waited + computed
            rows.append(
                (method, workers, steps * len(epochs) / seconds, steps * len(epochs) * config.batch_size * 2 / seconds, waited / seconds)
            )
    print(
        f"\npreset tiny (batch 8, 64 px, projector 256-256-256), synthetic 128 px shards of {args.objects} objects; "
        f"CPU {platform.machine()}, {available_cores()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"first epoch left out (warm-up)\n"
    )
    print("| method | loader workers | steps/s | images/s | time waiting for data |")
    print("|---|---|---|---|---|")
    for method, workers, steps_per_s, images_per_s, wait in rows:
        print(f"| {method} | {workers} | {steps_per_s:.2f} | {images_per_s:.0f} | {100 * wait:.0f} % |")


if __name__ == "__main__":
    main()
