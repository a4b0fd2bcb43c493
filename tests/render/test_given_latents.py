"""`iebench render --latents`: exactly the given views, bit for bit in the latents, and clear errors."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from iebench.cli import main
from iebench.dataset.reader import ShardSet
from iebench.object_lists import sie_entry
from iebench.presets import get_preset
from iebench.render.given_latents import GivenLatentsError, read_given_latents

pytest.importorskip("bpy", reason="the render extra (bpy) is part of the dev set-up")
TINY = ["--resolution", "32", "--samples", "4", "--denoiser", "fast"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_rerender_from_our_own_output(tiny_render, procedural_root, tmp_path):
    job, _ = tiny_render
    result = invoke("render", procedural_root, "--out", tmp_path, "--latents", job.out, *TINY)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "_manifest.json").read_text())
    assert manifest["latents_source"]["kind"] == "loose"
    for path in job.out.glob("*/*/latent_*.npy"):
        again = tmp_path / path.relative_to(job.out)
        assert again.read_bytes() == path.read_bytes()  # bit for bit
        a = np.asarray(Image.open(path.with_name(path.name.replace("latent_", "image_").replace(".npy", ".jpg")))).astype(float)
        b = np.asarray(Image.open(again.with_name(again.name.replace("latent_", "image_").replace(".npy", ".jpg")))).astype(float)
        # Same scene, same Cycles seed and sampling: the renders agree to within JPEG rounding. 40 dB is
        # far above what a different view or lighting gives (under 20 dB) and leaves room for the denoiser's
        # floating-point order on another CPU.
        assert 10 * np.log10(255**2 / max(np.mean((a - b) ** 2), 1e-9)) > 40


def split_arrays(folder, objects, latents):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "train_images.npy", np.array([sie_entry(s, m) for s, m in objects]))
    np.save(folder / "all_latents_train.npy", latents)
    return folder / "all_latents_train.npy"


def test_split_arrays_to_shards(procedural_root, tmp_path):
    objects = [(p.parent.name, p.name) for p in sorted(procedural_root.glob("*/*"))[:2]]
    rng = np.random.default_rng(0)
    latents = np.column_stack(
        [rng.uniform(-1.5, 1.5, (6, 3)), rng.uniform(0, 1, 6), rng.uniform(0, 0.7, 6), rng.uniform(0, 6, 6), rng.uniform(0, 1, 6)]
    )
    given = split_arrays(tmp_path / "arrays", objects, latents)
    out = tmp_path / "out"
    result = invoke("render", procedural_root, "--out", out, "--latents", given, "--format", "shards", "--val-fraction", "0", *TINY)
    assert result.exit_code == 0, result.output
    samples = {ref.key: ref.latents() for ref in ShardSet(out).samples("train")}
    for index, (synset, model_id) in enumerate(objects):
        assert np.array_equal(samples[f"{synset}_{model_id}"], latents[3 * index : 3 * index + 3])
    assert len(samples) == 2  # objects of SRC that FROM does not list are not rendered


def test_objects_missing_from_src_are_reported(procedural_root, tmp_path):
    objects = [("03001627", "notthere")]
    given = split_arrays(tmp_path / "arrays", objects, np.tile([0, 0, 0, 0.5, 0.3, 1.0, 0.2], (2, 1)).astype(np.float64))
    result = invoke("render", procedural_root, "--out", tmp_path / "out", "--latents", given, *TINY)
    assert result.exit_code == 1
    line = json.loads((tmp_path / "out" / "_failures.jsonl").read_text().splitlines()[0])
    assert line["object"] == "03001627/notthere" and "no mesh file" in line["reason"]


def test_bad_latents_are_refused_before_rendering(procedural_root, tmp_path):
    preset = get_preset("3diebench")
    objects = [("03001627", "a"), ("03001627", "b")]
    with pytest.raises(GivenLatentsError, match="8 values"):
        read_given_latents(split_arrays(tmp_path / "long", objects, np.zeros((4, 8))), preset)
    with pytest.raises(GivenLatentsError, match="int64, not float64"):
        read_given_latents(split_arrays(tmp_path / "ints", objects, np.zeros((4, 7), dtype=np.int64)), preset)
    with pytest.raises(GivenLatentsError, match="float32, not float64"):  # its values would be written rounded
        read_given_latents(split_arrays(tmp_path / "singles", objects, np.zeros((4, 7), dtype=np.float32)), preset)
    nan = np.zeros((4, 7))
    nan[1, 3] = np.nan
    with pytest.raises(GivenLatentsError, match="all_latents_train.npy: 1 latent values are NaN"):
        read_given_latents(split_arrays(tmp_path / "nan", objects, nan), preset)
    with pytest.raises(GivenLatentsError, match="whole number of views"):
        read_given_latents(split_arrays(tmp_path / "rows", objects, np.zeros((5, 7))), preset)
    with pytest.raises(GivenLatentsError, match="fixes floor_hue"):
        read_given_latents(split_arrays(tmp_path / "ok", objects, np.zeros((4, 7))), get_preset("rotation-only"))
    translated = split_arrays(tmp_path / "t", objects, np.zeros((4, 10)))
    with pytest.raises(GivenLatentsError, match="10 values, preset '3diebench' has 7"):
        read_given_latents(translated, preset)
    assert len(read_given_latents(translated, get_preset("3diebench-t")).views) == 2
    result = invoke("render", procedural_root, "--out", tmp_path / "o", "--latents", tmp_path / "ok", "--factor", "floor_hue=0.2")
    assert result.exit_code != 0 and "cannot be combined" in result.output
    result = invoke("render", procedural_root, "--out", tmp_path / "o", "--latents", tmp_path / "rows" / "all_latents_train.npy")
    assert result.exit_code != 0 and "all_latents_train.npy" in result.output
    assert not (tmp_path / "o").exists()


def test_dry_run_with_given_latents_calibrates_on_them_and_writes_nothing(tiny_render, procedural_root, tmp_path):
    job, _ = tiny_render
    result = invoke("render", procedural_root, "--out", tmp_path / "dry", "--latents", job.out, *TINY, "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"images:   {len(job.objects) * job.views} ({len(job.objects) * job.views} still to render)" in result.output
    assert not list((tmp_path / "dry").glob("*/*/*"))
