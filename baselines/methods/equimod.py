"""EquiMod (Devillers and Lefort, 2023) and the SEN-like variant the SIE paper reports.

EquiMod: an invariant projector with InfoNCE (or VICReg's terms) between the views, plus a second
projector whose output for view 1 goes through the action-conditioned predictor and is pulled, by
the same loss, towards view 2's; the equivariant loss is added with the equivariance factor.
SEN-like: only the predicted loss (InfoNCE between prediction and target), no invariant loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from iebench.baselines.config import TrainConfig
from iebench.baselines.distributed import gather
from iebench.baselines.heads import HyperPredictor, projector
from iebench.baselines.losses import info_nce, vicreg_loss
from iebench.baselines.methods.base import Method


@dataclass(frozen=True, kw_only=True)
class EquiModSettings:
    """EquiMod's own settings (`extra` in a configuration)."""

    temperature: float = 0.1  # InfoNCE's (loss="infonce")


class EquiMod(Method):
    """`loss="infonce"` (EquiMod, SimCLR-based) or `"vicreg"`; `invariant=False` gives the SEN-like variant."""

    Settings = EquiModSettings
    has_predictor = True

    def __init__(self, config: TrainConfig, action_dim: int, loss: str = "infonce", invariant: bool = True) -> None:
        super().__init__(config, action_dim)
        dims = tuple(2 * d for d in config.projector)
        self.loss_kind, self.temperature = loss, config.extra.temperature
        self.inv_projector = projector(self.dim, dims) if invariant else None
        self.equi_projector = projector(self.dim, dims)
        self.predictor = HyperPredictor(action_dim, dims[-1], config.predictor_depth)

    def _pair_loss(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.loss_kind == "infonce":
            value = info_nce(gather(a), gather(b), self.temperature)
            return {"loss": value}
        c = self.config
        return vicreg_loss(gather(a), gather(b), c.sim_coeff, c.std_coeff, c.cov_coeff)

    def equivariant_embedding(self, representation: torch.Tensor) -> torch.Tensor:
        """The second projector's output."""
        return self.equi_projector(representation)

    def predict(self, embedding: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The action-conditioned prediction."""
        return self.predictor(embedding, action)

    def forward(self, view1: torch.Tensor, view2: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        """Invariant loss (unless SEN-like) + equivariance factor x predicted loss."""
        r1, r2 = self.representation(view1), self.representation(view2)
        equivariant = self._pair_loss(self.predictor(self.equi_projector(r1), action), self.equi_projector(r2))["loss"]
        terms = {"equivariance": equivariant}
        if self.inv_projector is None:
            terms["loss"] = equivariant
        else:
            terms["invariance"] = self._pair_loss(self.inv_projector(r1), self.inv_projector(r2))["loss"]
            terms["loss"] = terms["invariance"] + self.config.equi_factor * equivariant
        return terms | {"representation1": r1.detach(), "representation2": r2.detach()}
