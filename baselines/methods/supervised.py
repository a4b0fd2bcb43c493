"""The supervised reference: the backbone trained to regress the action (the relative rotation) from two views.

Not self-supervised: it sees the target the rotation probe is scored on, so its probe R^2 is the
ceiling a representation of this backbone, data and budget can reach (the mini's "supervised" row).
"""

from __future__ import annotations

import torch
from torch import nn

from iebench.baselines.config import TrainConfig
from iebench.baselines.methods.base import Method
from iebench.baselines.probes import regression_head


class SupervisedAction(Method):
    """MSE of SPEC 4's regression head (2d -> 1024 -> 1024 -> action) on [rep(view 1), rep(view 2)] against the action."""

    def __init__(self, config: TrainConfig, action_dim: int) -> None:
        super().__init__(config, action_dim)
        self.head = regression_head(2 * self.dim, action_dim)

    def forward(self, view1: torch.Tensor, view2: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        """The regression loss."""
        r1, r2 = self.representation(view1), self.representation(view2)
        loss = nn.functional.mse_loss(self.head(torch.cat([r1, r2], dim=1)), action)
        return {"regression": loss, "loss": loss, "representation1": r1.detach(), "representation2": r2.detach()}
