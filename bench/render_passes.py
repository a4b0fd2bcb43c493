"""What each named pass costs: time per view on top of the RGB render, and disk per view.

Each view of each object is rendered once per pass set (none, depth, normal, mask, all three), in a
rotating order so that a busy machine slows every set alike; the time is the worker's whole cost of a
view (render, reading the passes back, JPEG and PNG encoding), with the object loaded and warmed up.
Both the wall-clock time and the process's CPU time (all of Cycles' threads) are measured: on a shared
machine the CPU time is the steadier measure of what a pass adds.
Disk is the stored bytes of each pass (PNG or JSON) beside the JPEG.

    python bench/render_passes.py [--resolution 256] [--views 4] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from iebench.passes import PASSES, parse_passes
from iebench.presets import get_preset, sample_view_latents
from iebench.render import procedural
from iebench.render.blender import SceneRenderer, bpy_version
from iebench.render.objects import scan_root
from iebench.render.scene import view_scene
from iebench.render.settings import RenderSettings
from iebench.render.writer import encode_jpeg

THIRD_PARTY = Path(__file__).resolve().parent.parent / "tests" / "data" / "thirdparty"
PASS_SETS = {
    "RGB only": (),
    "+ depth": ("depth",),
    "+ normal": ("normal",),
    "+ mask": ("mask",),
    "+ depth, normal, mask (and camera)": parse_passes("depth,normal,mask"),
}


def view_cost(renderer: SceneRenderer, loaded, view, settings: RenderSettings) -> tuple[float, float, dict[str, int]]:
    """Wall and CPU seconds for one view as a worker makes it, and the bytes of its JPEG and passes."""
    start, cpu = time.perf_counter(), time.process_time()
    rgb, arrays = renderer.render_passes(loaded, view)
    stored = {"jpg": encode_jpeg(rgb, settings.jpeg_quality)} | {name: PASSES[name].encode(arrays[name]) for name in renderer.passes}
    return time.perf_counter() - start, time.process_time() - cpu, {name: len(data) for name, data in stored.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    settings = RenderSettings(resolution=args.resolution)
    preset = get_preset("3diebench")
    seconds: dict[str, list[float]] = {name: [] for name in PASS_SETS}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in PASS_SETS}
    sizes: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        procedural.generate(Path(tmp), classes=13, per_class=1, seed=0)
        objects = [o for o in scan_root(Path(tmp)) if o.synset in {"03001627", "02958343"}]
        objects += [o for o in scan_root(THIRD_PARTY) if o.model_id in ("duck", "block000")]
        renderer = SceneRenderer(settings, threads)
        turn = 0
        for ref in objects:
            loaded = renderer.load(ref.mesh, 10**7)
            for view_index in range(-1, args.views):  # view -1 warms the object up for every pass set, untimed
                view = view_scene(preset.latent_names, sample_view_latents(preset, 0, ref.synset, ref.model_id, max(view_index, 0)))
                names = list(PASS_SETS)
                for name in names[turn % len(names) :] + names[: turn % len(names)]:
                    renderer.set_passes(PASS_SETS[name])
                    cost, cpu, stored = view_cost(renderer, loaded, view, settings)
                    if view_index >= 0:
                        seconds[name].append(cost)
                        cpu_seconds[name].append(cpu)
                        if name == names[-1]:
                            for member, size in stored.items():
                                sizes.setdefault(member, []).append(size)
                turn += 1
            renderer.unload(loaded)
    base, cpu_base = np.array(seconds["RGB only"]), np.array(cpu_seconds["RGB only"])
    rows = []
    for name, values in seconds.items():
        values, cpu = np.array(values), np.array(cpu_seconds[name])
        rows.append(
            {
                "passes": name,
                "s_per_view": float(np.median(values)),
                "cpu_s_per_view": float(np.median(cpu)),
                "extra_percent": float(np.median((values - base) / base * 100)),
                "cpu_extra_percent": float(np.median((cpu - cpu_base) / cpu_base * 100)),
            }
        )
    print(
        f"\nbpy {bpy_version()}, Cycles CPU, {threads} threads ({platform.processor() or platform.machine()}), "
        f"{args.resolution}x{args.resolution}, default settings ({settings.samples} spp, OIDN {settings.denoiser}), "
        f"{len(objects)} objects x {args.views} views; medians of per-view times and of per-view differences\n"
    )
    print("| passes | CPU s/view | CPU time added to the RGB view | wall s/view | wall time added |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['passes']} | {row['cpu_s_per_view']:.3f} | {row['cpu_extra_percent']:+.1f} % | {row['s_per_view']:.3f} "
            f"| {row['extra_percent']:+.1f} % |"
        )
    print("\n| member | bytes per view (mean) | min | max |")
    print("|---|---|---|---|")
    for member, values in sizes.items():
        print(f"| {member} | {np.mean(values):,.0f} | {min(values):,} | {max(values):,} |")
    total = sum(np.mean(v) for m, v in sizes.items() if m != "jpg")
    print(f"| all passes | {total:,.0f} | | |")
    if args.out:
        args.out.write_text(
            json.dumps({"rows": rows, "sizes": sizes, "threads": threads, "bpy": bpy_version(), **vars(args)}, default=str, indent=1)
        )


if __name__ == "__main__":
    main()
