"""JPEG decoding to uint8 tensors, and normalisation on the device (SPEC 7: keep uint8 through the loader)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchvision.io import ImageReadMode, decode_jpeg

from iebench.jpeg import CorruptJPEGError, decode_jpeg_strict
from iebench.passes import PASSES, PassError

__all__ = ["CorruptJPEGError", "PassError", "decode", "decode_pass", "decode_batch_on_gpu", "Normalize"]

# SIE's normalisation of 3DIEBench images.
SIE_MEAN = (0.5016, 0.5037, 0.5060)
SIE_STD = (0.1030, 0.0999, 0.0969)


def decode(data: bytes) -> torch.Tensor:
    """(3, H, W) uint8 RGB from JPEG bytes (libjpeg-turbo through torchvision).

    Strict: a JPEG the decoder warns about ("Corrupt JPEG data: ...") raises `CorruptJPEGError`.
    """
    return decode_jpeg_strict(data)


def decode_pass(name: str, data: bytes) -> torch.Tensor | dict[str, torch.Tensor]:
    """A pass's stored bytes as tensors, channels first: depth (1, H, W) float32 metres, normal (3, H, W) float32,
    mask (1, H, W) bool; the camera record as a dict of float64 matrices. `PassError` if the bytes do not decode."""
    value = PASSES[name].decode(data)
    if isinstance(value, dict):
        return {k: torch.from_numpy(v) for k, v in value.items() if isinstance(v, np.ndarray)}
    tensor = torch.from_numpy(np.ascontiguousarray(value))
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


def decode_batch_on_gpu(datas: list[bytes], device: str | torch.device = "cuda") -> torch.Tensor:
    """(N, 3, H, W) uint8 on the GPU from a list of JPEG bytes, decoded by nvJPEG in one call."""
    tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    return torch.stack(decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device))


class Normalize(nn.Module):
    """uint8 (N, 3, H, W) -> float normalised, optionally resized; run it on the device, on the batch."""

    def __init__(self, mean: tuple[float, ...] = SIE_MEAN, std: tuple[float, ...] = SIE_STD, size: int | None = None) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1) * 255, persistent=False)
        self.size = size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise a uint8 batch (the mean and std are scaled to 0-255, so no division by 255 first)."""
        if images.dtype != torch.uint8:  # float images in 0-1 would come out wrong, silently
            raise TypeError(f"Normalize takes uint8 images (0-255), as the loaders give them; got {images.dtype}")
        x = images.float()
        if self.size is not None and x.shape[-1] != self.size:
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return (x - self.mean) / self.std
