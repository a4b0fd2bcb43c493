"""SIE and the other methods on one training loop, their evaluation with the paper's protocols, and the backbones."""

from iebench.baselines.backbones import BACKBONES, build_backbone

__all__ = ["BACKBONES", "build_backbone"]
