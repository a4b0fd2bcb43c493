"""SimCLR (Chen et al., 2020) and SimCLR + AugSelf (Lee et al., 2021), which also regresses the action."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from iebench.baselines.config import TrainConfig
from iebench.baselines.distributed import gather
from iebench.baselines.heads import projector
from iebench.baselines.losses import info_nce
from iebench.baselines.methods.base import Method
from iebench.baselines.probes import regression_head


@dataclass(frozen=True, kw_only=True)
class SimCLRSettings:
    """SimCLR's own settings (`extra` in a configuration)."""

    temperature: float = 0.1
    augself_weight: float = 1.0  # the AugSelf regression's weight (the augself variants only)


class SimCLR(Method):
    """InfoNCE over the gathered batch (2N - 2 negatives per anchor), cosine similarity, temperature 0.1.

    With `augself=True`, an MLP (2 x 512 -> 1024 -> 1024 -> action) on the two concatenated
    representations regresses the action with MSE, weight `extra.augself_weight` (default 1).
    """

    Settings = SimCLRSettings

    def __init__(self, config: TrainConfig, action_dim: int, augself: bool = False) -> None:
        super().__init__(config, action_dim)
        self.projector = projector(self.dim, tuple(2 * d for d in config.projector))
        self.temperature = config.extra.temperature
        self.augself = None
        if augself:
            self.augself = regression_head(2 * self.dim, action_dim)  # the regression probe's MLP (SPEC 4)
            self.augself_weight = config.extra.augself_weight

    def forward(self, view1: torch.Tensor, view2: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        """InfoNCE (+ the AugSelf regression)."""
        r1, r2 = self.representation(view1), self.representation(view2)
        terms = {"infonce": info_nce(gather(self.projector(r1)), gather(self.projector(r2)), self.temperature)}
        terms["loss"] = terms["infonce"]
        if self.augself is not None:
            terms["augself"] = nn.functional.mse_loss(self.augself(torch.cat([r1, r2], dim=1)), action)
            terms["loss"] = terms["loss"] + self.augself_weight * terms["augself"]
        return terms | {"representation1": r1.detach(), "representation2": r2.detach()}
