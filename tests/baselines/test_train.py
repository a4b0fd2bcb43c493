"""Real training steps on CPU over the tiny rendered shards: loss goes down, checkpoints, exact resume."""

import json
import re

import numpy as np
import pytest
import torch

from iebench.baselines import checkpoint
from iebench.baselines.checkpoint import CheckpointError
from iebench.baselines.config import ConfigError, TrainConfig, resolve
from iebench.baselines.export import export_backbone
from iebench.baselines.methods import METHODS, registered
from iebench.baselines.precision import autocast_dtype, precision
from iebench.baselines.trainer import train

from ..conftest import rotations_only_copy


def tiny_config(data, out, **changes) -> TrainConfig:
    values = dict(
        method="sie",
        data=str(data),
        out=str(out),
        epochs=2,
        batch_size=3,
        image_size=None,
        workers=0,
        projector=(64, 64, 64),
        lr=1e-3,
        device="cpu",
    )
    values.update(changes)
    return TrainConfig(**values)


def epoch_losses(run):
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in lines if r["kind"] == "epoch"]


def first_step_loss(run):
    return next(r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "step")


def test_training_lowers_the_loss_and_checkpoints(packed, tmp_path):
    out, _ = packed
    result = train(tiny_config(out, tmp_path / "run", epochs=8), progress=False)
    losses = epoch_losses(tmp_path / "run")
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 7 and set(state) >= {"model", "optimizer", "scaler", "rng", "config"}
    assert (tmp_path / "run" / "loss.png").is_file() and (tmp_path / "run" / "config.json").is_file()
    assert result.last_epoch_loss == pytest.approx(losses[-1])


@pytest.mark.parametrize("cpu_bf16", [False, True])
def test_resume_gives_the_uninterrupted_losses(packed, tmp_path, cpu_bf16):
    out, _ = packed
    train(tiny_config(out, tmp_path / "straight", epochs=3, cpu_bf16=cpu_bf16), progress=False)
    train(tiny_config(out, tmp_path / "stopped", epochs=1, cpu_bf16=cpu_bf16), progress=False)
    with open(tmp_path / "stopped" / "metrics.jsonl", "a") as metrics:
        metrics.write('{"kind": "step", "epoch": 1, "st')  # killed while it logged a step of the next epoch
    train(tiny_config(out, tmp_path / "stopped", epochs=3, cpu_bf16=cpu_bf16), resume=True, progress=False)
    assert epoch_losses(tmp_path / "stopped") == pytest.approx(epoch_losses(tmp_path / "straight"), rel=1e-6, abs=1e-9)


def test_bfloat16_on_cpu_rounds_the_first_step_and_changes_nothing_else(packed, tmp_path):
    out, _ = packed
    for name, cpu_bf16 in (("fp32", False), ("bf16", True)):
        train(tiny_config(out, tmp_path / name, epochs=1, cpu_bf16=cpu_bf16), progress=False)
    fp32, bf16 = (first_step_loss(tmp_path / name) for name in ("fp32", "bf16"))
    assert bf16 != fp32 and bf16 == pytest.approx(fp32, rel=0.05)  # the same weights and batch, the backbone rounded


def test_the_precision_by_device_and_setting():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert precision(TrainConfig(), cpu) == "float32" and precision(TrainConfig(cpu_bf16=True), cpu) == "bfloat16 backbone"
    assert autocast_dtype(TrainConfig(cpu_bf16=True), cpu) is None  # the backbone's own context, not the whole pass's
    assert autocast_dtype(TrainConfig(), cuda) == torch.float16 and precision(TrainConfig(amp=False, cpu_bf16=True), cuda) == "float32"


