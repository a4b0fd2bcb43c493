"""The training loop every method shares: CPU, one GPU, or many under torchrun; exact resume.

The run folder holds `config.json` (the resolved configuration), `checkpoint.pt` (the whole state
after the last finished epoch, written atomically), `metrics.jsonl` (a line per step and per
epoch) and `loss.png`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

import iebench
from iebench.baselines import checkpoint
from iebench.baselines.config import ConfigError, TrainConfig
from iebench.baselines.distributed import Runtime, setup
from iebench.baselines.errors import DivergedError
from iebench.baselines.methods import build_method
from iebench.baselines.precision import autocast_dtype, precision
from iebench.files import remove_temporary, write_atomic, write_json_atomic
from iebench.loaders import Normalize, PairDataset, make_loader
from iebench.loaders.actions import ActionError
from iebench.loaders.sources import SourceError

METRICS_NAME = "metrics.jsonl"
LOSS_CURVE = "loss.png"
# Channels-last layout: the backbone alone runs 12 % faster on CPU, a whole step of the laptop mini 1-7 %
# (bench/train_step.py); the same maths up to rounding.
MEMORY_FORMAT = torch.channels_last


class OnlineProbe(nn.Module):
    """Linear classifier and rotation regressor on detached representations (training-time signal only)."""

    def __init__(self, dim: int, num_classes: int, action_dim: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(dim, num_classes)
        self.regressor = nn.Linear(2 * dim, action_dim) if action_dim else None

    def forward(self, r1: torch.Tensor, r2: torch.Tensor, labels: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        """The probes' losses and scores on one batch, by name."""
        logits = self.classifier(r1)
        terms = {"probe_ce": nn.functional.cross_entropy(logits, labels), "probe_acc": (logits.argmax(1) == labels).float().mean()}
        if self.regressor is not None:
            terms["probe_mse"] = nn.functional.mse_loss(self.regressor(torch.cat([r1, r2], 1)), action)
        return terms


@dataclass
class TrainResult:
    """Where the run is and what its last epoch did."""

    run: Path
    epochs_done: int
    last_epoch_loss: float | None


def prepare_data(config: TrainConfig) -> PairDataset:
    """The training pairs, with clear errors for missing shards or latents the method cannot use."""
    if not config.data:
        raise ConfigError("no --data: give the shard folder (or original layout) to train on, as a flag or `data = ...` in --config")
    if not Path(config.data).is_dir():
        raise ConfigError(f"--data {config.data!r} is not a folder of shards (or of the original layout)")
    action = config.action_name
    try:
        return PairDataset(config.data, "train", action=action, seed=config.seed)
    except ActionError as error:
        raise ConfigError(f"method {config.method!r} with action {action!r}: {error}") from None
    except SourceError as error:  # a folder that is neither shards nor the original layout
        raise ConfigError(f"--data {config.data}: {error}") from None


def _log(path: Path, record: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(record, allow_nan=False) + "\n")


def _trim_metrics(path: Path, last_epoch: int) -> None:
    """On resume, drop what the interrupted epoch logged after the checkpoint, and a line a kill cut short."""
    if not path.is_file():
        return
    lines = path.read_text().split("\n")[:-1]  # the text after the last newline is a line the kill cut short
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append((json.loads(line)["epoch"], line))
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{path}: line {number} is not a metrics record; move the file away and run again") from None
    write_atomic(path, "".join(line + "\n" for epoch, line in records if epoch <= last_epoch).encode())


def shard_set_digest(data: str) -> str | None:
    """What identifies a shard set wherever it lies (its checksums); None for the original layout, which has none."""
    from iebench.baselines.features import data_digest

    return data_digest(Path(data)) if (Path(data) / "SHA256SUMS").is_file() else None


