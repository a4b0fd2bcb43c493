"""Render settings: the quality/speed knobs, the defaults and the original recipe (SPEC 1a, 1b)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

DENOISERS = ("off", "fast", "balanced", "high")
DEVICES = ("cpu", "gpu", "auto")
PREFILTERS = ("accurate", "fast")


@dataclass(frozen=True, kw_only=True)
class RenderSettings:
    """How each view is rendered and stored. Defaults: see `bench/render_quality.py` for the trade-off."""

    resolution: int = 256
    samples: int = 24
    adaptive_sampling: bool = False
    adaptive_threshold: float = 0.01
    denoiser: str = "high"  # Intel OIDN quality, with albedo+normal passes
    # accurate: denoise the albedo and normal passes too (the original); fast: use them as they are, which
    # here is faster and, at low sample counts, sharper (bench/render_quality.py)
    denoiser_prefilter: str = "fast"
    jpeg_quality: int = 95
    legacy_bgr: bool = False  # swap red and blue as the published JPEGs do (SPEC 1a)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not 8 <= self.resolution <= 8192:
            raise ValueError(f"resolution must be between 8 and 8192 pixels, got {self.resolution}")
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")
        if self.denoiser_prefilter not in PREFILTERS:
            raise ValueError(f"denoiser prefilter must be one of {', '.join(PREFILTERS)}, got {self.denoiser_prefilter!r}")
        if self.denoiser not in DENOISERS:
            raise ValueError(f"denoiser must be one of {', '.join(DENOISERS)}, got {self.denoiser!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"JPEG quality must be between 1 and 100, got {self.jpeg_quality}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")

    def replace(self, **changes: object) -> RenderSettings:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        """Plain JSON for the manifest."""
        return dataclasses.asdict(self)

    def image_fingerprint(self) -> dict:
        """The settings that change the images (a resumed run must match them)."""
        return {k: v for k, v in self.to_json().items() if k != "device"}


# The generator of SPEC 1a: Cycles 100 spp, adaptive sampling (threshold 0.01), OIDN high quality, accurate prefilter.
ORIGINAL_RECIPE = RenderSettings(samples=100, adaptive_sampling=True, denoiser="high", denoiser_prefilter="accurate")

# Named recipes along the measured speed/quality frontier on CPUs (docs/benchmarks.md, bench/render_quality.py):
# at these sample counts OIDN with the fast prefilter is both quicker and sharper; only samples buy quality.
QUALITIES = {
    "draft": RenderSettings(samples=8),  # about 10x the original's speed, about 3 dB lower stored-image PSNR
    "fast": RenderSettings(samples=16),  # about 6x, about 2 dB lower
    "default": RenderSettings(),  # 24 spp: about 4x, about 1.1-1.4 dB lower
    "original": ORIGINAL_RECIPE,
}