@pytest.mark.parametrize("method", ["sie-rotcolor", "sie-novar", "sie-onlyequi"])
def test_variants_train(packed, tmp_path, method):
    out, _ = packed
    train(tiny_config(out, tmp_path / method, method=method, epochs=1, online_probe=True), progress=False)
    record = json.loads((tmp_path / method / "metrics.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(record["loss"]) and "probe_acc" in record


def test_bad_input_is_refused_before_training(packed, tmp_path):
    out, info = packed
    with pytest.raises(ConfigError, match="not a folder"):
        train(tiny_config(tmp_path / "nowhere", tmp_path / "a"), progress=False)
    with pytest.raises(ConfigError, match="larger than the data set"):
        train(tiny_config(out, tmp_path / "b", batch_size=64), progress=False)
    with pytest.raises(ConfigError, match="unknown method"):
        train(tiny_config(out, tmp_path / "c", method="byol"), progress=False)
    train(tiny_config(out, tmp_path / "d", epochs=1), progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny_config(out, tmp_path / "d", epochs=2), progress=False)
    with pytest.raises(CheckpointError, match="lr"):
        train(tiny_config(out, tmp_path / "d", epochs=2, lr=5e-4), resume=True, progress=False)
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve("huge")
    with pytest.raises(ConfigError, match="batch_size must be at least 2"):  # BatchNorm cannot normalise one sample
        resolve("tiny", batch_size=1)


@pytest.mark.parametrize(
    "line, message",
    [
        ('lr = "abc"', "lr must be a number, got 'abc'"),
        ("projector = 5", "projector must be a list of integers, got 5"),
        ('projector = ["a"]', "projector must be a list of integers"),
        ("epochs = 1.5", "epochs must be an integer, got 1.5"),
        ("image_size = true", "image_size must be an integer (or absent), got True"),
        ('sim_coeff = "x"', "sim_coeff must be a number"),
        ("nosuch = 1", "unknown configuration keys: nosuch"),
    ],
)
def test_a_config_file_of_the_wrong_types_is_refused_with_its_name(tmp_path, line, message):
    toml = tmp_path / "run.toml"
    toml.write_text(line + "\n")
    with pytest.raises(ConfigError, match=re.escape(f"config file {toml}: {message}")):
        resolve("tiny", toml)
    toml.write_bytes(bytes(range(128, 256)))
    with pytest.raises(ConfigError, match=f"config file {toml}"):
        resolve("tiny", toml)
    with pytest.raises(ConfigError, match="workers must be 0 or more"):
        resolve("tiny", workers=-2)


def test_latents_without_what_the_method_needs(tiny_render, tmp_path):
    data = rotations_only_copy(tiny_render[0].out, tmp_path / "rotations-only")
    with pytest.raises(ConfigError, match="floor_hue"):
        train(tiny_config(data, tmp_path / "run", method="sie-rotcolor"), progress=False)


def test_export_loads_into_torchvision(packed, tmp_path):
    from torchvision.models import resnet18

    out, _ = packed
    train(tiny_config(out, tmp_path / "run", epochs=1, backbone="resnet18"), progress=False)
    path = export_backbone(tmp_path / "run", tmp_path / "backbone.pt")
    model = resnet18()
    model.fc = torch.nn.Identity()
    model.load_state_dict(torch.load(path, weights_only=True))
    state = checkpoint.load(tmp_path / "run" / "checkpoint.pt")["model"]["method"]
    assert torch.equal(model.conv1.weight, state["backbone.net.conv1.weight"])


def test_resume_with_fewer_epochs_changes_nothing(packed, tmp_path):
    out, _ = packed
    run = tmp_path / "run"
    train(tiny_config(out, run, epochs=2), progress=False)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(ConfigError, match="has trained 2 epochs: --epochs 1 is fewer"):
        train(tiny_config(out, run, epochs=1), resume=True, progress=False)
    done = train(tiny_config(out, run, epochs=2), resume=True, progress=False)
    assert done.last_epoch_loss == pytest.approx(epoch_losses(run)[-1])
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    (run / "loss.png").unlink()  # interrupted between its last checkpoint and the curve
    train(tiny_config(out, run, epochs=2), resume=True, progress=False)
    assert (run / "loss.png").is_file()


def test_resume_continues_on_its_shards_wherever_they_lie_and_on_no_others(packed, tiny_render, tmp_path):
    import shutil

    from iebench.dataset.pack import PackOptions, pack

    out, _ = packed
    run = tmp_path / "run"
    train(tiny_config(out, run, epochs=1), progress=False)
    moved = shutil.copytree(out, tmp_path / "moved")
    other = tmp_path / "other"
    pack(tiny_render[0].out, other, PackOptions(name="tiny", shard_size_mb=0.004, workers=1, split_seed=1))  # another split
    with pytest.raises(ConfigError, match="trained on other data than --data"):
        train(tiny_config(other, run, epochs=2), resume=True, progress=False)
    train(tiny_config(moved, run, epochs=2), resume=True, progress=False)  # the same shards, copied elsewhere
    assert len(epoch_losses(run)) == 2


def test_files_that_are_not_checkpoints_get_one_clear_line(packed, tmp_path):
    out, _ = packed
    run = tmp_path / "run"
    train(tiny_config(out, run, epochs=1), progress=False)
    export_backbone(run, tmp_path / "backbone.pt")
    (run / "checkpoint.pt").write_bytes((tmp_path / "backbone.pt").read_bytes())
    with pytest.raises(CheckpointError, match="not an iebench checkpoint: it looks like a backbone state dict"):
        train(tiny_config(out, run, epochs=2), resume=True, progress=False)
    (run / "checkpoint.pt").write_bytes(b"\x80\x02random bytes, not a torch file")
    with pytest.raises(CheckpointError, match=r"is not an iebench checkpoint \(not a file torch.save wrote") as raised:
        checkpoint.load(run / "checkpoint.pt")
    assert "weights_only=False" not in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(ConfigError, match="holds no run to continue .*drop --resume"):
        train(tiny_config(out, tmp_path / "new", epochs=1), resume=True, progress=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "new" / "checkpoint.pt")


@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in METHODS if registered(m).cls != "SIE"])  # SIE and its variants: above
def test_every_method_trains_and_resumes_exactly(packed, tmp_path, method):
    out, _ = packed
    extra = {"image_size": 64, "extra": {"decoder_blocks": 2, "decoder_width": 48}} if method == "recon-xattn" else {}
    train(tiny_config(out, tmp_path / "straight", method=method, epochs=2, **extra), progress=False)
    train(tiny_config(out, tmp_path / "stopped", method=method, epochs=1, **extra), progress=False)
    train(tiny_config(out, tmp_path / "stopped", method=method, epochs=2, **extra), resume=True, progress=False)
    straight = epoch_losses(tmp_path / "straight")
    assert all(np.isfinite(straight))
    assert epoch_losses(tmp_path / "stopped") == pytest.approx(straight, rel=1e-6, abs=1e-9)
