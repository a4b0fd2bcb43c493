"""Every anticipated failure ends in one `Error:` line (issue case 7 and the rule of clean failures): unfinalized
sets, negative counts, unexpected files, unreadable input, wrong file types, interrupts; `--debug` shows the traceback."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from iebench.cli import EXIT_INTERRUPTED, main
from iebench.dataset import format as fmt
from iebench.dataset.finalize import FinalizeError
from iebench.dataset.verify import verify
from iebench.loaders import PairDataset

from .conftest import TINY_TRAIN, assert_clean_failure, invoke, temporary_files


def test_train_on_an_unfinalized_shard_folder_says_to_finalize(shards, tmp_path):
    (shards / fmt.INFO_NAME).unlink()
    code, output = invoke("train", "--preset", "tiny", "--data", shards, "--out", tmp_path / "run", "--device", "cpu")
    assert_clean_failure(code, output, "not finalized", f"iebench finalize {shards}")
    for command in ("verify", "info", "show"):
        assert_clean_failure(*invoke(command, shards), f"iebench finalize {shards}")


def test_verify_on_renders_not_yet_packed_says_to_pack(loose):
    for command in ("verify", "info"):
        assert_clean_failure(*invoke(command, loose), "is not a shard set", "iebench pack")


@pytest.mark.parametrize(
    "args",
    [
        ["render", "objs", "--out", "o", "--workers", "-2"],
        ["render", "objs", "--out", "o", "--views", "0"],
        ["render", "objs", "--out", "o", "--job-index", "-1"],
        ["pack", "a", "b", "--workers", "-1"],
        ["pack", "a", "b", "--shard-size-mb", "-5"],
        ["objects", "procedural", "o", "--per-class", "-3"],
        ["show", "a", "--objects", "-1"],
        ["train", "--data", "a", "--out", "b", "--epochs", "-1"],
        ["train", "--data", "a", "--out", "b", "--workers", "-4"],
        ["train", "--data", "a", "--out", "b", "--batch-size", "0"],
        ["eval", "run", "--data", "a", "--batch-size", "-8"],
        ["mini", "o", "--seeds", "-1"],
    ],
)
def test_negative_counts_are_refused(args):
    code, output = invoke(*args)
    assert code == 2 and "is not in the range" in output and "Traceback" not in output


@pytest.mark.parametrize("command", [["mini", "OUT"], ["compare", "--data", "DATA", "--out", "OUT"]])
def test_unknown_methods_are_refused_before_any_work(command, shards, tmp_path):
    args = [{"OUT": tmp_path / "out", "DATA": shards}.get(a, a) for a in command]
    code, output = invoke(*args, "--methods", "sie,vicrg")
    assert code == 2 and "no method 'vicrg'" in output and "iebench methods" in output
    code, output = invoke(*args, "--methods", " , ")
    assert code == 2 and "at least one method" in output
    code, output = invoke(*args, "--methods", "sie,vicreg,sie")
    assert code == 2 and "'sie' named twice" in output
    assert not (tmp_path / "out").exists()


def test_mini_per_class_without_objects_is_refused(tmp_path):
    assert_clean_failure(*invoke("mini", tmp_path / "out", "--scale", "ci", "--per-class", "2"), "--per-class", "--objects")


def test_the_gpu_scale_without_a_gpu_is_refused_before_it_renders(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on this project's CI machine, on a GPU machine too
    assert_clean_failure(*invoke("mini", tmp_path / "out", "--scale", "gpu"), "CUDA GPU", "--data-only")
    assert not (tmp_path / "out").exists()


def test_cuda_on_a_machine_without_one_is_one_clean_line(shards, tmp_path):
    import torch

    train_args = ("train", "--data", shards, "--out", tmp_path / "run", *TINY_TRAIN[:-2], "--epochs", "1", "--device", "cuda")
    code, output = invoke(*train_args)
    if torch.cuda.is_available():
        assert code == 0, output  # where there is a GPU, it trains there
    else:
        assert_clean_failure(code, output, "--device cuda: no CUDA device")
        assert_clean_failure(*invoke("eval", tmp_path / "run", "--data", shards, "--random-init", "--device", "cuda"), "no CUDA device")


def test_verify_reports_files_it_does_not_expect(shards):
    info_shard = next(shards.glob("*-train-000000.tar"))
    shutil.copy(info_shard, shards / "extra-train-000009.tar")
    (shards / "notes.txt").write_text("mine\n")
    (shards / "tiny-train-000000.tar.tmp-999999999").write_bytes(b"half")
    problems = verify(shards, progress=False)
    assert any(p.startswith("extra-train-000009.tar: a shard that _info.json does not list: no loader reads it") for p in problems)
    assert any(p.startswith("notes.txt: not a file of this shard set") for p in problems)
    assert any(p.startswith("tiny-train-000000.tar.tmp-999999999: a temporary file left by an interrupted run") for p in problems)
    assert len(problems) == 3, problems
    info = json.loads((shards / fmt.INFO_NAME).read_text())
    assert len(PairDataset(shards, "train")) == info["splits"]["train"]["objects"]  # the stray tar is not read
    code, output = invoke("verify", shards)
    assert_clean_failure(code, output, "3 problems")


def test_unreadable_input_names_the_file(loose, tmp_path):
    folder = next(p for p in sorted(loose.glob("*/*")) if p.is_dir())
    (folder / "image_1.jpg").unlink()
    (folder / "image_1.jpg").mkdir()  # a folder where a view should be: reading it fails in the OS
    code, output = invoke("pack", loose, tmp_path / "out", "--workers", "1")
    assert_clean_failure(code, output, "a folder where a file was expected", str(folder / "image_1.jpg"))
    assert temporary_files(tmp_path / "out") == []


def test_wrong_file_types_are_named(shards, loose, tmp_path):
    (shards / fmt.INFO_NAME).write_text("<html>not json</html>")
    assert_clean_failure(*invoke("verify", shards), "_info.json is not valid JSON", "iebench finalize")
    code, output = invoke("train", "--preset", "tiny", "--data", shards, "--out", tmp_path / "run", "--device", "cpu")
    assert_clean_failure(code, output, "_info.json is not valid JSON")
    folder = next(p for p in sorted(loose.glob("*/*")) if p.is_dir())
    (folder / "latent_0.npy").write_text("0.1 0.2 0.3\n")
    code, output = invoke("pack", loose, tmp_path / "out")
    assert_clean_failure(code, output, f"{folder.parent.name}/{folder.name}: latent_0.npy is not a .npy file of latents")
    np.save(folder / "latent_0.npy", np.zeros(7))
    shard = next(shards.glob("*.tar"))
    code, output = invoke("render", loose, "--out", tmp_path / "again", "--latents", shard)
    assert_clean_failure(code, output, "not a release layout, split arrays or shard folder")


def test_debug_shows_the_traceback(shards):
    (shards / fmt.INFO_NAME).unlink()
    plain = CliRunner().invoke(main, ["verify", str(shards)])
    assert plain.exit_code == 1 and plain.output.startswith("Error:") and not isinstance(plain.exception, FinalizeError)
    for args, env in (
        (["--debug", "verify", str(shards)], {}),
        (["verify", str(shards), "--debug"], {}),
        (["verify", str(shards)], {"IEBENCH_DEBUG": "1"}),
    ):
        result = CliRunner(env=env).invoke(main, args)
        assert isinstance(result.exception, FinalizeError), (args, env, result.output)


def test_an_interrupted_run_ends_cleanly(shards, tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "iebench.cli",
            "train",
            *TINY_TRAIN,
            "--data",
            str(shards),
            "--out",
            str(run),
            "--epochs",
            "1000",
            "--workers",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.pt").is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)  # as SLURM's scancel or a `kill` does
    output, _ = process.communicate(timeout=60)
    assert process.returncode == EXIT_INTERRUPTED, output
    assert_clean_failure(process.returncode, output, "interrupted", "run the same command again, with --resume if")
    assert temporary_files(run) == []
