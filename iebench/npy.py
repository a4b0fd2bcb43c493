"""Small `.npy` arrays from their bytes, fast: 3DIEBench has 2.6 million latent files (and as many latent members in
shards) sharing a handful of headers, and parsing a header costs numpy more than reading the array, so each distinct
header is parsed once per process."""

from __future__ import annotations

import io

import numpy as np

_HEADERS: dict[bytes, tuple[tuple[int, ...], bool, np.dtype]] = {}  # a header's bytes -> (shape, fortran order, dtype)
_MAGIC_V1 = b"\x93NUMPY\x01\x00"


def parse_npy(data: bytes) -> np.ndarray:
    """The array a `.npy` file's bytes hold (no pickled objects). Raises ValueError (or EOFError for no
    bytes, as `np.load` does) when they are not one."""
    if data[:8] != _MAGIC_V1 or len(data) < 10:
        return np.load(io.BytesIO(data), allow_pickle=False)  # other versions, or not a .npy file: numpy's own message
    end = 10 + int.from_bytes(data[8:10], "little")
    header = data[10:end]
    parsed = _HEADERS.get(header)
    if parsed is None:
        parsed = np.lib.format.read_array_header_1_0(io.BytesIO(data[8:end]))
        if parsed[2].hasobject:
            raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
        if len(_HEADERS) < 256:
            _HEADERS[header] = parsed
    shape, fortran, dtype = parsed
    count = int(np.prod(shape))
    if len(data) - end != count * dtype.itemsize:
        raise ValueError(f"holds {len(data) - end} bytes of data, its header says {count * dtype.itemsize}")
    return np.frombuffer(data, dtype, count, end).reshape(shape, order="F" if fortran else "C").copy()  # writable, as np.load's
