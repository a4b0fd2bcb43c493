"""The original 3DIEBench layout of loose files: the one place its names are written.

`<root>/<synset>/<model_id>/image_<i>.jpg` and `latent_<i>.npy` (float64, the preset's latent order),
views i = 0..n-1, as published, so the original SIE code reads it unchanged. The renderer writes it,
`pack` and the loaders read it.
"""

from __future__ import annotations

import re
from pathlib import Path

LATENT_GLOB = "latent_*.npy"
_IMAGE_NAME = re.compile(r"^image_(\d+)\.jpg$")


def object_dir(root: Path, synset: str, model_id: str) -> Path:
    """The folder of one object."""
    return Path(root) / synset / model_id


def image_name(view: int) -> str:
    """The file name of a view's image."""
    return f"image_{view}.jpg"


def latent_name(view: int) -> str:
    """The file name of a view's latent vector."""
    return f"latent_{view}.npy"


def image_path(folder: Path, view: int) -> Path:
    """Path of a view's image in an object's folder."""
    return Path(folder) / image_name(view)


def latent_path(folder: Path, view: int) -> Path:
    """Path of a view's latent vector in an object's folder."""
    return Path(folder) / latent_name(view)


def image_view(name: str) -> int | None:
    """The view index of an image file name (`image_<i>.jpg`), None for any other name."""
    match = _IMAGE_NAME.match(name)
    return int(match.group(1)) if match else None


def latent_view(path: Path) -> int:
    """The view index of a latent file (`latent_<i>.npy`)."""
    return int(Path(path).stem.split("_", 1)[1])
