"""The heads the methods share: the projector (expander) and SIE's hypernetwork predictor (backbones: `backbones.py`)."""

from __future__ import annotations

import torch
from torch import nn


def projector(in_dim: int, dims: tuple[int, ...]) -> nn.Sequential:
    """Linear-BN-ReLU for every layer but the last, which is a Linear without bias (VICReg's expander)."""
    layers: list[nn.Module] = []
    sizes = (in_dim, *dims)
    for i in range(len(dims) - 1):
        layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.BatchNorm1d(sizes[i + 1]), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
    return nn.Sequential(*layers)


class HyperPredictor(nn.Module):
    """SIE's predictor: the action a gives a matrix W(a) (d x d), and the prediction is W(a) z.

    The hypernetwork is bias-free, as the authors' (`src/hypernetwork.py`): with `depth=1` one Linear(k, d^2),
    so W(a) is linear in a; with `depth=3` ("deep") Linear(k, k)-ReLU-Linear(k, k)-ReLU-Linear(k, d^2).
    W(a) is read row-major as (out, in), the authors' layout, so their weights load as they are.
    """

    def __init__(self, action_dim: int, dim: int, depth: int = 1) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"the hypernetwork needs at least one layer, got depth {depth}")
        self.dim = dim
        layers: list[nn.Module] = []
        for _ in range(depth - 1):
            layers += [nn.Linear(action_dim, action_dim, bias=False), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(action_dim, dim * dim, bias=False))
        self.hyper = nn.Sequential(*layers)

    def matrix(self, action: torch.Tensor) -> torch.Tensor:
        """W(a): (N, d, d)."""
        return self.hyper(action).view(-1, self.dim, self.dim)

    def forward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """W(a) z for a batch: (N, d)."""
        return torch.bmm(self.matrix(action), z.unsqueeze(-1)).squeeze(-1)