def _resume_state(config: TrainConfig, path: Path, resume: bool) -> dict | None:
    """The checkpoint to continue from (None for a new run), checked against the configuration."""
    if not resume:
        if path.is_file():
            raise ConfigError(f"{path.parent} already holds a run: pass --resume to continue it, or choose a new --out")
        return None
    if not path.is_file():
        raise ConfigError(f"--resume: {path.parent} holds no run to continue ({path.name} is missing): drop --resume to start one")
    state = checkpoint.load(path, for_training=True)
    checkpoint.check_config(state, config.fingerprint(), path)
    trained_on = state["extra"].get("data")
    if trained_on is not None and config.data and trained_on != shard_set_digest(config.data):
        raise ConfigError(f"{path.parent} trained on other data than --data {config.data}: resume on the shards it started on")
    done = state["epoch"] + 1
    if config.epochs < done:
        raise ConfigError(f"{path.parent} has trained {done} epochs: --epochs {config.epochs} is fewer; nothing was changed")
    return state


def _last_epoch_loss(metrics: Path) -> float | None:
    """The mean loss of the last epoch logged in metrics.jsonl."""
    if not metrics.is_file():
        return None
    epochs = [json.loads(line) for line in metrics.read_text().splitlines() if '"kind": "epoch"' in line]
    return epochs[-1]["loss"] if epochs else None


@dataclass
class Session:
    """What the epochs work on: the process, the data, the model and its optimisation, and where the run is written."""

    config: TrainConfig
    runtime: Runtime
    data: PairDataset
    loader: object  # the EpochLoader
    model: nn.Module  # the method, wrapped in DDP over several processes
    probe: OnlineProbe | None
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    normalize: Normalize
    autocast_dtype: torch.dtype | None  # the whole forward pass's mixed-precision type (float16 on CUDA); None: float32
    run: Path
    data_digest: str | None  # `shard_set_digest` of the data, kept in every checkpoint: a resume must continue on it
    board: object | None = None  # a TensorBoard writer on the main process, when tensorboard is installed

    @property
    def metrics(self) -> Path:
        """The run's metrics.jsonl."""
        return self.run / METRICS_NAME


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train `config.method` on `config.data` into `config.out`.

    The steps, in order: check the configuration and what a resumed run continues from; join the
    process group; open the data; build the model and its optimiser; restore the checkpoint; write
    the run files; run the epochs (each step logged, a checkpoint after each epoch); draw the loss curve.
    """
    config.validate()
    if not config.out:
        raise ConfigError("--out is required (the run folder)")
    run = Path(config.out)
    if os.environ.get("RANK", "0") == "0":  # rank 0 alone writes the run folder
        remove_temporary(run)  # what a crashed run left (a half-written checkpoint.pt.tmp-<pid>)
    state = _resume_state(config, run / checkpoint.CHECKPOINT_NAME, resume)
    if state is not None and state["epoch"] + 1 == config.epochs:  # already trained: only what an interruption left undone
        if os.environ.get("RANK", "0") == "0" and not (run / LOSS_CURVE).is_file():
            _draw_loss_curve(config, run)
        return TrainResult(run, config.epochs, _last_epoch_loss(run / METRICS_NAME))
    session = _start_session(config, run)
    start_epoch = _restore(session, state) if state is not None else 0
    _write_run_files(session, start_epoch, resume)
    last_loss = _run_epochs(session, start_epoch, progress)
    if session.runtime.is_main:
        _draw_loss_curve(config, run)
    return TrainResult(run, config.epochs, last_loss)


def _draw_loss_curve(config: TrainConfig, run: Path) -> None:
    """RUN/loss.png from its metrics.jsonl (where there is one)."""
    from iebench.baselines.plots import loss_curve

    if (run / METRICS_NAME).is_file():
        loss_curve(run / METRICS_NAME, run / LOSS_CURVE, title=f"{config.method} on {Path(config.data).name}")


def _start_session(config: TrainConfig, run: Path) -> Session:
    """Join the process group, open the data and its loader, build the model, the online probe and the optimiser (in this order: it fixes the draws)."""
    runtime = setup(config.device)
    torch.manual_seed(config.seed)
    data = prepare_data(config)
    per_rank = config.batch_size // runtime.world_size
    if per_rank < 2 or config.batch_size % runtime.world_size:
        raise ConfigError(f"batch size {config.batch_size} does not split over {runtime.world_size} ranks, two or more each")
    try:
        loader = make_loader(
            data,
            per_rank,
            train=True,
            num_workers=config.workers,
            seed=config.seed,
            drop_last=config.drop_last,
            rank=runtime.rank,
            world_size=runtime.world_size,
        )
    except ValueError as error:
        raise ConfigError(f"batch size {config.batch_size}: {error}") from None
    model = build_method(config, data.action_dim).to(runtime.device, memory_format=MEMORY_FORMAT)
    model.backbone_bf16 = precision(config, runtime.device) == "bfloat16 backbone"
    probe = None
    if config.online_probe:
        num_classes = max(o.label for o in data.objects) + 1
        probe = OnlineProbe(model.dim, num_classes, data.action_dim).to(runtime.device)
    if runtime.world_size > 1:
        if runtime.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = nn.parallel.DistributedDataParallel(model, device_ids=[runtime.local_rank] if runtime.device.type == "cuda" else None)
    parameters = list(model.parameters()) + (list(probe.parameters()) if probe else [])
    optimizer = torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    dtype = autocast_dtype(config, runtime.device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)  # bfloat16 has float32's range: no scaling
    normalize = Normalize(size=config.image_size).to(runtime.device)
    return Session(config, runtime, data, loader, model, probe, optimizer, scaler, normalize, dtype, run, shard_set_digest(config.data))


def _restore(session: Session, state: dict) -> int:
    """Load a checkpoint's model, probe, optimiser, scaler and random states; returns the epoch to start from."""
    try:
        _unwrap(session.model).load_state_dict(state["model"]["method"])
        if session.probe:
            session.probe.load_state_dict(state["model"]["probe"])
        session.optimizer.load_state_dict(state["optimizer"])
        session.scaler.load_state_dict(state["scaler"])  # empty when the run started without float16 (on a CPU)
    except (RuntimeError, KeyError, ValueError) as error:
        path = session.run / checkpoint.CHECKPOINT_NAME
        raise checkpoint.CheckpointError(f"{path} does not fit {session.config.method}: {str(error).splitlines()[0]}") from None
    checkpoint.set_rng_state(state["rng"])
    return state["epoch"] + 1


