"""Writing rendered views: JPEG encoding and the original 3DIEBench layout of loose files.

The file names are `iebench.layout`'s.
Each file is written under a temporary name and renamed, the latent last: a view is complete when
both files exist, and an interrupted write never leaves a file that looks finished.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from iebench.files import TMP_MARK, write_atomic
from iebench.layout import image_path, latent_path


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


def write_view(folder: Path, view: int, jpeg: bytes, latents: np.ndarray) -> None:
    """Write one view's image and latents; the latent file, renamed last, marks the view complete."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(image_path(folder, view), jpeg)
    write_atomic(latent_path(folder, view), npy_bytes(np.asarray(latents, dtype=np.float64)))


def view_complete(folder: Path, view: int) -> bool:
    """Whether a view's image and latent file are both in place."""
    return latent_path(folder, view).is_file() and image_path(folder, view).is_file()


def remove_partial_files(folder: Path) -> None:
    """Delete temporary files an interrupted run left in an object's folder."""
    if folder.is_dir():
        for leftover in folder.glob(f"*{TMP_MARK}*"):
            leftover.unlink(missing_ok=True)
