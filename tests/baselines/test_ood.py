"""`iebench eval --ood`: probes trained on the data's train split, scored on its val split and on an OOD set side by side."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from iebench.baselines.errors import EvalError
from iebench.baselines.evaluate import EvalSettings, cached_evaluate, evaluate
from iebench.baselines.probes import ProbeSettings
from iebench.baselines.trainer import train
from iebench.cli import main
from iebench.loaders.sources import open_source
from iebench.rotations import canonical_euler

from .test_train import tiny_config

QUICK = EvalSettings(probe=ProbeSettings(epochs=3, batch_size=64))
TINY_RENDER = ["--views", "4", "--resolution", "32", "--samples", "4", "--denoiser", "fast", "--workers", "1"]


@pytest.fixture(scope="module")
def ood_shards(procedural_root, packed, tmp_path_factory):
    """The validation objects rendered again with rotations outside the training box, and packed: as docs/evaluation.md says."""
    out, _ = packed
    renders, shards = tmp_path_factory.mktemp("ood-render"), tmp_path_factory.mktemp("ood-shards")
    runner = CliRunner()
    objects = ["--objects", str(out / "val_images.npy")]
    result = runner.invoke(
        main, ["render", str(procedural_root), "--out", str(renders), "--preset", "rotation-ood", "--seed", "3", *objects, *TINY_RENDER]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["pack", str(renders), str(shards), "--name", "ood"])
    assert result.exit_code == 0, result.output
    return shards


@pytest.fixture(scope="module")
def sie_run(packed, tmp_path_factory):
    out, _ = packed
    run = tmp_path_factory.mktemp("run-ood")
    train(tiny_config(out, run, epochs=2), progress=False)
    return run


def _objects(root):
    return [e.key for split in ("train", "val") for e in open_source(root, split).objects]


def test_the_ood_set_holds_the_val_objects_with_rotations_outside_the_box(ood_shards, packed):
    out, _ = packed
    assert sorted(_objects(ood_shards)) == sorted(e.key for e in open_source(out, "val").objects)
    source = open_source(ood_shards, "train") if open_source(ood_shards, "train").objects else open_source(ood_shards, "val")
    angles = np.concatenate([source.read_latents(e)[:, :3] for e in source.objects])
    assert (np.abs(canonical_euler(angles)) > np.pi / 2 + 1e-9).any(axis=1).all()  # every view leaves [-pi/2, pi/2]^3


def test_eval_reports_val_and_ood_side_by_side(sie_run, packed, ood_shards):
    out, _ = packed
    plain = evaluate(sie_run, out, QUICK, progress=False)
    report = evaluate(sie_run, out, QUICK, progress=False, ood=ood_shards)
    assert report["results"] == plain["results"]  # the in-distribution numbers are those of an evaluation without --ood
    assert report["key"] != plain["key"]  # but the OOD set is part of the result's key
    ood = report["ood"]
    assert ood["data"] == str(ood_shards) and ood["objects"] == len(_objects(ood_shards)) and ood["objects_in_train"] == 0
    r = ood["results"]
    assert set(r) == set(report["results"])  # every task
    assert set(r["classification"]) == {"inv", "equi", "all"} and 0 <= r["classification"]["all"]["top1"] <= 1
    for task in ("rotation", "colour"):
        assert {"part", "r2_sie", "r2_per_output", "r2_by_output"} <= set(r[task]) and np.isfinite(r[task]["r2_sie"])
        assert r[task]["r2_sie"] != report["results"][task]["r2_sie"]
    assert set(r["mrr"]) == {"val->val"} and set(r["pre"]) == {"val->val", "val->all"}
    written = json.loads((sie_run / "eval" / "eval.json").read_text())
    assert written["ood"] == json.loads(json.dumps(ood))
    table = (sie_run / "eval" / "eval.md").read_text()
    assert "| metric | val | OOD |" in table and f"{ood['objects']} objects (both of its splits)" in table
    row = next(line for line in table.splitlines() if line.startswith("| rotation R^2 (SIE) |"))
    assert row == f"| rotation R^2 (SIE) | {report['results']['rotation']['r2_sie']:.3f} | {r['rotation']['r2_sie']:.3f} |"
    stamp = (sie_run / "eval" / "eval.json").stat().st_mtime_ns
    assert cached_evaluate(sie_run, out, QUICK, progress=False, ood=ood_shards)["ood"] == written["ood"]  # reused, not computed again
    assert (sie_run / "eval" / "eval.json").stat().st_mtime_ns == stamp


def test_the_cli_prints_both_columns_and_refuses_what_it_cannot_score(sie_run, packed, ood_shards, packed_t, tmp_path):
    out, _ = packed
    common = ["eval", str(sie_run), "--data", str(out), "--epochs", "2", "--tasks", "classification,rotation"]
    result = CliRunner().invoke(main, [*common, "--ood", str(ood_shards)])
    assert result.exit_code == 0, result.output
    assert "| metric | val | OOD |" in result.output
    with pytest.raises(EvalError, match="--ood .* latents .* are not the evaluated data's"):
        evaluate(sie_run, out, QUICK, progress=False, ood=packed_t)
    with pytest.raises(EvalError, match="--bn-mode eval"):
        evaluate(sie_run, out, EvalSettings(bn_mode="train"), progress=False, ood=ood_shards)
    with pytest.raises(EvalError, match="is not a folder"):
        evaluate(sie_run, out, QUICK, progress=False, ood=tmp_path / "missing")
