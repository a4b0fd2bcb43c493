"""Reading the passes Blender writes: a single-part, uncompressed, scanline OpenEXR file (no bpy here).

bpy 5.0.1 gives Python no pixels of a render's passes (the render result's `pixels` are empty, and
OpenImageIO's bindings are not in the wheel), but it writes them all into one multilayer EXR. With
`exr_codec = NONE`, 32-bit floats and `use_exr_interleave` (one part, not multipart), that file is a
header, a table of scanline offsets and plain float rows, which this module reads.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_MAGIC = b"\x76\x2f\x31\x01"
_PIXEL_TYPES = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}
_MULTIPART, _TILED = 0x1000, 0x200


class ExrError(ValueError):
    """An EXR file this reader does not handle (compressed, tiled, multipart); the message says why."""


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\0", pos)
    return data[pos:end].decode(), end + 1


def read_exr_channels(path: Path) -> dict[str, np.ndarray]:
    """Every channel of an uncompressed single-part scanline EXR, as (H, W) float32 arrays, top row first."""
    data = Path(path).read_bytes()
    if data[:4] != _MAGIC:
        raise ExrError(f"{path}: not an OpenEXR file")
    flags = int.from_bytes(data[4:8], "little")
    if flags & (_MULTIPART | _TILED):
        raise ExrError(f"{path}: a multipart or tiled EXR (write it with use_exr_interleave and scanlines)")
    header, pos = {}, 8
    while data[pos] != 0:
        name, pos = _cstring(data, pos)
        _, pos = _cstring(data, pos)  # the attribute's type name
        size = int.from_bytes(data[pos : pos + 4], "little")
        header[name] = data[pos + 4 : pos + 4 + size]
        pos += 4 + size
    pos += 1
    if header["compression"][0] != 0:
        raise ExrError(f"{path}: compressed EXR (write it with exr_codec NONE)")
    channels, raw, at = [], header["channels"], 0
    while raw[at] != 0:
        name, at = _cstring(raw, at)
        channels.append((name, _PIXEL_TYPES[int.from_bytes(raw[at : at + 4], "little")]))
        at += 16  # pixel type, pLinear + reserved, x and y sampling
    xmin, ymin, xmax, ymax = struct.unpack("<4i", header["dataWindow"])
    width, height = xmax - xmin + 1, ymax - ymin + 1
    out = {name: np.empty((height, width), np.float32) for name, _ in channels}
    for offset in np.frombuffer(data, "<u8", height, pos).tolist():  # one scanline per chunk without compression
        y, _ = struct.unpack_from("<ii", data, offset)
        row = offset + 8
        for name, dtype in channels:  # channels are stored in name order, each a run of `width` values
            out[name][y - ymin] = np.frombuffer(data, dtype, width, row)
            row += width * dtype.itemsize
    return out
