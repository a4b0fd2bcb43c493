"""Ablations of the mini's training recipe on one set of shards: which configuration lets SIE's rotation finding show.

For each configuration, trains every method with every seed, evaluates each (classification, rotation and
colour probes), and writes a row per configuration: minutes, rotation R^2 per output (mean ± std over seeds) per
method, the margin of SIE over the best invariant method and the verdict. Runs on the CPU or a GPU; the
shards come from `iebench mini` (OUT/shards) or any `iebench pack`.

    python bench/mini_sweep.py SHARDS --configs base,long --seeds 3 [--device cuda] [--out FILE] [--budget-min 8]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from iebench.baselines.evaluate import EvalSettings, evaluate
from iebench.baselines.trainer import train
from iebench.orchestration.mini import SCALES, train_config
from iebench.orchestration.verdicts import seedwise_margin, summarise

BASE = SCALES["laptop"]
CONFIGS = {
    "base": BASE,  # the laptop scale as shipped: resnet18-sie-w32, 150 epochs
    "probe-1-draw": replace(BASE, probe_draws=1),
    "long": replace(BASE, epochs=300),
    "batch-64": replace(BASE, batch_size=64, epochs=300),
    "full-width-50": replace(BASE, backbone="resnet18-sie", epochs=50),  # the laptop scale of 2026-11-29
    "w16-250": replace(BASE, backbone="resnet18-sie-w16", epochs=250),
}
METHODS = ("sie", "vicreg", "simclr", "sie-rotcolor", "supervised-rotation")


def run_config(name: str, shards: Path, root: Path, seeds: int, methods: tuple[str, ...], device: str) -> dict:
    """Train and evaluate every method and seed of one configuration; per-output rotation R^2 and colour R^2 per run."""
    scale = CONFIGS[name]
    out: dict = {"minutes": 0.0, "rotation": {}, "colour": {}, "fit": {}}
    start = time.perf_counter()
    for seed in range(seeds):
        for method in methods:
            if method == "supervised-rotation" and seed > 0:
                continue
            run = root / name / f"{method}-seed{seed}"
            config = train_config(replace(scale, device=device), method, seed, shards, run)  # trained as the mini trains
            train(config, progress=False)
            probe = scale.probe(seed)
            results = evaluate(run, shards, EvalSettings(tasks=("rotation", "colour"), device=device, probe=probe), progress=False)[
                "results"
            ]
            out["rotation"].setdefault(method, []).append(results["rotation"]["r2_per_output"])
            out["fit"].setdefault(method, []).append(results["rotation"]["train_fit"]["r2_per_output"])
            out["colour"].setdefault(method, []).append(results["colour"]["r2_sie"])
            print(f"{name} {method} seed {seed}: rotation R^2 per output {out['rotation'][method][-1]:.3f}", flush=True)
    out["minutes"] = (time.perf_counter() - start) / 60
    return out


def row(name: str, found: dict, seeds: int) -> str:
    """One table row: configuration, minutes, each method's mean ± std, and the verdict on SIE against the invariant methods."""
    values = {m: {"rotation": dict(enumerate(v))} for m, v in found["rotation"].items()}
    invariant = [m for m in ("vicreg", "simclr") if m in values]
    closest = min((seedwise_margin(values, "rotation", "sie", m) for m in invariant), key=lambda f: f["margin"] - 2 * f["spread"])
    stats = {m: s["rotation"] for m, s in summarise(values).items()}
    cells = " | ".join(f"{m} {mean:.3f} ± {std:.3f}" for m, (mean, std) in stats.items())
    return f"| {name} | {found['minutes']:.1f} | {cells} | {closest['margin']:+.3f} | {closest['spread']:.3f} | {closest['verdict']} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", type=Path)
    parser.add_argument("--configs", default="base")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--root", type=Path, default=Path("/tmp/mini-sweep"))
    parser.add_argument("--budget-min", type=float, default=float("inf"), help="start no configuration after this many minutes")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [
        f"Shards {args.shards}, {args.seeds} seeds, device {args.device}"
        f" ({torch.cuda.get_device_name() if args.device == 'cuda' else 'CPU'}), torch {torch.__version__}",
        "",
        "| configuration | minutes | rotation R^2 per output, mean ± std over seeds | SIE margin | spread | verdict |",
        "|---|---|---|---|---|---|",
    ]
    begun, raw = time.perf_counter(), {}
    for name in args.configs.split(","):
        if (time.perf_counter() - begun) / 60 > args.budget_min:
            lines.append(f"| {name} | not run (time budget) | | | | |")
            continue
        raw[name] = run_config(name, args.shards, args.root, args.seeds, tuple(args.methods.split(",")), args.device)
        lines.append(row(name, raw[name], args.seeds))
        text = "\n".join(lines) + "\n\n```json\n" + json.dumps(raw, indent=1) + "\n```\n"
        print(text, flush=True)
        if args.out:
            args.out.write_text(text)


if __name__ == "__main__":
    main()
