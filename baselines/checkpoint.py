"""Checkpoints: the whole training state in plain tensors and containers, so `weights_only=True` loads it."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

from iebench.files import write_atomic

CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "config.json"  # beside the checkpoint: the TrainConfig the run was made with


class CheckpointError(ValueError):
    """A checkpoint that does not fit this run; the message says what differs."""


def save_atomic(path: Path, value: object) -> None:
    """`torch.save` under a temporary name, then renamed: an interrupted write never leaves a file cut short."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    write_atomic(Path(path), buffer.getvalue())


def rng_state() -> dict:
    """Every RNG this process draws from, as tensors."""
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "numpy_keys": torch.from_numpy(numpy_state[1].astype(np.int64)),
        "numpy_pos": int(numpy_state[2]),
        "python": torch.tensor(random.getstate()[1], dtype=torch.int64),
    }


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(int(x) for x in state["python"].tolist()), None))


def save(
    path: Path,
    *,
    model: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    epoch: int,
    config: dict,
    extra: dict | None = None,
) -> None:
    """Write the training state after `epoch` atomically (`model` maps names to modules)."""
    state = {
        "model": {name: module.state_dict() for name, module in model.items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": epoch,
        "rng": rng_state(),
        "config": config,
        "extra": extra or {},
    }
    save_atomic(path, state)


def load_file(path: Path, what: str = "a checkpoint") -> object:
    """Whatever a torch file holds, loaded with `weights_only=True`; one clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist (expected {what} there)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several kinds for damaged or foreign files
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if not zipfile.is_zipfile(path):  # torch.save has written zip archives since torch 1.6
            first = "not a file torch.save wrote: damaged, cut short, or another kind of file"
        elif "weights_only" in str(error) or "Weights only" in str(error):
            first = "it holds Python objects, not only tensors and plain containers"  # never advise weights_only=False
        raise CheckpointError(f"{path} is not {what} ({first})") from None


REQUIRED = ("model", "epoch", "config", "extra")
TRAINING_STATE = ("optimizer", "scaler", "rng")


def load(path: Path, for_training: bool = False) -> dict:
    """An iebench checkpoint, checked: the keys every use needs (and the training state when resuming)."""
    state = load_file(path, "an iebench checkpoint")
    if (
        not isinstance(state, dict)
        or any(k not in state for k in REQUIRED)
        or not isinstance(state.get("model"), dict)
        or "method" not in state["model"]
    ):
        hint = ""
        if isinstance(state, dict) and ("conv1.weight" in state or "model" in state and "config" not in state):
            hint = ": it looks like a backbone state dict or an SIE authors' checkpoint; `iebench import` reads those"
        raise CheckpointError(f"{path} is not an iebench checkpoint{hint}")
    if for_training and any(k not in state for k in TRAINING_STATE):
        source = state["extra"].get("imported", {}).get("source")
        why = f"it was imported from {source}" if source else "it holds no optimizer state"
        raise CheckpointError(f"{path} cannot be resumed: {why}; it can be evaluated and exported")
    return state


def non_finite(state: dict) -> list[str]:
    """Each floating-point tensor of a state dict that holds NaN or an infinity, described: name, what and how many."""
    found = []
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            nans, infs = int(torch.isnan(value).sum()), int(torch.isinf(value).sum())
            what = " and ".join(f"{count} {kind}" for count, kind in ((nans, "NaN"), (infs, "infinite")) if count)
            found.append(f"{name} holds {what} of {value.numel()} values")
    return found


def check_finite(state: dict, where: Path | str, advice: str) -> None:
    """Refuse weights holding NaN or infinities: a network of them evaluates to NaN and chance accuracy."""
    bad = non_finite(state)
    if bad:
        more = f" and {len(bad) - 1} more tensor{'s' if len(bad) > 2 else ''}" if len(bad) > 1 else ""
        raise CheckpointError(f"{where}: tensor {bad[0]}{more} (damaged weights, or a training that diverged): {advice}")


def trained_epochs(run: Path) -> int:
    """Epochs RUN's checkpoint holds (0 without one)."""
    path = Path(run) / CHECKPOINT_NAME
    return load(path)["epoch"] + 1 if path.is_file() else 0


def check_config(checkpoint: dict, fingerprint: dict, path: Path) -> None:
    """Refuse a checkpoint written under another configuration."""
    from iebench.baselines.config import TrainConfig

    saved = TrainConfig.from_json(checkpoint["config"]).fingerprint()
    differing = sorted(k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k))
    if differing:
        raise CheckpointError(f"{path} was trained with another configuration ({', '.join(differing)} differ)")
