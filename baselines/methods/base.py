"""What every method shares: the backbone, the action it needs, and its place in the trainer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from iebench.baselines.backbones import build_backbone
from iebench.baselines.config import TrainConfig


@dataclass(frozen=True, kw_only=True)
class NoSettings:
    """The settings of a method that has none of its own (`extra` must be empty)."""


class Method(nn.Module):
    """A self-supervised method: `forward(view1, view2, action)` returns its loss terms, `loss` among them.

    Subclasses set `has_predictor`; those with a predictor implement `equivariant_embedding` and
    `predict` for the retrieval protocols (MRR, H@k, PRE). A method with settings of its own sets
    `Settings` to a dataclass of them; `config.extra` is an instance of it (checked when the
    configuration loads). The action a method trains with is the registry's (`methods/__init__.py`).
    """

    Settings: type = NoSettings
    has_predictor = False
    backbone_bf16 = False  # set by the trainer (`cpu_bf16`): the backbone in bfloat16 on a CPU, the rest in float32

    def __init__(self, config: TrainConfig, action_dim: int, last_stride: int = 2) -> None:
        super().__init__()
        self.config = config
        self.action_dim = action_dim
        self.backbone = build_backbone(config.backbone, config.stem, config.image_size, last_stride)
        self.dim = self.backbone.dim
        self.inv_dim = self.dim // 2 if config.inv_dim is None else config.inv_dim

    def representation(self, images: torch.Tensor) -> torch.Tensor:
        """The representation the evaluation probes (the backbone's width: `backbones.WIDTHS`)."""
        with self.backbone_precision():
            return self.from_backbone(self.backbone(images))

    def backbone_precision(self) -> torch.autocast:
        """The context the backbone runs in: bfloat16 on a CPU where `backbone_bf16`, else the caller's precision.

        Only the backbone: with the heads and the losses in bfloat16 too, SIE learnt less rotation at the laptop
        scale (the variance hinge at 1 moves in steps of 1/128 there).
        """
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.backbone_bf16)

    def from_backbone(self, output: torch.Tensor) -> torch.Tensor:
        """A backbone output back in float32 for the heads where the backbone ran in bfloat16 (else as it is)."""
        return output.float() if self.backbone_bf16 else output

    def split(self, representation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(invariant, equivariant) parts: the first `inv_dim` dimensions and the rest."""
        return representation[:, : self.inv_dim], representation[:, self.inv_dim :]

    def equivariant_embedding(self, representation: torch.Tensor) -> torch.Tensor:
        """The embedding the predictor acts on (methods with a predictor)."""
        raise NotImplementedError(f"{type(self).__name__} has no predictor")

    def predict(self, embedding: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The predicted embedding of the transformed view (methods with a predictor)."""
        raise NotImplementedError(f"{type(self).__name__} has no predictor")

    def forward(self, view1: torch.Tensor, view2: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms on a batch of normalised pairs."""
        raise NotImplementedError
