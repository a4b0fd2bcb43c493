"""Atomic file writes: a temporary name in the same folder, then a rename, so nothing half-written looks complete.

A temporary file is `<name>.tmp-<pid>`. A failed write (no space left, interrupted) removes its own
temporary file before the error goes on, with the error naming the file it was writing; a process
killed outright cannot, so each command sweeps the temporary files of its own outputs when it starts
(`remove_temporary`), leaving those of live processes alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp-"


def temporary_path(path: Path) -> Path:
    """The temporary name this process writes `path` under."""
    path = Path(path)
    return path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")


def naming(error: OSError, path: Path) -> OSError:
    """The same OS error, naming `path` (a failed write() names no file of its own, a temporary name means nothing to a user)."""
    if error.filename is not None and TMP_MARK not in str(error.filename):
        return error
    return type(error)(error.errno, error.strerror or os.strerror(error.errno or 0), str(path))


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """The temporary path to write `path` under; renamed into place when the block ends without error.

    On any failure the temporary file is removed; an OSError names `path`.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise naming(error, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes under a temporary name in the same folder, then rename into place (see `atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: Path, data: object, allow_nan: bool = True) -> None:
    """Write indented JSON atomically; `allow_nan=False` refuses NaN and infinities (strict JSON parsers reject them)."""
    write_atomic(path, (json.dumps(data, indent=1, allow_nan=allow_nan) + "\n").encode())


def pid_alive(pid: int) -> bool:
    """Whether a process of this id runs (this one included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_temporary(folder: Path, prefixes: tuple[str, ...] | None = None) -> list[Path]:
    """Delete temporary files an earlier, interrupted run left in `folder`; returns them.

    Only files whose writing process is gone are removed (a job array's jobs share folders); with
    `prefixes`, only temporary files of those outputs (`<prefix>...tmp-<pid>`).
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for leftover in folder.glob(f"*{TMP_MARK}*"):
        name, _, pid = leftover.name.rpartition(TMP_MARK)
        if prefixes is not None and not name.startswith(prefixes):
            continue
        if pid.isdigit() and pid_alive(int(pid)):
            continue
        try:
            leftover.unlink()
            removed.append(leftover)
        except FileNotFoundError:
            pass
    return removed