def _write_run_files(session: Session, start_epoch: int, resume: bool) -> None:
    """On the main process: config.json, run.json, the metrics trimmed to the checkpoint, and the TensorBoard writer."""
    if not session.runtime.is_main:
        return
    config, run, runtime = session.config, session.run, session.runtime
    run.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run / checkpoint.CONFIG_NAME, config.to_json())
    write_json_atomic(
        run / "run.json",
        {
            "method": config.method,
            "iebench": iebench.__version__,
            "torch": torch.__version__,
            "world_size": runtime.world_size,
            "device": str(runtime.device),
            "command": sys.argv,
            "resumed_from_epoch": start_epoch if resume else None,
        },
        allow_nan=False,
    )
    _trim_metrics(session.metrics, start_epoch - 1)
    session.board = _tensorboard(run)


def _run_epochs(session: Session, start_epoch: int, progress: bool) -> float | None:
    """Every epoch from `start_epoch`: its steps, its line in metrics.jsonl and its checkpoint; returns the last epoch's mean loss."""
    config, runtime = session.config, session.runtime
    steps = len(session.loader)
    bar = tqdm(
        total=config.epochs * steps,
        initial=start_epoch * steps,
        unit="step",
        desc=config.method,
        disable=not (progress and runtime.is_main),
        dynamic_ncols=True,
    )
    last_loss = None
    try:
        for epoch in range(start_epoch, config.epochs):
            totals, waited, computed = _run_epoch(session, epoch, bar)
            last_loss = totals["loss"] / steps
            if runtime.is_main:
                _log(
                    session.metrics,
                    {
                        "kind": "epoch",
                        "epoch": epoch,
                        **{k: v / steps for k, v in totals.items()},
                        "data_seconds": waited,
                        "compute_seconds": computed,
                    },
                )
                _save_checkpoint(session, epoch)
            if runtime.world_size > 1:
                torch.distributed.barrier()
    finally:
        bar.close()
        session.loader.close()
        if session.board is not None:
            session.board.close()
    return last_loss


