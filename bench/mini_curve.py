"""Rotation R^2 along training: each method trained to each epoch count in turn (resuming), probed after each.

Training at the mini's laptop scale uses a constant learning rate, so a run resumed from epoch 50 to 150 is
the run trained for 150 epochs: one run per method gives the whole curve. Prints and appends a JSON line per
(method, epochs): training seconds for that stretch, rotation R^2 per output and by SIE's formula, and the
probe's fit on its own training pairs. The shards come from `iebench mini` (OUT/shards) or `iebench pack`.

    python bench/mini_curve.py SHARDS ROOT --backbone resnet18-sie-w32 --methods sie,vicreg --epochs 50,150 [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from iebench.baselines.checkpoint import trained_epochs
from iebench.baselines.evaluate import EvalSettings, evaluate
from iebench.baselines.trainer import train
from iebench.orchestration.mini import SCALES, train_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", type=Path)
    parser.add_argument("root", type=Path, help="folder of the runs and of curve.jsonl")
    parser.add_argument("--backbone", default=SCALES["laptop"].backbone)
    parser.add_argument("--methods", default="sie,vicreg")
    parser.add_argument("--epochs", default="50,150", help="epoch counts to probe at, increasing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scale = replace(SCALES["laptop"], backbone=args.backbone)
    probe = scale.probe(args.seed)
    args.root.mkdir(parents=True, exist_ok=True)
    for epochs in (int(e) for e in args.epochs.split(",")):
        for method in args.methods.split(","):
            run = args.root / f"{method}-seed{args.seed}"
            start, done = time.perf_counter(), trained_epochs(run)
            if done < epochs:
                train(train_config(replace(scale, epochs=epochs), method, args.seed, args.shards, run), resume=done > 0, progress=False)
            seconds = time.perf_counter() - start
            rotation = evaluate(run, args.shards, EvalSettings(tasks=("rotation",), probe=probe), progress=False)["results"]["rotation"]
            line = {
                "method": method,
                "backbone": args.backbone,
                "seed": args.seed,
                "epochs": epochs,
                "train_seconds": round(seconds),
                "r2_per_output": rotation["r2_per_output"],
                "r2_sie": rotation["r2_sie"],
                "probe_fit_per_output": rotation["train_fit"]["r2_per_output"],
            }
            print(json.dumps(line), flush=True)
            with open(args.root / "curve.jsonl", "a") as log:
                log.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
