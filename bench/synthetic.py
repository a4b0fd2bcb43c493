"""Synthetic 3DIEBench-like data for benchmarks: JPEGs of realistic size (labelled as synthetic wherever used)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from iebench.layout import image_path, latent_path
from iebench.presets import get_preset, sample_view_latents


def synthetic_view(rng: np.random.Generator, size: int = 256) -> bytes:
    """A smooth coloured floor with a disc on it: a JPEG q95 of about 6.5-7 KB at 256 px."""
    coarse = rng.uniform(60, 200, (2, 2, 3))
    image = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64)
    yy, xx = np.mgrid[:size, :size]
    blob = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 6) ** 2
    image[blob] = rng.uniform(0, 255, 3)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=95, subsampling=2)
    return buffer.getvalue()


def write_loose(root: Path, objects: int, views: int, size: int = 256) -> int:
    """A loose-layout folder of synthetic views; returns its size in bytes."""
    rng = np.random.default_rng(0)
    preset = get_preset("3diebench")
    total = 0
    for index in range(objects):
        synset, model_id = f"{2691156 + index % 10:08d}", f"{index:032x}"
        folder = root / synset / model_id
        folder.mkdir(parents=True)
        for view in range(views):
            jpeg = synthetic_view(rng, size)
            image_path(folder, view).write_bytes(jpeg)
            np.save(latent_path(folder, view), sample_view_latents(preset, 0, synset, model_id, view))
            total += len(jpeg) + latent_path(folder, view).stat().st_size
    return total


def procedural_objects(root: Path, count: int) -> tuple:
    """`count` procedural objects over up to 10 classes, generated into ROOT: their `ObjectRef`s."""
    import math

    from iebench.render import procedural
    from iebench.render.objects import scan_root

    classes = min(len(procedural.BUILDERS), 10, count)
    procedural.generate(root, classes=classes, per_class=math.ceil(count / classes), seed=0)
    return tuple(scan_root(root)[:count])
