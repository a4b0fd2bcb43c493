"""Checkpoints: the whole training state in plain tensors and containers, so `weights_only=True` loads it."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import torch

from iebench.files import write_atomic

CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint that does not fit this run; the message says what differs."""


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


def save(path: Path, *, model: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer, scaler, epoch: int,
         config: dict, extra: dict | None = None) -> None:
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
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(Path(path), buffer.getvalue())


def load(path: Path) -> dict:
    """A checkpoint, loaded with `weights_only=True` (no code runs from the file)."""
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except Exception as error:  # torch raises several kinds for damaged or foreign files
        raise CheckpointError(f"{path} is not a readable checkpoint ({error})") from None


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
