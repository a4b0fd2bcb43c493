"""Pack throughput: loose files -> verified shards, in MB/s, with one worker and with all cores, and with --skip-bad.

Uses synthetic JPEGs of realistic size (about 6.5 KB at 256 px, as the published 3DIEBench views):
rendering thousands of real views would take an hour here. Packing decodes every JPEG once (to
refuse corrupt files), reads every latent file and hashes every shard; with --skip-bad it decodes every
JPEG in the check too, so that a bad one is skipped rather than stopping the pack.

    python bench/pack_throughput.py [--objects 100] [--views 50]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from synthetic import write_loose  # bench/synthetic.py (scripts run from bench/)

from iebench.cores import available_cores
from iebench.dataset.pack import PackOptions, pack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--views", type=int, default=50)
    args = parser.parse_args()
    cores = available_cores()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "loose"
        size = write_loose(src, args.objects, args.views)
        rows = []
        for workers, skip_bad in [(w, False) for w in sorted({1, cores})] + [(cores, True)]:
            out = Path(tmp) / f"shards-{workers}-{skip_bad}"
            start = time.perf_counter()
            pack(src, out, PackOptions(name="bench", shard_size_mb=8, workers=workers, skip_bad=skip_bad))
            seconds = time.perf_counter() - start
            rows.append((workers, skip_bad, seconds))
    views = args.objects * args.views
    print(
        f"\n{views} synthetic views ({size / views / 1024:.1f} KiB each with its latent file, {size / 2**20:.1f} MiB), "
        f"{platform.machine()}, {cores} cores; pack = check + split + write shards + indexes + finalize\n"
    )
    print("| workers | --skip-bad | seconds | views/s | MB/s | MB/s per core |")
    print("|---|---|---|---|---|---|")
    for workers, skip_bad, seconds in rows:
        mbs = size / 1e6 / seconds
        print(f"| {workers} | {'yes' if skip_bad else 'no'} | {seconds:.1f} | {views / seconds:,.0f} | {mbs:.1f} | {mbs / workers:.1f} |")


if __name__ == "__main__":
    main()
