"""VICReg (Bardes et al., 2022): one expander on the whole representation; invariance, variance, covariance."""

from __future__ import annotations

import torch

from iebench.baselines.config import TrainConfig
from iebench.baselines.distributed import gather
from iebench.baselines.heads import projector
from iebench.baselines.losses import vicreg_loss
from iebench.baselines.methods.base import Method


class VICReg(Method):
    """VICReg with the paper's 2048-2048-2048 expander (twice each SIE part's width) and 10 / 10 / 1."""

    def __init__(self, config: TrainConfig, action_dim: int) -> None:
        super().__init__(config, action_dim)
        self.expander = projector(self.dim, tuple(2 * d for d in config.projector))

    def forward(self, view1: torch.Tensor, view2: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        """VICReg on the batch gathered from every rank."""
        r1, r2 = self.representation(view1), self.representation(view2)
        c = self.config
        terms = vicreg_loss(gather(self.expander(r1)), gather(self.expander(r2)), c.sim_coeff, c.std_coeff, c.cov_coeff)
        return terms | {"representation1": r1.detach(), "representation2": r2.detach()}
