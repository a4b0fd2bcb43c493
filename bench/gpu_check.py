"""The GPU paths, checked and timed on one CUDA machine: nvJPEG, every method with mixed precision, resume, torchrun, eval.

Nothing here runs without a GPU. On synthetic 256 px shards (bench/synthetic.py, labelled as such):
  1. nvJPEG (`decode_batch_on_gpu`) against the CPU decoder: pixel agreement and images/s;
  2. each method trained with AMP at 256 px (ViT-S/16 for recon-xattn): steps/s, images/s, the share of
     time waiting for data, peak GPU memory, and a finite loss; SIE then resumes for one more epoch
     from its checkpoint (CUDA RNG state included);
  3. `iebench train` under torchrun (NCCL, DDP) for one epoch;
  4. `iebench eval` of the SIE run on the GPU (short probes).

    python bench/gpu_check.py [--objects 1024] [--views 4] [--epochs 4] [--batch-size 256] [--methods ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from synthetic import synthetic_view, write_loose  # bench/synthetic.py (scripts run from bench/)

from iebench.baselines.config import resolve
from iebench.baselines.evaluate import EvalSettings, evaluate
from iebench.baselines.methods import compared_methods
from iebench.baselines.probes import ProbeSettings
from iebench.baselines.trainer import train
from iebench.cores import available_cores
from iebench.dataset.pack import PackOptions, pack
from iebench.loaders.decode import decode, decode_batch_on_gpu

ALL_METHODS = list(compared_methods())


def check_nvjpeg(count: int = 1024) -> list[str]:
    """nvJPEG against libjpeg-turbo on the same bytes: agreement and throughput."""
    import numpy as np

    rng = np.random.default_rng(0)
    datas = [synthetic_view(rng, 256) for _ in range(count)]
    start = time.perf_counter()
    cpu = torch.stack([decode(d) for d in datas])
    cpu_rate = count / (time.perf_counter() - start)
    decode_batch_on_gpu(datas[:64])  # warm-up: nvJPEG's handles
    torch.cuda.synchronize()
    start = time.perf_counter()
    gpu = torch.cat([decode_batch_on_gpu(datas[i : i + 256]) for i in range(0, count, 256)])
    torch.cuda.synchronize()
    gpu_rate = count / (time.perf_counter() - start)
    diff = (gpu.cpu().int() - cpu.int()).abs()
    return [
        "## nvJPEG against the CPU decoder (synthetic 256 px JPEG q95)",
        "",
        "| decoder | images/s | mean abs diff | max abs diff |",
        "|---|---|---|---|",
        f"| libjpeg-turbo, 1 CPU thread | {cpu_rate:.0f} | | |",
        f"| nvJPEG, batches of 256 | {gpu_rate:.0f} | {diff.float().mean():.3f} | {diff.max()} |",
        "",
    ]


def train_methods(shards: Path, root: Path, methods: list[str], epochs: int, batch_size: int, workers: int) -> tuple[list[str], Path]:
    """Each method for a few epochs with AMP; the first epoch is left out of the rates."""
    lines = [
        "## Training at 256 px with mixed precision (first epoch left out)",
        "",
        "| method | backbone | batch | steps/s | images/s | waiting for data | peak GPU memory | last loss | run wall time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method in methods:
        run = root / f"run-{method}"
        preset = "recon-paper" if method == "recon-xattn" else "sie-paper"
        config = resolve(
            preset, method=method, data=str(shards), out=str(run), epochs=epochs, batch_size=batch_size, workers=workers, device="cuda"
        )
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        result = train(config, progress=False)
        wall = time.perf_counter() - start
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        timed = [r for r in records if r["kind"] == "epoch"][1:]
        steps = sum(1 for r in records if r["kind"] == "step" and r["epoch"] > 0)
        seconds = sum(r["data_seconds"] + r["compute_seconds"] for r in timed)
        waited = sum(r["data_seconds"] for r in timed)
        loss = result.last_epoch_loss
        ok = loss is not None and loss == loss and abs(loss) != float("inf")
        lines.append(
            f"| {method} | {config.backbone} | {batch_size} | {steps / seconds:.2f} | {steps * batch_size * 2 / seconds:.0f} | "
            f"{100 * waited / seconds:.0f} % | {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB | "
            f"{loss:.4f}{'' if ok else ' NOT FINITE'} | {wall:.0f} s |"
        )
    sie = root / "run-sie"
    config = resolve(
        "sie-paper", method="sie", data=str(shards), out=str(sie), epochs=epochs + 1, batch_size=batch_size, workers=workers, device="cuda"
    )
    resumed = train(config, resume=True, progress=False)
    lines += [
        "",
        f"SIE resumed from its checkpoint on the GPU: {resumed.epochs_done} epochs done, last loss {resumed.last_epoch_loss:.4f}.",
        "",
    ]
    return lines, sie


def check_torchrun(shards: Path, root: Path) -> list[str]:
    """`iebench train` under torchrun: the NCCL process group and DDP on one GPU."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "1",
        "-m",
        "iebench.cli",
        "train",
        "--preset",
        "sie-paper",
        "--data",
        str(shards),
        "--out",
        str(root / "run-torchrun"),
        "--epochs",
        "1",
        "--batch-size",
        "256",
        "--device",
        "cuda",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
    return ["## torchrun (NCCL, DDP), one GPU", "", f"exit status {done.returncode} after {seconds:.0f} s: `{' / '.join(tail)}`", ""]


