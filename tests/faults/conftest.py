"""Helpers of the fault-injection tests: copies of the session's tiny data, the CLI in and out of process, a small disk."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from iebench.cli import main

TMP_MARK = ".tmp-"
TINY_TRAIN = ("--preset", "tiny", "--batch-size", "3", "--image-size", "32", "--device", "cpu")  # `iebench train` in seconds


@pytest.fixture
def shards(packed, tmp_path) -> Path:
    """A private copy of the session's packed tiny set, to damage."""
    out, _ = packed
    target = tmp_path / "shards"
    shutil.copytree(out, target)
    return target


@pytest.fixture
def loose(tiny_render, tmp_path) -> Path:
    """A private copy of the session's tiny render (original layout)."""
    job, _ = tiny_render
    target = tmp_path / "loose"
    shutil.copytree(job.out, target)
    return target


def invoke(*args) -> tuple[int, str]:
    """The CLI in this process: (exit code, everything it printed)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback would have reached the user
    return result.exit_code, result.output


def run_cli(*args, fsize: int | None = None, timeout: float = 300, env: dict | None = None) -> tuple[int, str]:
    """The CLI in a subprocess (real OS limits: `fsize` caps every file it writes, as `ulimit -f`)."""

    def limits() -> None:
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    process = subprocess.run(
        [sys.executable, "-m", "iebench.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limits,
        env={**os.environ, **(env or {})},
    )
    return process.returncode, process.stdout + process.stderr


def assert_clean_failure(code: int, output: str, *words: str) -> str:
    """Non-zero exit, no traceback, and the last line is one `Error:` line holding every word; returns that line."""
    assert code != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], output
    for word in words:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"
    return errors[0]


def temporary_files(root: Path) -> list[Path]:
    """Every temporary file left under root."""
    return [p for p in Path(root).rglob(f"*{TMP_MARK}*")]


class SmallDisk:
    """Where a command runs out of space: a tiny tmpfs when this process may mount one, else a file-size limit.

    `root` is the folder to write to; `run(*args)` runs the CLI in a subprocess; `real_disk` says
    whether the failure is ENOSPC from a full file system of `size` bytes, else EFBIG from RLIMIT_FSIZE:
    every file the command writes is capped at `fsize` bytes (`ulimit -f`). Setting
    IEBENCH_TEST_NO_MOUNT=1 tests the second way where the first is possible.
    """

    def __init__(self, base: Path, size: int, fsize: int) -> None:
        self.root, self.size, self.fsize, self.real_disk = base / f"disk-{uuid.uuid4().hex[:6]}", size, fsize, False
        self.root.mkdir()
        if os.environ.get("IEBENCH_TEST_NO_MOUNT") != "1" and hasattr(os, "geteuid") and os.geteuid() == 0:
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(self.root)], capture_output=True)
            self.real_disk = mounted.returncode == 0

    def run(self, *args, timeout: float = 300) -> tuple[int, str]:
        return run_cli(*args, fsize=None if self.real_disk else self.fsize, timeout=timeout)

    def grow(self, size: int) -> None:
        """Make room (a real disk is remounted larger; a file-size limit only ever applied to `run`)."""
        if self.real_disk:
            subprocess.run(["mount", "-o", f"remount,size={size}", str(self.root)], check=True, capture_output=True)

    def fill(self) -> None:
        """Take every free byte (a real disk only)."""
        handle = os.open(self.root / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(handle, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(handle)

    def unmount(self) -> None:
        if self.real_disk:
            subprocess.run(["umount", str(self.root)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A factory of SmallDisk objects: `small_disk(size, fsize)` (unmounted at the end)."""
    disks = []

    def make(size: int, fsize: int) -> SmallDisk:
        disk = SmallDisk(tmp_path, size, fsize)
        disks.append(disk)
        return disk

    yield make
    for disk in disks:
        disk.unmount()
