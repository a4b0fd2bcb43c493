"""Writing rendered views: JPEG encoding and the original 3DIEBench layout of loose files.

The file names are `iebench.layout`'s; with named passes (`iebench.passes`), each view also has
`<pass>_<i>.<ext>` (`depth_<i>.png`, ...).
Each file is written under a temporary name and renamed, the latent last: a view is complete when
all its files exist, and an interrupted write never leaves a file that looks finished.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from iebench.files import write_atomic
from iebench.layout import image_path, latent_path
from iebench.passes import PASSES


def encode_jpeg(rgb: np.ndarray, quality: int = 95, legacy_bgr: bool = False) -> bytes:
    """JPEG bytes (4:2:0) of an RGB uint8 image; `legacy_bgr` swaps red and blue as the published files do."""
    if legacy_bgr:
        rgb = rgb[..., ::-1]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="JPEG", quality=quality, subsampling=2)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    """The .npy file bytes of an array."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def pass_path(folder: Path, view: int, name: str) -> Path:
    """Path of a view's pass: `depth_<i>.png`, ..."""
    return folder / PASSES[name].loose_name(view)


def write_view(folder: Path, view: int, jpeg: bytes, latents: np.ndarray, passes: dict[str, bytes] | None = None) -> None:
    """Write one view's image, passes and latents; the latent file, renamed last, marks the view complete."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(image_path(folder, view), jpeg)
    for name, data in sorted((passes or {}).items()):
        write_atomic(pass_path(folder, view, name), data)
    write_atomic(latent_path(folder, view), npy_bytes(np.asarray(latents, dtype=np.float64)))


def view_complete(folder: Path, view: int, passes: tuple[str, ...] = ()) -> bool:
    """Whether a view's image, latent file and the files of its passes are all in place."""
    return (
        latent_path(folder, view).is_file()
        and image_path(folder, view).is_file()
        and all(pass_path(folder, view, name).is_file() for name in passes)
    )
