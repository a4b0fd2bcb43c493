"""What a run computes in: float16 autocast on CUDA, the backbone in bfloat16 on a CPU with bfloat16 hardware, or float32."""

from __future__ import annotations

import torch

from iebench.baselines.config import TrainConfig


def precision(config: TrainConfig, device: torch.device) -> str:
    """What a run computes in: "float16" (the forward pass, on CUDA with `amp`), "bfloat16 backbone" (on a CPU with
    `cpu_bf16`: the heads, the predictor and the losses stay float32) or "float32"."""
    if device.type == "cuda":
        return "float16" if config.amp else "float32"
    return "bfloat16 backbone" if config.cpu_bf16 else "float32"


def autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The type the whole forward pass autocasts to: float16 on CUDA with `amp`, else None (CPU bfloat16 is the backbone's)."""
    return torch.float16 if precision(config, device) == "float16" else None


def native_cpu_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AMX or AVX512-BF16), where `cpu_bf16` makes a step faster."""
    # Not oneDNN's own query: it answers yes for any AVX-512 CPU, where bfloat16 is emulated and slower.
    try:
        return torch.backends.mkldnn.is_available() and (torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # a torch without these queries
        return False
