"""Named passes end to end: `render --passes`, the loose layout, resume, --latents, shards, pack, verify, show, loaders."""

import json
import shutil
import tarfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from iebench.cli import main
from iebench.dataset import format as fmt
from iebench.dataset.reader import ShardSet
from iebench.dataset.verify import verify
from iebench.loaders.datasets import ObjectViews, PairDataset, ViewDataset
from iebench.loaders.sources import SourceError
from iebench.loaders.streaming import StreamingPairs
from iebench.passes import PASSES

pytest.importorskip("bpy", reason="the render extra (bpy) is part of the dev set-up")

# The tiny_render fixture's settings (conftest): the same views, now with passes.
TINY = ["--views", "4", "--resolution", "32", "--samples", "4", "--denoiser", "fast", "--seed", "7", "--workers", "2"]
ALL = ("camera", "depth", "mask", "normal")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def passes_render(procedural_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("passes-render")
    result = invoke("render", procedural_root, "--out", out, *TINY, "--passes", "depth,normal,mask")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def passes_shards(passes_render, tmp_path_factory):
    out = tmp_path_factory.mktemp("passes-shards")
    result = invoke("pack", passes_render, out, "--name", "tiny", "--shard-size-mb", "0.02", "--workers", "2")
    assert result.exit_code == 0, result.output
    return out


def test_passes_keep_the_images_and_add_a_file_per_pass(passes_render, tiny_render):
    job, _ = tiny_render
    assert json.loads((passes_render / "_manifest.json").read_text())["passes"] == list(ALL)
    for ref in job.objects:
        plain, folder = job.out / ref.synset / ref.model_id, passes_render / ref.synset / ref.model_id
        for view in range(4):
            for name in (f"image_{view}.jpg", f"latent_{view}.npy"):
                assert (folder / name).read_bytes() == (plain / name).read_bytes()  # the same render, the same bytes
            mask = PASSES["mask"].decode((folder / f"mask_{view}.png").read_bytes())
            depth = PASSES["depth"].decode((folder / f"depth_{view}.png").read_bytes())
            assert mask.shape == (32, 32) and mask.any() and not mask.all()
            assert (depth[mask] > 0).all() and depth[mask].mean() < depth[~mask].mean()  # the object stands before the floor
            camera = PASSES["camera"].decode((folder / f"camera_{view}.json").read_bytes())
            assert np.allclose(camera["object_to_world"][:3, 3], 0)


def test_pack_verify_and_sorted_members(passes_shards):
    assert verify(passes_shards, progress=False) == []
    info = json.loads((passes_shards / fmt.INFO_NAME).read_text())
    assert info["passes"] == list(ALL) and info["format"] == fmt.FORMAT
    shard = passes_shards / info["splits"]["train"]["shards"][0]["name"]
    with tarfile.open(shard) as tar:
        names = tar.getnames()
    assert names == sorted(names) and any(n.endswith(".003.normal.png") for n in names)
    entry = fmt.read_index(shard)["samples"][0]
    assert set(entry["members"]) == (
        {f"{v:03d}.jpg" for v in range(4)}
        | {"cls", "json", "latents.npy"}
        | {f"{v:03d}.{n}.{PASSES[n].extension}" for v in range(4) for n in ALL}
    )
    assert all(len(span) == 3 for span in entry["members"].values())  # every member has its crc32
    assert "`000.depth.png` ... `003.depth.png`" in (passes_shards / "README.md").read_text()


def test_verify_reports_a_broken_pass(passes_shards, tmp_path):
    copy = tmp_path / "set"
    shutil.copytree(passes_shards, copy)
    info = json.loads((copy / fmt.INFO_NAME).read_text())
    name = info["splits"]["train"]["shards"][0]["name"]
    samples = []
    for ref in ShardSet(copy).samples("train"):
        if ref.shard.name != name:
            continue
        sample = ref.sample()
        assert sample.members() == [(f, ref.read(f)) for f in sorted(ref.members)]  # read back exactly as stored
        sample.passes[2]["depth"] = PASSES["depth"].encode(np.zeros((32, 32)))
        samples.append(sample)
    fmt.write_shard(copy / name, samples)
    problems = verify(copy, progress=False)
    assert any(".002.depth.png: view 2: is not positive everywhere the mask is set" in p for p in problems)


def test_loaders_return_the_passes_from_shards_and_loose_files(passes_render, passes_shards):
    for root in (passes_shards, passes_render):
        pairs = PairDataset(root, "train", passes=("mask",))
        item = pairs[0]
        assert item["view1_mask"].shape == (1, 32, 32) and item["view1_mask"].dtype == torch.bool
        assert "view2_mask" in item and "view1_depth" not in item
        synset, model_id = next(
            (o.synset, o.model_id) for o in ShardSet(passes_shards).samples("train") if fmt.sample_key(o.synset, o.model_id) == item["key"]
        )
        first = int(item["views"][0])
        stored = PASSES["mask"].decode((passes_render / synset / model_id / f"mask_{first}.png").read_bytes())
        assert np.array_equal(item["view1_mask"][0].numpy(), stored)
        views = ObjectViews(root, "val", passes=("depth", "camera", "normal"))[0]
        assert views["depth"].shape == (4, 1, 32, 32) and views["depth"].dtype == torch.float32
        assert views["normal"].shape == (4, 3, 32, 32) and views["camera"]["intrinsics"].shape == (4, 3, 3)
        assert ViewDataset(root, "val", passes=("normal",))[0]["normal"].shape == (3, 32, 32)
    streamed = next(iter(StreamingPairs(passes_shards, "train", passes=("depth",), shuffle_buffer=1)))
    assert streamed["view1_depth"].shape == (1, 32, 32) and (streamed["view1_depth"] > 0).all()
    assert PairDataset(passes_shards, "train", passes="mask").passes == ("mask",)  # a name alone is one pass
    assert StreamingPairs(passes_shards, "train", passes="depth").passes == ("depth",)


def test_a_set_without_passes_says_so(packed, tiny_render):
    out, _ = packed
    assert "passes" not in json.loads((out / fmt.INFO_NAME).read_text())
    for root in (out, tiny_render[0].out):
        with pytest.raises(SourceError, match="has no mask pass"):
            PairDataset(root, "train", passes=("mask",))


def test_show_adds_a_row_per_pass(passes_shards, passes_render, tmp_path):
    for root in (passes_shards, passes_render):
        plain = invoke("show", root, "--out", tmp_path / "plain.png", "--objects", "1", "--views", "2", "--tile", "32")
        assert plain.exit_code == 0, plain.output
    sheet = Image.open(tmp_path / "plain.png")
    # One object: its image row with captions, then depth, mask and normal rows (the camera is not a picture).
    assert sheet.height > 3 * 36 and sheet.width == 32 + 2 * 36


def test_resume_renders_a_view_whose_pass_is_missing(passes_render, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(passes_render, out)
    depth = next(out.glob("*/*/depth_1.png"))
    before = depth.read_bytes()
    depth.unlink()
    result = invoke("render", _objects_of(passes_render), "--out", out, *TINY, "--passes", "depth,normal,mask")
    assert result.exit_code == 0, result.output
    assert "rendered 1 images (23 already there)" in result.output
    assert depth.read_bytes() == before
    refused = invoke("render", _objects_of(passes_render), "--out", out, *TINY, "--passes", "mask")
    assert refused.exit_code == 1 and "passes" in refused.output
    without = invoke("render", _objects_of(passes_render), "--out", out, *TINY)
    assert without.exit_code == 1 and "passes" in without.output


def _objects_of(render_out):
    return json.loads((render_out / "_manifest.json").read_text())["object_source"]["root"]


def test_latents_and_shards_with_passes(passes_render, tmp_path):
    objects = _objects_of(passes_render)
    one = sorted(passes_render.glob("*/*/image_0.jpg"))[0].parent
    listed = tmp_path / "one.txt"
    listed.write_text(f"{one.parent.name}/{one.name}\n")
    again = tmp_path / "again"
    result = invoke(
        "render", objects, "--out", again, "--latents", passes_render, "--objects", listed, *TINY[2:], "--passes", "mask,depth,normal"
    )
    assert result.exit_code == 0, result.output
    for path in one.iterdir():
        assert (again / one.parent.name / one.name / path.name).read_bytes() == path.read_bytes()
    shards = tmp_path / "shards"
    result = invoke(
        "render", objects, "--out", shards, "--objects", listed, *TINY, "--passes", "mask", "--format", "shards", "--val-fraction", "0"
    )
    assert result.exit_code == 0, result.output
    assert verify(shards, progress=False) == []
    (ref,) = ShardSet(shards).samples("train")
    for view in range(4):
        assert ref.read(fmt.pass_field(view, "mask")) == (one / f"mask_{view}.png").read_bytes()
        assert ref.read(fmt.view_field(view)) == (one / f"image_{view}.jpg").read_bytes()
    with pytest.raises(KeyError):
        ref.read(fmt.pass_field(0, "depth"))
    assert json.loads(ref.read("json"))["passes"] == ["camera", "mask"]
