"""`iebench render`'s options resolved into a job, without Blender: the array position, the partition, refused combinations."""

import pytest

from iebench.dataset.format import sample_key
from iebench.dataset.pack import PackOptions
from iebench.presets import PresetError
from iebench.render import procedural
from iebench.render.request import ARRAY_COUNT_ENV, ARRAY_INDEX_ENV, RenderRequest, array_position, prepare_job


def test_the_array_position_comes_from_the_flags_then_slurm(monkeypatch):
    monkeypatch.delenv(ARRAY_INDEX_ENV, raising=False)
    monkeypatch.delenv(ARRAY_COUNT_ENV, raising=False)
    assert array_position(None, None) == (0, 1)
    monkeypatch.setenv(ARRAY_INDEX_ENV, "3")
    monkeypatch.setenv(ARRAY_COUNT_ENV, "8")
    assert array_position(None, None) == (3, 8)
    assert array_position(1, 2) == (1, 2)  # flags win over the environment


def test_jobs_of_an_array_share_the_objects_out_and_plan_their_own_shards(tmp_path, monkeypatch):
    monkeypatch.delenv(ARRAY_INDEX_ENV, raising=False)
    monkeypatch.delenv(ARRAY_COUNT_ENV, raising=False)
    procedural.generate(tmp_path / "objects", 3, 2, 0)
    jobs = [
        prepare_job(
            RenderRequest(
                src=tmp_path / "objects",
                out=tmp_path / "out",
                views=2,
                resolution=32,
                job_index=i,
                num_jobs=2,
                shards=PackOptions(name="tiny"),
            )
        )
        for i in range(2)
    ]
    keys = [{o.key for o in job.objects} for job in jobs]
    assert not keys[0] & keys[1] and len(keys[0] | keys[1]) == 6
    assert [job.job_index for job in jobs] == [0, 1] and all(job.num_jobs == 2 and job.settings.resolution == 32 for job in jobs)
    for job, mine in zip(jobs, keys):
        planned = {k for shard in job.shard_plan["shards"] for k in shard["keys"]}
        assert planned == {sample_key(*key.split("/")) for key in mine}
        assert all(f"-job0000{job.job_index}" in shard["name"] for shard in job.shard_plan["shards"])
    loose = prepare_job(RenderRequest(src=tmp_path / "objects", out=tmp_path / "loose", samples=3, recipe="original"))
    assert loose.shard_plan is None and loose.settings.samples == 3 and loose.settings.denoiser_prefilter == "accurate"


def test_given_latents_cannot_be_combined_with_factor_overrides(tmp_path):
    procedural.generate(tmp_path / "objects", 1, 1, 0)
    with pytest.raises(PresetError, match="cannot be combined with --factor"):
        prepare_job(
            RenderRequest(src=tmp_path / "objects", out=tmp_path / "out", latents_from=tmp_path / "objects", factors=("floor_hue=0.3",))
        )
    with pytest.raises(ValueError, match="--views must be between 1 and 10,000"):
        prepare_job(RenderRequest(src=tmp_path / "objects", out=tmp_path / "out", views=0))
