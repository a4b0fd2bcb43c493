"""`iebench export`: a run's backbone as a plain state dict in its reference code's layout."""

from __future__ import annotations

from pathlib import Path

from iebench.baselines import checkpoint
from iebench.baselines.config import TrainConfig


def export_backbone(run: Path, out: Path) -> Path:
    """Write a run's backbone as a plain state dict in its reference layout (`Backbone.export_state_dict`).

    resnet18-sie: the SIE authors' `resnet18()` loads it with `strict=True`; resnet18: torchvision's
    `resnet18()` with `fc = Identity()`; vit-s16: torchvision's VisionTransformer without head.
    """
    from iebench.baselines.backbones import build_backbone

    state = checkpoint.load(Path(run) / checkpoint.CHECKPOINT_NAME)
    config = TrainConfig.from_json(state["config"])
    backbone = build_backbone(config.backbone, config.stem, config.image_size)
    prefix = "backbone."
    try:
        backbone.load_state_dict({k[len(prefix) :]: v for k, v in state["model"]["method"].items() if k.startswith(prefix)})
    except RuntimeError as error:
        raise checkpoint.CheckpointError(
            f"{run}: the checkpoint's backbone does not fit {config.backbone} ({str(error).splitlines()[0]})"
        ) from None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save_atomic(out, backbone.export_state_dict())
    return out
