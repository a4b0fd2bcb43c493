"""The SIE authors' checkpoints (facebookresearch/SIE): read `model.pth` or `final_weights.pth` into a run folder.

Their `main.py` saves `model.pth` = {"epoch", "model", "optimizer"}, `model` being the DDP state dict
(`module.backbone.*`, `module.projector_inv.*`, `module.projector_equi.*`, `module.predictor.hypernet.net.*`,
`module.evaluator.*`), and at the end `final_weights.pth`, the backbone's state dict alone (SPEC 3a).
Their backbone is `resnet18-sie` here, with the same keys; the heads differ only in their names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from iebench.baselines import checkpoint
from iebench.baselines.checkpoint import CheckpointError
from iebench.baselines.config import TrainConfig
from iebench.baselines.methods import build_method, variants_of
from iebench.files import write_json_atomic

# The authors' module names -> ours (the parts of the model a run keeps; their online evaluator is left out).
RENAMES = {
    "backbone.": "backbone.",
    "projector_inv.": "inv_projector.",
    "projector_equi.": "equi_projector.",
    "predictor.hypernet.net.": "predictor.hyper.",
}
SIE_METHODS = variants_of("SIE")
FINITE_ADVICE = "import a checkpoint whose weights are all finite numbers (an earlier one of the same training)"


@dataclass(frozen=True)
class AuthorsCheckpoint:
    """What an authors' file holds: the state dict under our names, and what can be told of its model."""

    state: dict[str, torch.Tensor]
    parts: tuple[str, ...]  # "backbone", and "heads" when the projectors and predictor are there
    epoch: int | None  # epochs trained, when the file says
    dropped: int  # entries of theirs a run does not keep (the online evaluator)


def read(path: Path) -> AuthorsCheckpoint:
    """Read an authors' `model.pth` or `final_weights.pth` (no code runs from the file)."""
    state = checkpoint.load_file(path, what="a checkpoint of the SIE authors' code")
    if isinstance(state, dict) and isinstance(state.get("model"), dict) and "epoch" in state:
        model, epoch = state["model"], int(state["epoch"])
    elif isinstance(state, dict) and "conv1.weight" in state and all(isinstance(v, torch.Tensor) for v in state.values()):
        model, epoch = {f"backbone.{k}": v for k, v in state.items()}, None
    else:
        keys = ", ".join(sorted(map(str, state))[:6]) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{path} is not a checkpoint of the SIE authors' code: expected model.pth ({{epoch, model, optimizer}}) "
            f"or final_weights.pth (a ResNet state dict), found {keys}"
        )
    ours, dropped, kept = {}, 0, {}
    for key, value in model.items():
        short = key.removeprefix("module.")
        prefix = next((p for p in RENAMES if short.startswith(p)), None)
        if prefix is None:
            dropped += 1
            continue
        ours[RENAMES[prefix] + short[len(prefix) :]] = kept[key] = value
    if not any(k.startswith("backbone.") for k in ours):
        raise CheckpointError(f"{path} holds no backbone (no 'backbone.*' keys): not a checkpoint of the SIE authors' code")
    # each tensor named as the file names it (the online evaluator, which a run leaves out, is not checked)
    checkpoint.check_finite(kept if epoch is not None else state, path, FINITE_ADVICE)
    heads = any(k.startswith("predictor.") for k in ours) and any(k.startswith("equi_projector.") for k in ours)
    return AuthorsCheckpoint(ours, ("backbone", "heads") if heads else ("backbone",), epoch, dropped)


def _linear_shapes(state: dict[str, torch.Tensor], prefix: str) -> list[tuple[int, int]]:
    """(out, in) of each Linear under `prefix`, in order (BatchNorm weights are 1-D and left out)."""
    layers = sorted(
        (int(k[len(prefix) :].split(".")[0]), v.shape)
        for k, v in state.items()
        if k.startswith(prefix) and k.endswith(".weight") and v.dim() == 2
    )
    return [tuple(shape) for _, shape in layers]


