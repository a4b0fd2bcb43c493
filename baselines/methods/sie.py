"""SIE (Garrido et al., 2023): split invariant-equivariant representation with a hypernetwork predictor.

Variants by name: `sie` (rotation), `sie-rotcolor` (rotation + colour, 6-d action), `sie-novar`
(no variance term on the predictions), `sie-onlyequi` (no invariant part: the whole representation
is equivariant, with one projector of twice the width, and the equivariance term weighted by sim_coeff
alone, as the authors' `SIEOnlyEqui`; the others weight it by equi_factor x sim_coeff).
"""

from __future__ import annotations

import torch

from iebench.baselines.config import TrainConfig
from iebench.baselines.distributed import gather
from iebench.baselines.heads import HyperPredictor, projector
from iebench.baselines.losses import sie_loss
from iebench.baselines.methods.base import Method


class SIE(Method):
    """SIE and its variants."""

    has_predictor = True

    def __init__(self, config: TrainConfig, action_dim: int, variant: str = "sie") -> None:
        super().__init__(config, action_dim)
        self.variant = variant
        self.only_equivariant = variant == "sie-onlyequi" or self.inv_dim == 0
        if self.only_equivariant:
            self.inv_dim = 0
        equi_dims = tuple(2 * d for d in config.projector) if self.only_equivariant else config.projector
        self.inv_projector = None if self.only_equivariant else projector(self.inv_dim, config.projector)
        self.equi_projector = projector(self.dim - self.inv_dim, equi_dims)
        self.predictor = HyperPredictor(action_dim, equi_dims[-1], config.predictor_depth)

    def equivariant_embedding(self, representation: torch.Tensor) -> torch.Tensor:
        """The equivariant projector's output."""
        return self.equi_projector(self.split(representation)[1])

    def predict(self, embedding: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """W(a) applied to an equivariant embedding."""
        return self.predictor(embedding, action)

    def forward(self, view1: torch.Tensor, view2: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        """SIE's loss on the batch gathered from every rank."""
        r1, r2 = self.representation(view1), self.representation(view2)
        (i1, e1), (i2, e2) = self.split(r1), self.split(r2)
        equi1, equi2 = self.equi_projector(e1), self.equi_projector(e2)
        pred = self.predictor(equi1, action)
        inv1 = inv2 = None
        if self.inv_projector is not None:
            inv1, inv2 = gather(self.inv_projector(i1)), gather(self.inv_projector(i2))
        c = self.config
        equi_coeff = c.sim_coeff if self.only_equivariant else c.equi_factor * c.sim_coeff
        terms = sie_loss(
            inv1,
            inv2,
            gather(equi1),
            gather(equi2),
            gather(pred),
            c.sim_coeff,
            equi_coeff,
            c.std_coeff,
            c.cov_coeff,
            pred_std=self.variant != "sie-novar",
        )
        terms["representation1"] = r1.detach()
        terms["representation2"] = r2.detach()
        return terms
