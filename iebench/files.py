"""Atomic file writes: a temporary name in the same folder, then a rename, so nothing half-written looks complete."""

from __future__ import annotations

import json
import os
from pathlib import Path

TMP_MARK = ".tmp-"


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes under a temporary name in the same folder, then rename into place."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: object) -> None:
    """Write indented JSON atomically."""
    write_atomic(path, (json.dumps(data, indent=1) + "\n").encode())