def infer_config(found: AuthorsCheckpoint, method: str | None, image_size: int | None) -> TrainConfig:
    """The configuration of the authors' model: projector widths, split, hypernetwork depth and action size from the shapes.

    The file cannot tell `sie` from `sie-novar` (same weights): `method` decides, `sie` by default.
    """
    state = found.state
    if "heads" not in found.parts:
        return TrainConfig(method=method or "sie", backbone="resnet18-sie", image_size=image_size).validate()
    equi = _linear_shapes(state, "equi_projector.")
    hyper = _linear_shapes(state, "predictor.hyper.")
    action_dim, only_equi = hyper[0][1], not any(k.startswith("inv_projector.") for k in state)
    detected = "sie-onlyequi" if only_equi else "sie-rotcolor" if action_dim == 6 else "sie"
    chosen = method or detected
    compatible = {"sie": ("sie", "sie-novar"), "sie-rotcolor": ("sie-rotcolor",), "sie-onlyequi": ("sie-onlyequi",)}[detected]
    if chosen not in compatible:
        raise CheckpointError(
            f"--method {chosen} does not match the checkpoint: its shapes are those of {' or '.join(compatible)} "
            f"({'no invariant projector, ' if only_equi else ''}{action_dim}-d action)"
        )
    widths = tuple(out for out, _ in equi)
    projector = tuple(w // 2 for w in widths) if only_equi else widths
    inv_dim = 0 if only_equi else 512 - equi[0][1]
    return TrainConfig(
        method=chosen,
        backbone="resnet18-sie",
        image_size=image_size,
        projector=projector,
        inv_dim=None if inv_dim == 256 else inv_dim,
        predictor_depth=len(hyper),
    ).validate()


def import_checkpoint(source: Path, run: Path, method: str | None = None, image_size: int | None = 256) -> dict:
    """Write RUN (config.json, checkpoint.pt) from an authors' checkpoint; returns what was imported.

    A full `model.pth` gives every part (all five evaluation tasks); a bare backbone gives the backbone
    (classification and R^2 only): the rest of the model stays at its initialisation and the run says so.
    """
    source, run = Path(source), Path(run)
    if (run / checkpoint.CHECKPOINT_NAME).exists():
        raise CheckpointError(f"{run} already holds a run: choose a new folder")
    if run.is_dir() and any(run.iterdir()):
        raise CheckpointError(f"{run} is not empty: import into a new or empty folder (it becomes a run folder)")
    found = read(source)
    if method is not None and method not in SIE_METHODS:
        raise CheckpointError(f"--method must be one of {', '.join(SIE_METHODS)} (the authors' SIE models), got {method!r}")
    config = infer_config(found, method, image_size)
    action_dim = (
        found.state["predictor.hyper.0.weight"].shape[1] if "heads" in found.parts else (6 if config.method == "sie-rotcolor" else 4)
    )
    torch.manual_seed(config.seed)
    model = build_method(config, action_dim)
    wanted = model.state_dict()
    keep = found.state if "heads" in found.parts else {k: v for k, v in found.state.items() if k.startswith("backbone.")}
    missing = sorted(k for k in wanted if k not in keep and ("heads" in found.parts or k.startswith("backbone.")))
    unexpected = sorted(k for k in keep if k not in wanted)
    wrong = sorted(k for k in keep if k in wanted and keep[k].shape != wanted[k].shape)
    if missing or unexpected or wrong:
        details = "; ".join(
            f"{label}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("other shape", wrong))
            if keys
        )
        raise CheckpointError(f"{source} does not fit {config.method} with the authors' ResNet-18 ({details})")
    model.load_state_dict(keep, strict=False)
    config.out, imported = str(run), {"source": str(source.resolve()), "parts": list(found.parts), "authors_epochs": found.epoch}
    state = {
        "model": {"method": model.state_dict()},
        "epoch": (found.epoch or 0) - 1,
        "config": config.to_json(),
        "extra": {"action_dim": int(action_dim), "imported": imported},
    }
    run.mkdir(parents=True, exist_ok=True)
    checkpoint.save_atomic(run / checkpoint.CHECKPOINT_NAME, state)
    write_json_atomic(run / checkpoint.CONFIG_NAME, config.to_json())
    return {**imported, "method": config.method, "dropped_entries": found.dropped}