def _run_epoch(session: Session, epoch: int, bar: tqdm) -> tuple[dict[str, float], float, float]:
    """One epoch of steps: the summed loss terms, the seconds spent waiting for data and computing."""
    steps = len(session.loader)
    session.loader.set_epoch(epoch)
    session.model.train()
    totals: dict[str, float] = {}
    waited = computed = 0.0
    tick = time.perf_counter()
    for step, batch in enumerate(session.loader):
        fetched = time.perf_counter()
        record = _step(session, batch, epoch, step)
        for key, value in record.items():
            totals[key] = totals.get(key, 0.0) + value
        done = time.perf_counter()
        waited, computed = waited + fetched - tick, computed + done - fetched
        tick = done
        if session.runtime.is_main:
            _log(session.metrics, {"kind": "step", "epoch": epoch, "step": step, "global_step": epoch * steps + step, **record})
            if session.board is not None:
                for key, value in record.items():
                    session.board.add_scalar(f"train/{key}", value, epoch * steps + step)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}", epoch=epoch)
    return totals, waited, computed


def _step(session: Session, batch: dict, epoch: int, step: int) -> dict[str, float]:
    """One optimisation step on a batch of pairs (and the online probe's); returns its scalar terms."""
    device = session.runtime.device
    x1 = session.normalize(batch["view1"].to(device, non_blocking=True)).contiguous(memory_format=MEMORY_FORMAT)
    x2 = session.normalize(batch["view2"].to(device, non_blocking=True)).contiguous(memory_format=MEMORY_FORMAT)
    action = batch["action"].to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=session.autocast_dtype, enabled=session.autocast_dtype is not None):
        terms = session.model(x1, x2, action)
        if session.probe:
            labels = batch["label"].to(device)
            terms |= session.probe(terms["representation1"].float(), terms["representation2"].float(), labels, action)
    loss = terms["loss"] + sum(terms[k] for k in ("probe_ce", "probe_mse") if k in terms)
    if not torch.isfinite(loss):
        raise diverged(session, f"epoch {epoch} step {step}: the loss is {loss.item()}")
    session.optimizer.zero_grad(set_to_none=True)
    session.scaler.scale(loss).backward()
    session.scaler.step(session.optimizer)
    session.scaler.update()
    record = {k: float(v.detach()) for k, v in terms.items() if v.dim() == 0}
    bad = [f"{k} is {v}" for k, v in record.items() if not math.isfinite(v)]
    if bad:  # metrics.jsonl holds strict JSON: no NaN
        raise diverged(session, f"epoch {epoch} step {step}: {', '.join(bad)}")
    return record


def diverged(session: Session, what: str) -> DivergedError:
    """The error of a training that stopped being finite: where, and what to change."""
    config, run = session.config, session.run
    again = (
        f"then train into a new --out ({run} keeps its last finished epoch's checkpoint)"
        if (run / checkpoint.CHECKPOINT_NAME).is_file()
        else "then run the command again"
    )
    return DivergedError(
        f"{run}: the training diverged ({what}): lower --lr (it is {config.lr:g}), or check the data "
        f"(`iebench verify {config.data}`); {again}"
    )


def _save_checkpoint(session: Session, epoch: int) -> None:
    """The whole training state after `epoch` (main process only), written atomically."""
    holder = {"method": session.model, "probe": session.probe} if session.probe else {"method": session.model}
    bad = checkpoint.non_finite(_unwrap(session.model).state_dict())
    if bad:  # never a checkpoint that evaluates to NaN
        raise diverged(session, f"after epoch {epoch}, tensor {bad[0]}")
    checkpoint.save(
        session.run / checkpoint.CHECKPOINT_NAME,
        model={k: _unwrap(v) for k, v in holder.items()},
        optimizer=session.optimizer,
        scaler=session.scaler,
        epoch=epoch,
        config=session.config.to_json(),
        extra={"action_dim": session.data.action_dim, "latent_names": list(session.data.latent_names), "data": session.data_digest},
    )


def _tensorboard(run: Path):
    """A TensorBoard writer into RUN/tensorboard when the tensorboard package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run / "tensorboard"))


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
