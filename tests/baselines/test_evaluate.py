"""`iebench eval` and `report` end to end on a tiny trained run over the rendered shards."""

import json

import pytest
from click.testing import CliRunner
from iebench.baselines.evaluate import EvalError, EvalSettings, evaluate, parse_tasks
from iebench.baselines.probes import ProbeSettings
from iebench.baselines.trainer import train

from iebench.cli import main

from .test_train import tiny_config

QUICK = EvalSettings(probe=ProbeSettings(epochs=5, batch_size=64))


@pytest.fixture(scope="module")
def tiny_run(packed, tmp_path_factory):
    out, _ = packed
    run = tmp_path_factory.mktemp("run")
    train(tiny_config(out, run, epochs=2), progress=False)
    return run


def test_eval_writes_every_metric_and_reuses_cached_features(tiny_run, packed):
    out, _ = packed
    report = evaluate(tiny_run, out, QUICK, progress=False)
    r = report["results"]
    assert set(r["classification"]) == {"inv", "equi", "all"}
    assert {"r2_sie", "r2_per_output", "part"} <= set(r["rotation"]) and r["rotation"]["part"] == "all"
    assert set(r["mrr"]) == {"train->train", "val->val"} and set(r["pre"]) == {"val->val", "val->all"}
    for protocol in r["mrr"].values():
        assert {"mrr", "h@1", "h@2", "h@5", "h@10"} <= set(protocol) and 0 < protocol["mrr"] <= 1
    assert all(0 <= value <= 1 for value in r["pre"].values())
    assert set(r["rotation"]["train_fit"]) == {"r2_sie", "r2_per_output"}
    for name in ("eval.json", "eval.md", "rotation_scatter.png", "mrr_ranks.png", "per_class_accuracy.png"):
        assert (tiny_run / "eval" / name).is_file()
    cached = list((tiny_run / "features").glob("features-*.pt"))
    assert len(cached) == 2
    written = {p: p.stat().st_mtime_ns for p in cached}
    again = evaluate(tiny_run, out, QUICK, progress=False)
    assert again["results"] == json.loads(json.dumps(report["results"]))  # reproducible
    assert {p: p.stat().st_mtime_ns for p in cached} == written  # the second pass read the cache


def test_random_init_floor_and_report(tiny_run, packed, tmp_path):
    out, _ = packed
    result = CliRunner().invoke(main, ["eval", str(tiny_run), "--data", str(out), "--random-init", "--epochs", "3",
                                       "--tasks", "classification,rotation"])
    assert result.exit_code == 0, result.output
    assert (tiny_run / "eval-random-init" / "eval.json").is_file()
    evaluate(tiny_run, out, QUICK, progress=False)
    result = CliRunner().invoke(main, ["report", str(tiny_run), "--out", str(tmp_path / "report.md")])
    assert result.exit_code == 0, result.output
    table = (tmp_path / "report.md").read_text()
    assert "(untrained)" in table and table.count("\n") == 4
    assert (tmp_path / "report.png").is_file()


def test_bad_input_fails_before_work(tiny_run, packed, tmp_path):
    out, _ = packed
    with pytest.raises(EvalError, match="unknown task"):
        parse_tasks("classification,segmentation")
    with pytest.raises(EvalError, match="not a folder"):
        evaluate(tiny_run, tmp_path / "nowhere", QUICK, progress=False)
    result = CliRunner().invoke(main, ["eval", str(tmp_path), "--data", str(out)])
    assert result.exit_code == 1 and "no checkpoint.pt" in result.output


def test_checkpoint_that_does_not_fit_and_missing_latents(tiny_run, packed, tmp_path):
    import shutil

    import torch
    from iebench.baselines.evaluate import check

    out, _ = packed
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    state = torch.load(other / "checkpoint.pt", weights_only=True)
    state["config"]["projector"] = [32, 32, 32]
    torch.save(state, other / "checkpoint.pt")
    with pytest.raises(EvalError, match="does not fit"):
        evaluate(other, out, QUICK, progress=False)
    with pytest.raises(EvalError, match="floor_hue"):
        check(EvalSettings(tasks=("colour",)), ("rot_x", "rot_y", "rot_z"), None)
