"""Render speed and quality: the default settings against the original recipe, side by side in one run.

Quality is the PSNR of the image as stored (JPEG q95, what users train on) against a 1,024-spp render
without denoiser, also stored as JPEG q95 (SPEC 1b). Time is the render of one view with the object
already loaded, on all cores of this machine, in one process.

    python bench/render_quality.py [--resolution 256] [--views 2] [--reference-samples 1024] [--out FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from iebench.cores import available_cores
from iebench.presets import get_preset, sample_view_latents
from iebench.render import procedural
from iebench.render.blender import SceneRenderer, bpy_version
from iebench.render.objects import scan_root
from iebench.render.scene import view_scene
from iebench.render.settings import ORIGINAL_RECIPE, RenderSettings
from iebench.render.writer import encode_jpeg

THIRD_PARTY = Path(__file__).resolve().parent.parent / "tests" / "data" / "thirdparty"


def label(settings: RenderSettings) -> str:
    """A row name that says what the settings are."""
    adaptive = f" adaptive {settings.adaptive_threshold:g}" if settings.adaptive_sampling else ""
    return f"{settings.samples} spp{adaptive}, OIDN {settings.denoiser}, {settings.denoiser_prefilter} prefilter"


CANDIDATES = {
    f"original recipe: {label(ORIGINAL_RECIPE)}": ORIGINAL_RECIPE,
    f"**default**: {label(RenderSettings())}": RenderSettings(),
    **{
        label(s): s
        for s in (
            RenderSettings(samples=32, denoiser="high", denoiser_prefilter="accurate"),
            RenderSettings(samples=16, denoiser="high", denoiser_prefilter="accurate"),
            RenderSettings(samples=16, denoiser="balanced", denoiser_prefilter="accurate"),
            RenderSettings(samples=32, denoiser="balanced", denoiser_prefilter="fast"),
            RenderSettings(samples=16, denoiser="high", denoiser_prefilter="fast"),
            RenderSettings(samples=8, denoiser="balanced", denoiser_prefilter="fast"),
        )
    },
}


def stored(rgb: np.ndarray) -> np.ndarray:
    """The image as a user reads it back: JPEG q95 decoded."""
    return np.asarray(Image.open(io.BytesIO(encode_jpeg(rgb, 95))).convert("RGB")).astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8-range images."""
    return float(10 * np.log10(255.0**2 / np.mean((a - b) ** 2)))


def render_all(settings: RenderSettings, objects, views: int, threads: int, warm_up: bool = True) -> tuple[list[np.ndarray], list[float]]:
    """Render `views` views of every object; returns the images and the per-view seconds."""
    renderer = SceneRenderer(settings, threads)
    preset = get_preset("3diebench")
    images, seconds = [], []
    for ref in objects:
        loaded = renderer.load(ref.mesh, 10**7)
        if warm_up:  # the first render of an object builds Cycles' scene data: keep it out of the timing
            renderer.render_view(loaded, view_scene(preset.latent_names, sample_view_latents(preset, 0, ref.synset, ref.model_id, 0)))
        for view in range(views):
            latents = sample_view_latents(preset, 0, ref.synset, ref.model_id, view)
            start = time.perf_counter()
            images.append(renderer.render_view(loaded, view_scene(preset.latent_names, latents)))
            seconds.append(time.perf_counter() - start)
        renderer.unload(loaded)
    return images, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--reference-samples", type=int, default=1024)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--reference-cache", type=Path, help="keep the reference renders in this .npy file (slow to make)")
    parser.add_argument("--only-reference", action="store_true", help="render (and cache) the reference, then stop")
    args = parser.parse_args()
    threads = available_cores()

    with tempfile.TemporaryDirectory() as tmp:
        procedural.generate(Path(tmp), classes=13, per_class=1, seed=0)
        chosen = {"03001627", "02958343"}  # a chair and a car, plus two third-party textured models
        objects = [o for o in scan_root(Path(tmp)) if o.synset in chosen]
        objects += [o for o in scan_root(THIRD_PARTY) if o.model_id in ("duck", "block000")]
        reference_settings = RenderSettings(resolution=args.resolution, samples=args.reference_samples, denoiser="off")
        if args.reference_cache and args.reference_cache.is_file():
            reference = list(np.load(args.reference_cache))
        else:  # its timing does not matter: the reference may render while the machine is busy
            reference = [stored(image) for image in render_all(reference_settings, objects, args.views, threads, warm_up=False)[0]]
            if args.reference_cache:
                np.save(args.reference_cache, np.stack(reference))
        if args.only_reference:
            return
        rows = []
        for name, settings in CANDIDATES.items():
            images, seconds = render_all(settings.replace(resolution=args.resolution), objects, args.views, threads)
            quality = [psnr(stored(image), ref) for image, ref in zip(images, reference)]
            rows.append(
                {
                    "setting": name,
                    "s_per_image": float(np.mean(seconds)),
                    "psnr_db": float(np.mean(quality)),
                    "psnr_min_db": float(np.min(quality)),
                }
            )

    base = rows[0]["s_per_image"]
    print(
        f"\nbpy {bpy_version()}, Cycles CPU, {threads} threads ({platform.processor() or platform.machine()}), "
        f"{args.resolution}x{args.resolution}, {len(objects)} objects x {args.views} views, "
        f"reference {args.reference_samples} spp without denoiser; PSNR of stored JPEG q95 images\n"
    )
    print("| setting | s/image | images/s | speed-up | PSNR (dB) | min PSNR (dB) | loss vs original (dB) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['setting']} | {row['s_per_image']:.2f} | {1 / row['s_per_image']:.2f} | {base / row['s_per_image']:.1f}x "
            f"| {row['psnr_db']:.1f} | {row['psnr_min_db']:.1f} | {rows[0]['psnr_db'] - row['psnr_db']:+.1f} |"
        )
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "threads": threads, "bpy": bpy_version(), **vars(args)}, default=str, indent=1))


if __name__ == "__main__":
    main()
