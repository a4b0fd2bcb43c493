"""Keys are never parsed (issue case 3): any class folder name that can be stored works, the others are refused up front."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from iebench.dataset import format as fmt
from iebench.dataset.reader import ShardSet
from iebench.dataset.verify import verify
from iebench.loaders import PairDataset
from iebench.object_lists import read_object_list
from iebench.presets import get_preset
from iebench.render.given_latents import read_given_latents

from .conftest import assert_clean_failure, invoke

RENDER = ["--views", "2", "--resolution", "32", "--samples", "2", "--denoiser", "off", "--workers", "1"]


def test_a_class_folder_with_an_underscore_packs_verifies_and_loads(loose, tmp_path):
    first = sorted(p for p in loose.iterdir() if p.is_dir())[0]
    models = sorted(p.name for p in first.iterdir())
    first.rename(loose / "my_planes")
    code, output = invoke("pack", loose, tmp_path / "out", "--name", "tiny", "--workers", "1")
    assert code == 0, output
    out = tmp_path / "out"
    assert verify(out, progress=False) == []
    refs = [ref for split in fmt.SPLITS for ref in ShardSet(out).samples(split) if ref.synset == "my_planes"]
    assert sorted(ref.model_id for ref in refs) == models
    assert {ref.key for ref in refs} == {f"my_planes_{m}" for m in models}
    info = json.loads((out / fmt.INFO_NAME).read_text())
    assert "my_planes" in [c["synset"] for c in info["classes"]]
    listed = read_object_list(out / "train_images.npy") + read_object_list(out / "val_images.npy")
    assert sorted(m for s, m in listed if s == "my_planes") == models
    data = PairDataset(out, "train")
    assert len({data[i]["key"] for i in range(len(data))}) == len(data)
    given = read_given_latents(out, get_preset("3diebench"))  # `render --latents` takes the ids from the samples too
    assert np.array_equal(given.views[("my_planes", models[0])][1], np.load(loose / "my_planes" / models[0] / "latent_1.npy"))


def test_render_to_shards_with_an_underscore_in_a_class(procedural_root, tmp_path):
    src = tmp_path / "objects"
    models = sorted((procedural_root / "02691156").iterdir())[:2]
    for model in models:
        shutil.copytree(model, src / "my_planes" / model.name)
    out = tmp_path / "shards"
    code, output = invoke("render", src, "--out", out, *RENDER, "--format", "shards", "--name", "tiny")
    assert code == 0, output
    assert verify(out, progress=False) == []
    refs = [ref for split in fmt.SPLITS for ref in ShardSet(out).samples(split)]
    assert sorted((r.synset, r.model_id) for r in refs) == [("my_planes", m.name) for m in models]


def test_colliding_keys_are_refused_before_anything_is_written(loose, tmp_path):
    folder = next(p for p in sorted(loose.glob("*/*")) if p.is_dir())
    for synset, model_id in (("a_b", "c"), ("a", "b_c")):
        shutil.copytree(folder, loose / synset / model_id)
    code, output = invoke("pack", loose, tmp_path / "out")
    assert_clean_failure(code, output, "a_b/c", "a/b_c", "a_b_c", "rename one of the folders")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["pack", "render"])
def test_a_name_that_cannot_be_a_key_is_refused_at_the_start(loose, procedural_root, tmp_path, command):
    if command == "pack":
        first = sorted(p for p in loose.iterdir() if p.is_dir())[0]
        first.rename(loose / "my.planes")
        code, output = invoke("pack", loose, tmp_path / "out")
    else:
        src = tmp_path / "objects"
        shutil.copytree(sorted((procedural_root / "02691156").iterdir())[0], src / "my.planes" / "model")
        code, output = invoke("render", src, "--out", tmp_path / "out", *RENDER, "--format", "shards")
    assert_clean_failure(code, output, "'my.planes'", "rename the folder")
    assert not (tmp_path / "out").exists()  # no _part.json, nothing rendered
