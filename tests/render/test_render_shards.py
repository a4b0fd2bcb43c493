"""`iebench render --format shards`: shards written while rendering, across a job array, resumable."""

import io

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from iebench.cli import main
from iebench.dataset import format as fmt
from iebench.dataset.reader import ShardSet
from iebench.dataset.verify import verify

pytest.importorskip("bpy", reason="the render extra (bpy) is part of the dev set-up")

ARGS = [
    "--views",
    "4",
    "--resolution",
    "32",
    "--samples",
    "4",
    "--denoiser",
    "fast",
    "--seed",
    "7",
    "--format",
    "shards",
    "--name",
    "tiny",
    "--shard-size-mb",
    "0.0025",
]


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def test_shards_hold_the_same_views_as_loose_files(tiny_render, procedural_root, tmp_path):
    job, _ = tiny_render
    result = invoke("render", procedural_root, "--out", tmp_path, *ARGS)
    assert result.exit_code == 0, result.output
    assert verify(tmp_path, progress=False) == []
    shards = ShardSet(tmp_path)
    keys = 0
    for split in fmt.SPLITS:
        for ref in shards.samples(split):
            synset, model_id = ref.synset, ref.model_id
            folder = job.out / synset / model_id
            latents = ref.latents()
            for view in range(4):
                assert np.array_equal(latents[view], np.load(folder / f"latent_{view}.npy"))
                a = np.asarray(Image.open(io.BytesIO(ref.read(fmt.view_field(view))))).astype(float)
                b = np.asarray(Image.open(folder / f"image_{view}.jpg")).astype(float)
                assert 10 * np.log10(255**2 / max(np.mean((a - b) ** 2), 1e-9)) > 40
            keys += 1
    assert keys == len(job.objects)
    assert len(shards.info["splits"]["train"]["shards"]) >= 2
    assert shards.info["format"] == shards.info["render_manifest"]["format"] == fmt.FORMAT  # one version, not two


def test_jobs_of_an_array_rendered_with_other_seeds_are_not_one_dataset(procedural_root, tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    assert invoke("render", procedural_root, "--out", out, *ARGS, "--job-index", 0, "--num-jobs", 2).exit_code == 0
    # A job started with another seed than its sibling is refused before it writes anything (tests/faults/test_array_plans.py).
    early = invoke("render", procedural_root, "--out", out, *ARGS, "--job-index", 1, "--num-jobs", 2, "--seed", 3)
    assert early.exit_code == 1 and "holds a job rendered with other seed (_manifest.job00000-of-00002.json)" in early.output
    assert not list(out.glob("*job00001*"))
    # One rendered elsewhere and copied in is still caught by finalize.
    assert invoke("render", procedural_root, "--out", elsewhere, *ARGS, "--job-index", 1, "--num-jobs", 2, "--seed", 3).exit_code == 0
    for path in elsewhere.iterdir():
        path.rename(out / path.name)
    refused = invoke("finalize", out)
    assert refused.exit_code == 1 and "were rendered with other seed: not one dataset" in refused.output
    assert not (out / fmt.INFO_NAME).exists()


def test_job_array_then_finalize_and_resume(procedural_root, tmp_path):
    first = invoke("render", procedural_root, "--out", tmp_path, *ARGS, "--job-index", 0, "--num-jobs", 2)
    assert first.exit_code == 0 and "once every job is, run `iebench finalize" in first.output
    assert (tmp_path / "_part.job00000-of-00002.json").is_file()
    early = invoke("finalize", tmp_path)
    assert early.exit_code == 1 and "no _part" not in early.output
    second = invoke("render", procedural_root, "--out", tmp_path, *ARGS, "--job-index", 1, "--num-jobs", 2)
    assert second.exit_code == 0, second.output
    done = invoke("finalize", tmp_path)
    assert done.exit_code == 0, done.output
    assert verify(tmp_path, progress=False) == []
    names = sorted(p.name for p in tmp_path.glob("*.tar"))
    assert any("-job00001-" in n for n in names)
    # An unfinished shard is redone, identically; finished shards are never rewritten.
    lost = tmp_path / names[0]
    before = lost.read_bytes()
    lost.unlink()
    others = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.tar")}
    job = 0 if "-job00000-" in names[0] else 1
    again = invoke("render", procedural_root, "--out", tmp_path, *ARGS, "--job-index", job, "--num-jobs", 2)
    assert again.exit_code == 0, again.output
    assert lost.read_bytes() == before
    assert all(p.stat().st_mtime_ns == t for p, t in others.items())


def test_a_shard_its_plan_dropped_an_object_from_is_rendered_whole_on_resume(tmp_path):
    """A run that died after recording a failed object's removal but before writing its shard: the resume retries the
    object, and writes the shard once every object has arrived (it raised KeyError when the count fell short)."""
    import json

    from iebench.dataset.pack import PackOptions
    from iebench.dataset.parts import part_path
    from iebench.presets import get_preset
    from iebench.render.objects import ObjectRef
    from iebench.render.sinks import ShardSink, shard_plan
    from iebench.render.worker import ObjectResult, RenderedView

    objects = tuple(ObjectRef(f"0{c}000000", f"m{i}", tmp_path / "unused.obj") for c in range(2) for i in range(3))
    preset = get_preset("3diebench")
    part = shard_plan(
        list(objects),
        list(objects),
        PackOptions(name="tiny"),
        views=2,
        resolution=16,
        preset=preset.to_json(),
        latent_names=preset.latent_names,
        job_index=0,
        num_jobs=1,
        source={},
    )
    jpeg = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 200)).save(jpeg, "JPEG")
    out = tmp_path / "out"
    out.mkdir()
    ShardSink(out, part, "", objects).prepare(objects)
    shard = part["shards"][0]
    dropped = shard["keys"][0]
    stored = json.loads(part_path(out).read_text())  # the state the dead run left: its plan rewritten, no shard
    stored["shards"][0]["keys"].remove(dropped)
    stored["skipped"] = [dropped]
    part_path(out).write_text(json.dumps(stored))

    sink = ShardSink(out, part, "", objects)
    sink.prepare(objects)
    for ref in objects:
        if fmt.sample_key(ref.synset, ref.model_id) in shard["keys"]:
            assert sink.missing_views(ref, [0, 1]) == [0, 1]
            views = [RenderedView(v, jpeg.getvalue(), np.zeros(len(preset.latent_names))) for v in range(2)]
            sink.accept(ObjectResult(ref.key, views))
    assert fmt.shard_complete(out / shard["name"])
    assert sorted(e["key"] for e in fmt.read_index(out / shard["name"])["samples"]) == sorted(shard["keys"])
    assert json.loads(part_path(out).read_text())["skipped"] == []