def check_eval(run: Path, shards: Path) -> list[str]:
    """The full evaluation suite of one run on the GPU, with short probes, twice from scratch: the numbers must agree."""
    import shutil

    settings = EvalSettings(device="cuda", probe=ProbeSettings(epochs=20))
    start = time.perf_counter()
    report = evaluate(run, shards, settings, progress=False)
    seconds = time.perf_counter() - start
    shutil.rmtree(run / "features")  # the second pass computes the features again
    again = evaluate(run, shards, settings, progress=False)
    same = json.dumps(again["results"], sort_keys=True) == json.dumps(report["results"], sort_keys=True)
    results = report["results"]
    return [
        "## `iebench eval` on the GPU (20 probe epochs)",
        "",
        f"{seconds:.0f} s; top-1 {100 * results['classification']['all']['top1']:.1f} %, rotation R^2 (SIE) "
        f"{results['rotation']['r2_sie']:.3f}, colour R^2 (SIE) {results['colour']['r2_sie']:.3f}, MRR (val->val) "
        f"{results['mrr'].get('val->val', {}).get('mrr', 'n/a')}. Run again with the features recomputed: "
        f"{'identical numbers' if same else 'DIFFERENT numbers: rotation R^2 (SIE) ' + str(again['results']['rotation']['r2_sie'])}.",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1024)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=min(12, available_cores()))
    parser.add_argument("--methods", nargs="+", default=ALL_METHODS)
    parser.add_argument("--no-torchrun", action="store_true", help="leave out the torchrun check")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device")
    lines = [
        f"# GPU check: {torch.cuda.get_device_name()}, torch {torch.__version__}, Python {platform.python_version()}, "
        f"{available_cores()} CPU cores",
        "",
    ]
    lines += check_nvjpeg()
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_loose(root / "loose", args.objects, args.views, size=256)
        pack(root / "loose", root / "shards", PackOptions(name="gpu-check", workers=args.workers))
        trained, sie = train_methods(root / "shards", root, args.methods, args.epochs, args.batch_size, args.workers)
        print("\n".join(trained), flush=True)
        lines += trained
        checks = [] if args.no_torchrun else [lambda: check_torchrun(root / "shards", root)]
        for check in checks + [lambda: check_eval(sie, root / "shards")]:
            part = check()
            print("\n".join(part), flush=True)
            lines += part
    alive = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    lines += [f"At the end: {len(multiprocessing.active_children())} child processes, other threads: {alive or 'none'}.", ""]
    print(lines[-2], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
