"""The networks the methods share: backbone, projector (expander), and the hypernetwork predictor."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models.vision_transformer import VisionTransformer


class ResNetBackbone(nn.Module):
    """torchvision's ResNet-18 without its classifier: images -> 512-d representations.

    `stem="small"` swaps the 7x7/2 convolution and max-pool for one 3x3/1 convolution (the CIFAR
    stem), which keeps spatial detail at the 32-64 px of tiny runs; `"imagenet"` is SIE's.
    """

    def __init__(self, stem: str = "imagenet", last_stride: int = 2) -> None:
        super().__init__()
        if stem not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small', got {stem!r}")
        self.net = resnet18(weights=None)
        self.net.fc = nn.Identity()
        if stem == "small":
            self.net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            self.net.maxpool = nn.Identity()
        if last_stride == 1:  # the last stage without its stride: a stride-16 map (same weights' shapes)
            self.net.layer4[0].conv1.stride = (1, 1)
            self.net.layer4[0].downsample[0].stride = (1, 1)
        self.dim = 512

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """The last stage's map (N, 512, h, w), before pooling."""
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(images))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """The map's positions as tokens (N, h * w, 512)."""
        return self.feature_map(images).flatten(2).transpose(1, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images -> (N, 512)."""
        return self.net(images)

    def torchvision_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights as a plain torchvision ResNet-18 state dict (no `fc`: load with `fc = Identity()`)."""
        return {k: v for k, v in self.net.state_dict().items() if not k.startswith("fc.")}


class ViTBackbone(nn.Module):
    """ViT-Small/16 built with torchvision's VisionTransformer (384 wide, 12 layers, 6 heads, MLP 1536).

    torchvision has no ViT-S builder. The representation is the class token (384-d); `tokens` gives
    the patch tokens.
    """

    def __init__(self, image_size: int) -> None:
        super().__init__()
        if image_size % 16:
            raise ValueError(f"ViT-S/16 needs an image size divisible by 16, got {image_size}")
        self.net = VisionTransformer(image_size=image_size, patch_size=16, num_layers=12, num_heads=6, hidden_dim=384, mlp_dim=1536)
        self.net.heads = nn.Identity()
        self.dim = 384

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        x = self.net._process_input(images)
        cls = self.net.class_token.expand(x.shape[0], -1, -1)
        return self.net.encoder(torch.cat([cls, x], dim=1))

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Patch tokens (N, patches, 384)."""
        return self._encode(images)[:, 1:]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images -> the class token (N, 384)."""
        return self._encode(images)[:, 0]


def build_backbone(name: str, stem: str = "imagenet", image_size: int | None = None, last_stride: int = 2) -> nn.Module:
    """The backbone a configuration names."""
    if name == "vit-s16":
        return ViTBackbone(image_size or 224)
    return ResNetBackbone(stem, last_stride)

    def torchvision_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights as a plain torchvision ResNet-18 state dict (no `fc`: load with `fc = Identity()`)."""
        return {k: v for k, v in self.net.state_dict().items() if not k.startswith("fc.")}


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

    With `depth=1` W is one bias-free linear map of a, so W(a) is linear in a; a deeper hypernetwork
    puts hidden layers (Linear-ReLU) in front of it.
    """

    def __init__(self, action_dim: int, dim: int, depth: int = 1, hidden: int = 64) -> None:
        super().__init__()
        self.dim = dim
        layers: list[nn.Module] = []
        size = action_dim
        for _ in range(depth - 1):
            layers += [nn.Linear(size, hidden), nn.ReLU(inplace=True)]
            size = hidden
        layers.append(nn.Linear(size, dim * dim, bias=False))
        self.hyper = nn.Sequential(*layers)

    def matrix(self, action: torch.Tensor) -> torch.Tensor:
        """W(a): (N, d, d)."""
        return self.hyper(action).view(-1, self.dim, self.dim)

    def forward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """W(a) z for a batch: (N, d)."""
        return torch.bmm(self.matrix(action), z.unsqueeze(-1)).squeeze(-1)
