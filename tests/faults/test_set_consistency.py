"""A shard set that disagrees with itself, or says it is unfinished, is refused by every command (issue 33).

Bad cases 1 (`views_per_object` edited in `_info.json`), 3 (a render stopped with SIGTERM, then packed) and 7
(`mini --data-only` into a shard set), and the poor ones: an object count raised, a shard replaced by a folder or a
link loop, a garbage line in SHA256SUMS, an absurd `render --views`.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from iebench.dataset import format as fmt
from iebench.dataset.verify import verify
from iebench.loaders import PairDataset, StreamingPairs, ViewDataset
from iebench.loaders.sources import SourceError

from .conftest import TINY_TRAIN, assert_clean_failure, invoke


def edit_info(root, change, resum: bool = False) -> None:
    """Change `_info.json` by `change(info)`; with `resum`, also its line in SHA256SUMS (as someone covering the edit would)."""
    path = root / fmt.INFO_NAME
    info = json.loads(path.read_text())
    change(info)
    data = (json.dumps(info, indent=1) + "\n").encode()
    path.write_bytes(data)
    if resum:
        sums = root / "SHA256SUMS"
        lines = [
            f"{hashlib.sha256(data).hexdigest()}  {fmt.INFO_NAME}" if line.endswith(f"  {fmt.INFO_NAME}") else line
            for line in sums.read_text().splitlines()
        ]
        sums.write_text("\n".join(lines) + "\n")


def views_to(count: int):
    def change(info: dict) -> None:
        info["views_per_object"] = count
        for split in fmt.SPLITS:
            info["splits"][split]["views"] = info["splits"][split]["objects"] * count

    return change


@pytest.mark.parametrize("views", [50, 2])
def test_an_edited_view_count_is_refused_before_train_writes_anything(shards, tmp_path, views):
    edit_info(shards, views_to(views))
    run = tmp_path / "run"
    code, output = invoke("train", "--data", shards, "--out", run, *TINY_TRAIN, "--epochs", "1", "--workers", "0")
    assert_clean_failure(code, output, f"{shards / fmt.INFO_NAME} does not match its sha256 in SHA256SUMS", f"iebench finalize {shards}")
    assert not run.exists()  # no config.json, no run.json
    # Covered in SHA256SUMS too, the edit still disagrees with the shards' indexes: every reader says which object.
    edit_info(shards, lambda info: None, resum=True)
    for open_split in (lambda: PairDataset(shards, "train"), lambda: ViewDataset(shards, "val"), lambda: StreamingPairs(shards, "train")):
        with pytest.raises(SourceError, match=rf"says {views} views per object, and object \w+ in tiny-\w+-\d+\.tar has 4 "):
            open_split()
    code, output = invoke("train", "--data", shards, "--out", run, *TINY_TRAIN, "--epochs", "1", "--workers", "0")
    assert_clean_failure(code, output, f"says {views} views per object", "has 4", f"iebench verify {shards}", f"iebench finalize {shards}")
    assert not run.exists()
    assert_clean_failure(*invoke("info", shards), f"says {views} views per object")
    assert any(f"says 4 views, the set {views}" in p for p in verify(shards, progress=False))


def test_finalize_repairs_an_edited_description_and_eval_refuses_one(shards, tmp_path):
    edit_info(shards, views_to(2), resum=True)
    assert invoke("finalize", shards)[0] == 0  # written again from the shards' plan
    assert PairDataset(shards, "train").views_per_object == 4
    edit_info(shards, views_to(50))
    run = tmp_path / "run"
    code, output = invoke("eval", run, "--data", shards, "--random-init", "--tasks", "rotation", "--epochs", "1", "--device", "cpu")
    assert_clean_failure(code, output, "_info.json does not match its sha256 in SHA256SUMS", f"iebench finalize {shards}")


def test_a_raised_object_count_is_refused_by_the_stream(shards):
    objects = json.loads((shards / fmt.INFO_NAME).read_text())["splits"]["train"]["objects"]

    def raise_count(info: dict) -> None:
        info["splits"]["train"]["objects"] += 2

    edit_info(shards, raise_count, resum=True)
    with pytest.raises(SourceError, match=rf"split train has {objects + 2} objects by its record, {objects} in its shards' indexes"):
        StreamingPairs(shards, "train")


def test_a_shard_replaced_by_a_folder_or_a_link_loop_is_named(shards, tmp_path):
    info = json.loads((shards / fmt.INFO_NAME).read_text())
    shard = shards / info["splits"]["train"]["shards"][0]["name"]
    shard.unlink()
    shard.mkdir()
    with pytest.raises(SourceError, match=rf"{shard}: a folder, not a shard file; _info.json lists it as a shard: put the shard file back"):
        PairDataset(shards, "train")
    # finalize of a pack's output says what writes the shard (it said "not written yet: finish the job")
    assert_clean_failure(*invoke("finalize", shards), f"{shard}: a folder, not a shard file", "remove it", "iebench pack")
    shard.rmdir()
    os.symlink(shard.name, shard)  # a link to itself
    with pytest.raises(SourceError, match=rf"{shard}: a symbolic link that loops, not a shard file"):
        ViewDataset(shards, "train")
    code, output = invoke("train", "--data", shards, "--out", tmp_path / "run", *TINY_TRAIN, "--epochs", "1", "--workers", "0")
    assert_clean_failure(code, output, "a symbolic link that loops", "restore it from a copy")
    assert_clean_failure(*invoke("finalize", shards), "a symbolic link that loops", "iebench pack")


def test_a_garbage_line_in_sha256sums_is_reported(shards):
    with open(shards / "SHA256SUMS", "a") as sums:
        sums.write("this is not a checksum line\n")
    problems = verify(shards, progress=False)
    lines = len((shards / "SHA256SUMS").read_text().splitlines())
    assert problems == [
        f"SHA256SUMS: line {lines} is not `<sha256>  <name>` ('this is not a checksum line'): run `iebench finalize {shards}` to write it again"
    ]
    assert_clean_failure(*invoke("verify", shards), "problem")


def test_a_set_that_records_an_unfinished_render_is_not_read(shards):
    def running(info: dict) -> None:
        info["render_manifest"]["status"] = "running"  # as a set packed before pack checked the status

    edit_info(shards, running, resum=True)
    with pytest.raises(SourceError, match="records a render that had not finished \\(status 'running'"):
        PairDataset(shards, "train")
    assert any("records a render that had not finished" in p for p in verify(shards, progress=False))


def test_a_render_stopped_with_sigterm_is_not_packed(procedural_root, tmp_path):
    renders = tmp_path / "renders"
    args = [sys.executable, "-m", "iebench.cli", "render", procedural_root, "--out", renders, "--views", "4", "--resolution", "32"]
    process = subprocess.Popen(
        [*map(str, args), "--samples", "2", "--denoiser", "off", "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(renders.glob("*/*/latent_3.npy")):  # one object done
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # as SLURM's scancel or a `kill` does
    process.wait(timeout=60)
    assert json.loads((renders / "_manifest.json").read_text())["status"] == "running"
    code, output = invoke("pack", renders, tmp_path / "shards", "--workers", "1")
    assert_clean_failure(
        code, output, f"{renders / '_manifest.json'}: the render has not finished (status 'running'", "iebench render", "resumes"
    )
    assert not (tmp_path / "shards").exists()


def test_mini_data_only_into_a_shard_set_is_refused(shards):
    before = sorted(p.name for p in shards.iterdir())
    code, output = invoke("mini", shards, "--scale", "ci", "--seeds", "1", "--data-only")
    assert_clean_failure(code, output, f"{shards} holds a shard set or a render", "new or empty folder")
    assert sorted(p.name for p in shards.iterdir()) == before  # no objects/, render/ or _timings.json
    assert verify(shards, progress=False) == []


def test_an_absurd_view_count_is_refused_before_anything_is_written(procedural_root, tmp_path):
    from iebench.cli import describe

    out = tmp_path / "renders"
    code, output = invoke("render", procedural_root, "--out", out, "--views", 10**12, "--resolution", "32")
    assert_clean_failure(code, output, "--views must be between 1 and 10,000 views per object", "1,000,000,000,000")
    assert not out.exists()  # no manifest to refuse the corrected command
    assert describe(MemoryError()).startswith("out of memory: ask for less")  # was an empty `Error: ` line


def test_finalize_refuses_a_plan_that_records_an_unfinished_render(shards):
    part = json.loads((shards / "_part.json").read_text())
    part["render_manifest"]["status"] = "running"  # the render was packed while it ran (before pack checked)
    (shards / "_part.json").write_text(json.dumps(part))
    assert_clean_failure(*invoke("finalize", shards), "records a render that has not finished (status 'running')", "then finalize")
    part |= {"render_manifest": None, "source": part["source"] | {"kind": "render"}}  # a render job stopped before its end
    (shards / "_part.json").write_text(json.dumps(part))
    assert_clean_failure(*invoke("finalize", shards), "the job has not recorded its end", "run that job's command again")
