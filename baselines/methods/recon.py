"""The reconstruction method (SPEC 6): VICReg on the invariant part, and a cross-attention decoder that
rebuilds view 2's pixels from view 1's equivariant tokens. It needs no transformation parameters.

How the equivariant tokens are formed:
- ResNet-18: the last stage is run without its stride, so the final map has stride 16 (4 x 4
  positions at 64 px, 16 x 16 at 256 px); the tokens are that map's equivariant channels (the last
  512 - inv_dim) at each position. The representation is the same map average-pooled. A 32 px
  image would give 2 x 2 positions, four keys and an attention that learns nothing: at least 16
  positions are required.
- ViT-S/16: the patch tokens' equivariant channels (the last 384 - inv_dim).

The decoder's first block is plain cross-attention, softmax(Q K^T / sqrt(d)) V, with keys and values
from view 1's tokens and queries from view 2's. View 2 reaches the output only through the attention
pattern: nothing adds its features back around the attention (its residual carries the attention
output, not the queries), or the decoder could copy view 2 and learn nothing about view 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from iebench.baselines.config import TrainConfig
from iebench.baselines.distributed import gather
from iebench.baselines.heads import projector
from iebench.baselines.losses import vicreg_loss
from iebench.baselines.methods.base import Method

MIN_TOKENS = 16


class CrossAttentionDecoder(nn.Module):
    """Cross-attention (view 1 keys/values, view 2 queries), then self-attention blocks, then per-token pixels."""

    def __init__(self, token_dim: int, tokens: int, patch_pixels: int, width: int = 192, blocks: int = 6, heads: int = 6) -> None:
        super().__init__()
        self.width = width
        self.position = nn.Parameter(torch.randn(1, tokens, width) * 0.02)
        self.query, self.key, self.value = (nn.Linear(token_dim, width) for _ in range(3))
        self.after_attention = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.blocks = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True, activation="gelu"),
            num_layers=blocks - 1,
            enable_nested_tensor=False,
        )
        self.norm = nn.LayerNorm(width)
        self.to_pixels = nn.Linear(width, patch_pixels)

    def forward(self, tokens1: torch.Tensor, tokens2: torch.Tensor) -> torch.Tensor:
        """(N, T, token_dim) x 2 -> (N, T, patch_pixels)."""
        q = self.query(tokens2) + self.position
        k = self.key(tokens1) + self.position
        v = self.value(tokens1)
        attended = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(self.width), dim=-1) @ v
        x = attended + self.after_attention(attended)  # the residual carries the attention output, not view 2
        x = self.blocks(x + self.position)
        return self.to_pixels(self.norm(x))


def patchify(images: torch.Tensor, grid: int) -> torch.Tensor:
    """(N, 3, H, W) -> (N, grid * grid, 3 * (H / grid) * (W / grid)), row-major patches."""
    n, c, h, w = images.shape
    ph, pw = h // grid, w // grid
    return images.reshape(n, c, grid, ph, grid, pw).permute(0, 2, 4, 1, 3, 5).reshape(n, grid * grid, c * ph * pw)


@dataclass(frozen=True, kw_only=True)
class ReconstructionSettings:
    """The reconstruction method's own settings (`extra` in a configuration)."""

    recon_weight: float = 1.0  # weight of the pixel MSE
    decoder_width: int = 192
    decoder_blocks: int = 6  # the cross-attention block and blocks - 1 self-attention blocks


class Reconstruction(Method):
    """`recon-xattn`: VICReg on the invariant part + weight x pixel MSE of the reconstructed view 2."""

    Settings = ReconstructionSettings

    def __init__(self, config: TrainConfig, action_dim: int) -> None:
        super().__init__(config, action_dim, last_stride=1)
        size = config.image_size
        if size is None:
            raise ValueError("recon-xattn needs --image-size (the decoder's token grid is sized from it)")
        self.grid = size // 16
        if self.grid * self.grid < MIN_TOKENS:
            raise ValueError(
                f"recon-xattn at {size} px gives {self.grid * self.grid} tokens; it needs at least "
                f"{MIN_TOKENS} (an image size of 64 or more)"
            )
        extra = config.extra
        self.recon_weight = extra.recon_weight
        self.inv_projector = projector(self.inv_dim, tuple(2 * d for d in config.projector))
        patch = 3 * (size // self.grid) ** 2
        self.decoder = CrossAttentionDecoder(
            self.dim - self.inv_dim, self.grid * self.grid, patch, extra.decoder_width, extra.decoder_blocks
        )

    def tokens_and_representation(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Equivariant tokens (N, T, equi dims) and the representation."""
        with self.backbone_precision():
            if self.config.backbone == "vit-s16":
                encoded = self.from_backbone(self.backbone.encode(images))  # one pass: the class token, then the patches
                return encoded[:, 1:, self.inv_dim :], encoded[:, 0]
            feature_map = self.from_backbone(self.backbone.feature_map(images))
        return feature_map.flatten(2).transpose(1, 2)[..., self.inv_dim :], feature_map.mean(dim=(2, 3))

    def representation(self, images: torch.Tensor) -> torch.Tensor:
        """The pooled stride-16 map (ResNet) or the class token (ViT)."""
        return self.tokens_and_representation(images)[1]

    def forward(self, view1: torch.Tensor, view2: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        """VICReg on the invariant parts, pixel MSE on view 2 rebuilt from view 1's tokens."""
        tokens1, r1 = self.tokens_and_representation(view1)
        tokens2, r2 = self.tokens_and_representation(view2)
        c = self.config
        terms = vicreg_loss(
            gather(self.inv_projector(r1[:, : self.inv_dim])),
            gather(self.inv_projector(r2[:, : self.inv_dim])),
            c.sim_coeff,
            c.std_coeff,
            c.cov_coeff,
        )
        terms["ssl"] = terms["loss"]
        terms["reconstruction"] = F.mse_loss(self.decoder(tokens1, tokens2), patchify(view2, self.grid))
        terms["loss"] = terms["ssl"] + self.recon_weight * terms["reconstruction"]
        return terms | {"representation1": r1.detach(), "representation2": r2.detach()}
