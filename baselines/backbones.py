"""Backbones by name: the SIE authors' ResNet-18 (the default) and its narrower forms, torchvision's ResNet-18, and ViT-S/16.

Every backbone takes normalised images (N, 3, H, W) and returns (N, dim) representations; the ResNets
also give their last stage's map (`feature_map`), ViT its class and patch tokens (`encode`), and each
writes its weights in its reference code's own layout (`export_state_dict`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18
from torchvision.models.vision_transformer import VisionTransformer

# resnet18-sie-wN: the authors' network with N channels in its first stage instead of 64 (N/64 of every stage's
# width, a (64/N)^2 smaller compute): a ResNet-18 a laptop can train for many more steps (the mini's laptop scale).
NARROW = {"resnet18-sie-w32": 32, "resnet18-sie-w16": 16}
BACKBONES = ("resnet18-sie", *NARROW, "resnet18", "vit-s16")
WIDTHS = {"resnet18-sie": 512, **{name: 8 * base for name, base in NARROW.items()}, "resnet18": 512, "vit-s16": 384}
STEMS = ("imagenet", "small")


def _check_stem(stem: str) -> None:
    if stem not in STEMS:
        raise ValueError(f"stem must be 'imagenet' or 'small', got {stem!r}")


class SIEBasicBlock(nn.Module):
    """The authors' BasicBlock: the stride sits on the second convolution, which is padded TF-style (right, bottom)."""

    def __init__(self, in_channels: int, planes: int, stride: int = 1, shortcut: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=0 if stride == 2 else 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_channels, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)) if shortcut else None
        )

    def set_stride(self, stride: int) -> None:
        """Change the block's stride in place (the weights keep their shapes)."""
        self.conv2.stride, self.conv2.padding = (stride, stride), (0, 0) if stride == 2 else (1, 1)
        if self.downsample is not None:
            self.downsample[0].stride = (stride, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output (the authors' padding when the block strides)."""
        out = F.relu(self.bn1(self.conv1(x)))
        if self.conv2.stride == (2, 2):
            out = F.pad(out, (0, 1, 0, 1))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class SIEResNet18(nn.Module):
    """ResNet-18 as SIE's authors built it (their `src/resnet.py`, SPEC 3a), with their state-dict keys.

    It differs from torchvision's: the input is zero-padded (2, 3, 2, 3) before an unpadded 7x7/2
    convolution, the max-pool's input is padded (0, 1, 0, 1) with -1e4, each block strides on its
    second convolution, the first block of every stage (layer1 too) has a 1x1-conv + BN shortcut, and
    every block's last BatchNorm starts at zero (11,180,736 parameters against 11,176,512).
    `stem="small"` swaps the stem for one 3x3/1 convolution without max-pool (for 32-64 px runs);
    `base` < 64 narrows every stage in proportion (the representation is 8 * base wide).
    """

    def __init__(self, stem: str = "imagenet", last_stride: int = 2, base: int = 64) -> None:
        super().__init__()
        _check_stem(stem)
        self.stem = stem
        self.conv1 = (
            nn.Conv2d(3, base, 7, stride=2, padding=0, bias=False) if stem == "imagenet" else nn.Conv2d(3, base, 3, 1, 1, bias=False)
        )
        self.bn1 = nn.BatchNorm2d(base)
        channels = base
        for index, (planes, stride) in enumerate(((base, 1), (2 * base, 2), (4 * base, 2), (8 * base, 2)), start=1):
            setattr(
                self, f"layer{index}", nn.Sequential(SIEBasicBlock(channels, planes, stride, shortcut=True), SIEBasicBlock(planes, planes))
            )
            channels = planes
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, SIEBasicBlock):
                nn.init.zeros_(module.bn2.weight)  # the authors' zero_init_residual=True
        if last_stride == 1:  # the last stage without its stride: a stride-16 map
            self.layer4[0].set_stride(1)
        self.dim = 8 * base

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """The last stage's map (N, dim, h, w), before pooling."""
        if self.stem == "imagenet":
            x = F.relu(self.bn1(self.conv1(F.pad(images, (2, 3, 2, 3)))))
            x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=-1e4), kernel_size=3, stride=2)
        else:
            x = F.relu(self.bn1(self.conv1(images)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images -> (N, dim)."""
        return torch.flatten(F.adaptive_avg_pool2d(self.feature_map(images), 1), 1)

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights in the authors' layout: their `resnet18()` loads them with `strict=True` (at the full width)."""
        return self.state_dict()


class TorchvisionResNet18(nn.Module):
    """torchvision's ResNet-18 without its classifier: images -> 512-d representations.

    Not SIE's (see `SIEResNet18`): stride on the first convolution of a block, symmetric padding, no
    shortcut convolution in layer1, no zero-initialised BatchNorm. `stem="small"` as in `SIEResNet18`.
    """

    def __init__(self, stem: str = "imagenet", last_stride: int = 2) -> None:
        super().__init__()
        _check_stem(stem)
        self.net = resnet18(weights=None)
        self.net.fc = nn.Identity()
        if stem == "small":
            self.net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            self.net.maxpool = nn.Identity()
        if last_stride == 1:
            self.net.layer4[0].conv1.stride = (1, 1)
            self.net.layer4[0].downsample[0].stride = (1, 1)
        self.dim = 512

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """The last stage's map (N, 512, h, w), before pooling."""
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(images))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images -> (N, 512)."""
        return self.net(images)

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """A plain torchvision ResNet-18 state dict without `fc` (load it with `fc = Identity()`)."""
        return {k: v for k, v in self.net.state_dict().items() if not k.startswith("fc.")}


class ViTBackbone(nn.Module):
    """ViT-Small/16 built with torchvision's VisionTransformer (384 wide, 12 layers, 6 heads, MLP 1536).

    torchvision has no ViT-S builder. The representation is the class token (384-d); `encode` gives
    it with the patch tokens.
    """

    def __init__(self, image_size: int) -> None:
        super().__init__()
        if image_size % 16:
            raise ValueError(f"ViT-S/16 needs an image size divisible by 16, got {image_size}")
        self.net = VisionTransformer(image_size=image_size, patch_size=16, num_layers=12, num_heads=6, hidden_dim=384, mlp_dim=1536)
        self.net.heads = nn.Identity()
        self.dim = 384

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's output (N, 1 + patches, 384): the class token, then the patch tokens."""
        x = self.net._process_input(images)
        cls = self.net.class_token.expand(x.shape[0], -1, -1)
        return self.net.encoder(torch.cat([cls, x], dim=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images -> the class token (N, 384)."""
        return self.encode(images)[:, 0]

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """torchvision's VisionTransformer state dict (ViT-S/16, no head)."""
        return self.net.state_dict()


def build_backbone(name: str = "resnet18-sie", stem: str = "imagenet", image_size: int | None = None, last_stride: int = 2) -> nn.Module:
    """The backbone `name` names (one of `BACKBONES`): normalised images in, (N, dim) representations out."""
    if name == "resnet18-sie":
        return SIEResNet18(stem, last_stride)
    if name in NARROW:
        return SIEResNet18(stem, last_stride, base=NARROW[name])
    if name == "resnet18":
        return TorchvisionResNet18(stem, last_stride)
    if name == "vit-s16":
        return ViTBackbone(image_size or 224)
    raise ValueError(f"unknown backbone {name!r}; backbones are {', '.join(BACKBONES)}")
