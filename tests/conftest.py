"""Session-wide fixtures: one tiny procedural object set and one real 32 px render, reused by many tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from iebench.layout import LATENT_GLOB
from iebench.presets import get_preset
from iebench.render import procedural
from iebench.render.job import RenderJob, RenderSummary, run
from iebench.render.objects import scan_root
from iebench.render.settings import RenderSettings

THIRD_PARTY = Path(__file__).parent / "data" / "thirdparty"
TINY_SETTINGS = RenderSettings(resolution=32, samples=4, denoiser="fast")


def rotations_only_copy(render_out: Path, dest: Path) -> Path:
    """A copy of a loose render whose latents and manifest keep only the three rotation angles."""
    import json
    import shutil

    import numpy as np

    shutil.copytree(render_out, dest)
    manifest = json.loads((dest / "_manifest.json").read_text())
    manifest["preset"]["factors"] = manifest["preset"]["factors"][:3]
    manifest["latent_names"] = manifest["latent_names"][:3]
    (dest / "_manifest.json").write_text(json.dumps(manifest))
    for path in dest.glob(f"*/*/{LATENT_GLOB}"):
        np.save(path, np.load(path)[:3])
    return dest


@pytest.fixture(scope="session", autouse=True)
def member_table_cache(tmp_path_factory) -> Path:
    """The loaders' member tables are cached in the session's own folder, never in the user's home (CLI runs inherit it)."""
    folder = tmp_path_factory.mktemp("cache")
    os.environ["IEBENCH_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def procedural_root(tmp_path_factory) -> Path:
    """Three classes x two procedural objects, in ShapeNet's layout."""
    root = tmp_path_factory.mktemp("objects")
    procedural.generate(root, classes=3, per_class=2, seed=0)
    return root


def render_procedural(root: Path, out: Path, preset: str, seed: int) -> tuple[RenderJob, RenderSummary]:
    """A real Blender render of the procedural set: 4 views per object at 32 px, two workers."""
    job = RenderJob(
        objects=tuple(scan_root(root)),
        out=out,
        preset=get_preset(preset),
        seed=seed,
        views=4,
        settings=TINY_SETTINGS,
        workers=2,
        source_root=root,
    )
    return job, run(job)


def pack_tiny(render_out: Path, out: Path, name: str) -> dict:
    """A tiny render packed into small shards (several per split), finalized; its `_info.json`."""
    from iebench.dataset.pack import PackOptions, pack

    info, skipped = pack(render_out, out, PackOptions(name=name, shard_size_mb=0.004, workers=2))
    assert not skipped
    return info


@pytest.fixture(scope="session")
def tiny_render(procedural_root, tmp_path_factory) -> tuple[RenderJob, RenderSummary]:
    """The procedural set rendered with 3DIEBench's preset."""
    return render_procedural(procedural_root, tmp_path_factory.mktemp("render"), "3diebench", seed=7)


@pytest.fixture(scope="session")
def packed(tiny_render, tmp_path_factory):
    """The tiny render packed into small shards (several per split), finalized."""
    out = tmp_path_factory.mktemp("shards")
    return out, pack_tiny(tiny_render[0].out, out, "tiny")


@pytest.fixture(scope="session")
def tiny_render_t(procedural_root, tmp_path_factory) -> tuple[RenderJob, RenderSummary]:
    """The procedural set rendered with the 3diebench-t preset (10 latents: translation in world coordinates)."""
    return render_procedural(procedural_root, tmp_path_factory.mktemp("render-t"), "3diebench-t", seed=11)


@pytest.fixture(scope="session")
def packed_t(tiny_render_t, tmp_path_factory) -> Path:
    """The 3diebench-t render packed into shards, finalized."""
    out = tmp_path_factory.mktemp("shards-t")
    pack_tiny(tiny_render_t[0].out, out, "tiny-t")
    return out
