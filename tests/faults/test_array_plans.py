"""The jobs of a render array share one plan (issue 33, bad case 4): a job re-planned with another `--num-jobs`, or
rendered at another `--resolution` or with another dataset name than its siblings, is refused before it writes, with
the command that fixes it; a folder of loose renders whose jobs were planned otherwise is not packed."""

from __future__ import annotations

import json

import pytest

from iebench.dataset import format as fmt
from iebench.dataset.verify import verify

from .conftest import assert_clean_failure, invoke

pytest.importorskip("bpy", reason="the render extra (bpy) is part of the dev set-up")

ARGS = ("--views", "1", "--resolution", "32", "--samples", "2", "--denoiser", "off", "--workers", "1", "--format", "shards")


def job(procedural_root, out, index: int, jobs: int, *extra) -> tuple[int, str]:
    return invoke("render", procedural_root, "--out", out, *ARGS, "--job-index", index, "--num-jobs", jobs, *extra)


def test_a_job_that_disagrees_with_its_siblings_plan_is_refused(procedural_root, tmp_path):
    out = tmp_path / "shards"
    assert job(procedural_root, out, 0, 2)[0] == 0
    assert all("-job00000-of-00002-" in p.name for p in out.glob("*.tar"))  # the job count is in the shards' names
    before = sorted(p.name for p in out.iterdir())
    code, output = job(procedural_root, out, 1, 3)  # re-planned: it took the 2-job array's shards for its own
    assert_clean_failure(code, output, "a 2-job array (_manifest.job00000-of-00002.json)", "planned for 3", "--num-jobs 2", "rm ")
    code, output = job(procedural_root, out, 1, 2, "--resolution", "48")
    assert_clean_failure(code, output, "other render settings (resolution)", "_manifest.job00000-of-00002.json")
    code, output = job(procedural_root, out, 1, 2, "--name", "other")
    assert_clean_failure(code, output, "shard plan with other name (_part.job00000-of-00002.json)", "--name")
    assert sorted(p.name for p in out.iterdir()) == before  # refused before it wrote anything
    assert job(procedural_root, out, 1, 2)[0] == 0  # the fix: the siblings' plan
    assert invoke("finalize", out)[0] == 0
    assert verify(out, progress=False) == []


def test_the_hint_to_replan_removes_exactly_the_old_array(procedural_root, tmp_path):
    out = tmp_path / "shards"
    assert job(procedural_root, out, 0, 2)[0] == 0
    (out / "notes.txt").write_text("mine\n")
    code, output = job(procedural_root, out, 0, 3)
    line = assert_clean_failure(code, output, "rm ")
    removed = line.split("rm ", 1)[1].split(")", 1)[0].split()
    for pattern in removed:  # what the shell would remove
        for path in out.glob(pattern.removeprefix(f"{out}/")):
            path.unlink()
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # the old array's files, and nothing else


def test_loose_renders_of_jobs_planned_otherwise_are_not_packed(loose, tmp_path):
    manifest = json.loads((loose / "_manifest.json").read_text())
    manifest |= {"job_index": 1, "num_jobs": 2}
    manifest["render"]["resolution"] = 48  # a job rendered at another resolution, copied in beside the others
    (loose / "_manifest.job00001-of-00002.json").write_text(json.dumps(manifest))
    code, output = invoke("pack", loose, tmp_path / "out", "--workers", "1")
    assert_clean_failure(code, output, "are jobs of renders planned otherwise (render, num_jobs differ)", "nothing was written")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out" / fmt.INFO_NAME).exists()
