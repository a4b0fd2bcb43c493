"""A full disk ends in one `Error:` line naming the file, with no temporary file left (issue case 4).

The disk is a real small tmpfs when the tests may mount one (root), else every file the command
writes is capped with RLIMIT_FSIZE (`ulimit -f`): either way a real write fails in the OS.
"""

from __future__ import annotations

import shutil

from iebench.dataset import format as fmt
from iebench.dataset.verify import verify

from .conftest import TINY_TRAIN, assert_clean_failure, invoke, temporary_files

RENDER = ["--views", "4", "--resolution", "32", "--samples", "2", "--denoiser", "off", "--workers", "1"]


def test_render_into_a_full_disk(procedural_root, tmp_path, small_disk):
    src = tmp_path / "objects"
    shutil.copytree(sorted((procedural_root / "02691156").iterdir())[0], src / "02691156" / "model")
    disk = small_disk(16 * 1024, fsize=1024)  # the manifest fits, the views do not all fit (a size limit stops the manifest)
    code, output = disk.run("render", src, "--out", disk.root / "out", *RENDER)
    line = assert_clean_failure(
        code, output, "no space left" if disk.real_disk else "file too large", str(disk.root / "out"), "run the same command again"
    )
    if disk.real_disk:
        assert "image_" in line or "latent_" in line  # it was a view that did not fit
    assert temporary_files(disk.root) == []


def test_pack_into_a_full_disk_then_resume(loose, small_disk):
    disk = small_disk(24 * 1024, fsize=8 * 1024)  # the plan and a shard or two fit, not the set
    out = disk.root / "out"
    code, output = disk.run("pack", loose, out, "--shard-size-mb", "0.004", "--workers", "1")
    assert_clean_failure(code, output, "no space left" if disk.real_disk else "file too large", str(out))
    assert temporary_files(disk.root) == []
    assert not (out / fmt.INFO_NAME).exists()
    written = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    disk.grow(64 * 2**20)  # room again: the same command resumes, keeps what was written, and the set verifies
    code, output = invoke("pack", loose, out, "--shard-size-mb", "0.004", "--workers", "1")
    assert code == 0, output
    assert verify(out, progress=False) == []
    assert all(out.joinpath(n).stat().st_mtime_ns == t for n, t in written.items())


def test_finalize_when_the_split_files_do_not_fit(shards, small_disk):
    disk = small_disk(512 * 1024, fsize=64)  # a full disk, or every split file over the size limit
    out = disk.root / "set"
    shutil.copytree(shards, out)
    for name in (
        "_info.json",
        "SHA256SUMS",
        "README.md",
        "train_images.npy",
        "train_labels.npy",
        "all_latents_train.npy",
        "val_images.npy",
        "val_labels.npy",
        "all_latents_val.npy",
    ):
        (out / name).unlink()
    if disk.real_disk:
        disk.fill()
    code, output = disk.run("finalize", out)
    assert_clean_failure(code, output, "train_images.npy")
    assert temporary_files(disk.root) == []
    assert not (out / fmt.INFO_NAME).exists()


def test_train_when_the_checkpoint_does_not_fit(shards, small_disk):
    disk = small_disk(1024 * 1024, fsize=1024 * 1024)  # config, run record and metrics fit; a ResNet-18 checkpoint does not
    run = disk.root / "run"
    run.mkdir()
    (run / "checkpoint.pt.tmp-999999999").write_bytes(b"left by a crash")  # swept when the next run starts
    code, output = disk.run(
        "train",
        *TINY_TRAIN,
        "--data",
        shards,
        "--out",
        run,
        "--epochs",
        "1",
        "--workers",
        "0",
    )
    assert_clean_failure(code, output, str(run / "checkpoint.pt"))
    assert temporary_files(disk.root) == []
    assert not (run / "checkpoint.pt").exists()
