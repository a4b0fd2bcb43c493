"""Strict JPEG decoding: a decoder warning about corrupt data is an error, not a line on stderr.

libjpeg (inside torchvision) decodes a damaged JPEG as well as it can and prints a warning such as
"Corrupt JPEG data: 37 extraneous bytes before marker 0xd9" straight to the process's stderr; the
caller gets an image and no sign. Here the decoder's stderr is caught for the length of one decode
(two `dup2` calls, a few microseconds against about 200 for the decode) and any warning it printed
raises `CorruptJPEGError`. The loaders, `iebench pack` and `iebench verify` all decode this way, so
they accept and refuse the same bytes. torch is imported on first use only.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torchvision 0.29 warns on every decode that TorchCodec will take over; its decoder is still the
# libjpeg-turbo path this project measures (SPEC 7), so the warning is silenced here, for it alone.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision", category=DeprecationWarning)

# Words of libjpeg's warnings about the data (jerror.h); other output caught during a decode is passed on.
_DECODER_WORDS = ("jpeg", "corrupt", "premature", "huffman", "marker", "scanlines", "jfif", "progression", "sos ")


class CorruptJPEGError(ValueError):
    """JPEG bytes the decoder could not decode cleanly; the message is the decoder's."""


class _StderrCatcher:
    """fd 2 pointed at an in-memory file around a call (per process: forked workers make their own)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.saved = os.dup(2)
        self.sink = os.memfd_create("iebench-jpeg-warnings") if hasattr(os, "memfd_create") else _temporary_fd()

    def take(self) -> str:
        """What was printed since the last take (the sink is emptied)."""
        if not os.lseek(self.sink, 0, os.SEEK_CUR):
            return ""
        os.lseek(self.sink, 0, os.SEEK_SET)
        printed = os.read(self.sink, 1 << 16)
        os.ftruncate(self.sink, 0)
        os.lseek(self.sink, 0, os.SEEK_SET)
        return printed.decode(errors="replace")


def _temporary_fd() -> int:
    import tempfile

    handle = tempfile.TemporaryFile()
    return os.dup(handle.fileno())


_catcher: _StderrCatcher | None = None
_decoder: tuple | None = None  # (torch.frombuffer, torch.uint8, decode_jpeg, ImageReadMode.RGB), imported on first use


def _get_catcher() -> _StderrCatcher:
    global _catcher
    if _catcher is None or _catcher.pid != os.getpid():
        _catcher = _StderrCatcher()
    return _catcher


def _load_decoder() -> tuple:
    global _decoder
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    _decoder = (torch.frombuffer, torch.uint8, decode_jpeg, ImageReadMode.RGB)
    return _decoder


def decode_jpeg_strict(data: bytes) -> torch.Tensor:
    """(3, H, W) uint8 RGB tensor from JPEG bytes, or `CorruptJPEGError` with the decoder's complaint."""
    frombuffer, uint8, decode_jpeg, rgb = _decoder or _load_decoder()
    if not data:
        raise CorruptJPEGError("empty JPEG data")
    catcher = _get_catcher()
    error = None
    with catcher.lock:
        sys.stderr.flush()
        os.dup2(catcher.sink, 2)
        try:
            image = decode_jpeg(frombuffer(bytearray(data), dtype=uint8), mode=rgb)
        except RuntimeError as raised:
            error = raised
        finally:
            os.dup2(catcher.saved, 2)
        printed = catcher.take()
    if not printed and error is None:
        return image
    lines = [line for line in printed.splitlines() if line.strip()]
    complaints = [line for line in lines if any(word in line.lower() for word in _DECODER_WORDS)]
    others = [line for line in lines if line not in complaints]
    if others:  # not the decoder's: somebody else's output during the decode, passed on
        sys.stderr.write("\n".join(others) + "\n")
    if error is not None:
        raise CorruptJPEGError("; ".join([str(error).splitlines()[0], *complaints])) from None
    if complaints:
        raise CorruptJPEGError("; ".join(complaints))
    return image


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) of JPEG bytes that decode cleanly (strictly, as the loaders decode them)."""
    image = decode_jpeg_strict(data)
    return int(image.shape[2]), int(image.shape[1])
