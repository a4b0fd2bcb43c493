"""Time of a full evaluation (all five protocols, SPEC 4's 300 probe epochs), split into features and probes.

Builds shards shaped like the demo's (synthetic 128 px views, 8 per object), trains SIE's `tiny`
preset for one epoch, then runs `iebench eval` twice: once computing the features, once from the cache.

    python bench/eval_time.py [--objects 40]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
from pathlib import Path

from synthetic import write_loose  # bench/synthetic.py (scripts run from bench/)

from iebench.baselines.config import resolve
from iebench.baselines.evaluate import EvalSettings, evaluate
from iebench.baselines.trainer import train
from iebench.cores import available_cores
from iebench.dataset.pack import PackOptions, pack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_loose(Path(tmp) / "loose", args.objects, 8, size=128)
        shards = Path(tmp) / "shards"
        pack(Path(tmp) / "loose", shards, PackOptions(name="bench"))
        run = Path(tmp) / "run"
        train(resolve("tiny", data=str(shards), out=str(run), epochs=1, device="cpu"), progress=False)
        first = evaluate(run, shards, EvalSettings(device="cpu"), progress=False)
        cached = evaluate(run, shards, EvalSettings(device="cpu"), progress=False)
        shutil.rmtree(run / "features")
    print(
        f"\nfull evaluation of a tiny SIE run: {first['objects']['train']} train + {first['objects']['val']} val objects x 8 views, "
        f"64 px, 300 probe epochs; CPU {platform.machine()}, {available_cores()} cores\n"
    )
    print("| pass | features (s) | probes (s) | total (s) |")
    print("|---|---|---|---|")
    for name, report in (("first (extracts features)", first), ("again (cached features)", cached)):
        t = report["timing"]
        print(f"| {name} | {t['features_seconds']:.1f} | {t['probes_seconds']:.1f} | {t['features_seconds'] + t['probes_seconds']:.1f} |")


if __name__ == "__main__":
    main()
