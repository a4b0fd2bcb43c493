"""Code that runs inside a render worker process: one Blender scene, many objects.

The worker renders and encodes; the main process writes (so loose files and shards are two writers
of the same result, and only one process ever writes the output).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iebench.passes import PASSES
from iebench.render.objects import NATIVE_SUFFIXES, ObjectRef
from iebench.render.scene import view_scene
from iebench.render.settings import RenderSettings
from iebench.render.writer import encode_jpeg


@dataclass(frozen=True)
class ObjectTask:
    """Render these views (index, latent vector) of one object."""

    ref: ObjectRef
    views: tuple[tuple[int, np.ndarray], ...]
    latent_names: tuple[str, ...]


@dataclass
class RenderedView:
    """One finished view: its index, JPEG bytes, latents, and the bytes of each of its passes by name."""

    index: int
    jpeg: bytes
    latents: np.ndarray
    passes: dict[str, bytes] = field(default_factory=dict)


@dataclass
class ObjectResult:
    """What a worker did with one task."""

    key: str
    views: list[RenderedView] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    device: str = ""  # the Cycles device that rendered it (CPU or GPU; --device auto decides per worker)


@dataclass(frozen=True)
class WorkerOptions:
    """Per-process settings of a render worker."""

    settings: RenderSettings
    threads: int = 0
    max_faces: int = 5_000_000
    max_mesh_mb: float = 1024.0
    passes: tuple[str, ...] = ()  # named passes of `iebench.passes`, rendered with each view


_STATE: dict = {}


def init_worker(options: WorkerOptions) -> None:
    """Build the Blender scene once for this process (the pool's initializer)."""
    _silence_blender()
    # A parent that imported bpy passes bpy's own script folders on sys.path to spawned children,
    # where they would shadow the real bpy module.
    sys.path[:] = [p for p in sys.path if f"{os.sep}bpy{os.sep}" not in p]
    _STATE["options"] = options
    try:
        from iebench.render.blender import (
            SceneRenderer,  # imports bpy: only ever in worker processes
        )

        _STATE["renderer"] = SceneRenderer(options.settings, options.threads, options.passes)
    except Exception as error:  # reported with every task, instead of a pool that dies without a word
        _STATE["init_error"] = f"Blender could not start in the worker: {type(error).__name__}: {error}"


def _silence_blender() -> None:
    """Send Blender's C-level chatter ("Saved: ...") to IEBENCH_BLENDER_LOG, or nowhere, not over the progress bar."""
    target = os.open(os.environ.get("IEBENCH_BLENDER_LOG", os.devnull), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)


def _importable(mesh: Path, workdir: str) -> Path:
    """The mesh itself if Blender imports its format, else an OBJ copy converted by trimesh (bpy has no OFF importer)."""
    if mesh.suffix.lower() in NATIVE_SUFFIXES:
        return mesh
    import trimesh

    from iebench.render.blender import MeshError

    try:
        loaded = trimesh.load(mesh, force="scene")
    except Exception as error:  # trimesh raises many types for unreadable files
        raise MeshError(f"trimesh could not read {mesh}: {error}") from None
    converted = Path(workdir) / "converted.obj"
    loaded.export(converted)
    return converted


def render_object(task: ObjectTask) -> ObjectResult:
    """Import one object, render the requested views and unload it; errors become a result, not a crash."""
    from iebench.render.blender import MeshError

    result = ObjectResult(task.ref.key)
    if "init_error" in _STATE:
        result.error = _STATE["init_error"]
        return result
    renderer, options = _STATE["renderer"], _STATE["options"]
    result.device = renderer.device
    start = time.perf_counter()
    mesh = task.ref.mesh
    try:
        if not mesh.is_file():
            raise MeshError(f"no mesh file: expected {mesh}")
        size_mb = mesh.stat().st_size / 2**20
        if size_mb > options.max_mesh_mb:
            raise MeshError(f"{mesh} is {size_mb:.0f} MB, more than --max-mesh-mb {options.max_mesh_mb:.0f}")
        with tempfile.TemporaryDirectory(prefix="iebench-mesh-") as workdir:
            loaded = renderer.load(_importable(mesh, workdir), options.max_faces)
        result.warnings = loaded.warnings
        try:
            for index, latents in task.views:
                rgb, arrays = renderer.render_passes(loaded, view_scene(task.latent_names, latents))
                jpeg = encode_jpeg(rgb, options.settings.jpeg_quality, options.settings.legacy_bgr)
                passes = {name: PASSES[name].encode(arrays[name]) for name in options.passes}
                result.views.append(RenderedView(index, jpeg, latents, passes))
        finally:
            renderer.unload(loaded)
    except MeshError as error:
        result.error = str(error)
    except Exception as error:  # a bug or a Blender failure on this object: report it, keep the run going
        result.error = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}"
    result.seconds = time.perf_counter() - start
    return result
