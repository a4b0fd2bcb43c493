"""`iebench eval` and `report` end to end on a tiny trained run over the rendered shards."""

import json

import pytest
from click.testing import CliRunner

from iebench.baselines.errors import EvalError
from iebench.baselines.evaluate import EvalSettings, evaluate, parse_tasks
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
    result = CliRunner().invoke(
        main, ["eval", str(tiny_run), "--data", str(out), "--random-init", "--epochs", "3", "--tasks", "classification,rotation"]
    )
    assert result.exit_code == 0, result.output
    assert (tiny_run / "eval-random-init" / "eval.json").is_file()
    evaluate(tiny_run, out, QUICK, progress=False)
    result = CliRunner().invoke(main, ["report", str(tiny_run), "--out", str(tmp_path / "report.md")])
    assert result.exit_code == 0, result.output
    table = (tmp_path / "report.md").read_text()
    assert "(untrained)" in table and table.count("\n") == 4
    assert (tmp_path / "report.png").is_file()


def test_report_refuses_an_evaluation_of_an_earlier_checkpoint_and_files_that_are_not_reports(evaluated_copy, packed, tmp_path):
    run, _ = evaluated_copy
    out, _ = packed
    assert CliRunner().invoke(main, ["report", str(run), "--out", str(tmp_path / "r.md")]).exit_code == 0
    train(tiny_config(out, run, epochs=3), resume=True, progress=False)  # the run trains on after its evaluation
    result = CliRunner().invoke(main, ["report", str(run), "--out", str(tmp_path / "stale.md")])
    assert result.exit_code == 1 and "evaluates an earlier checkpoint" in result.output and f"iebench eval {run}" in result.output
    assert not (tmp_path / "stale.md").exists()
    pixels = {k: v for k, v in json.loads((run / "eval" / "eval.json").read_text()).items() if k != "weights"}
    (tmp_path / "pixels.json").write_text(json.dumps(pixels | {"method": "pixels"}))  # a reference row has no weights
    assert CliRunner().invoke(main, ["report", str(tmp_path / "pixels.json"), "--out", str(tmp_path / "p.md")]).exit_code == 0
    for text in ("{bad", "[]", "{}"):
        (tmp_path / "eval.json").write_text(text)
        result = CliRunner().invoke(main, ["report", str(tmp_path / "eval.json"), "--out", str(tmp_path / "x.md")])
        assert result.exit_code == 1 and "is not an evaluation report" in result.output and "Traceback" not in result.output


def test_bad_input_fails_before_work(tiny_run, packed, tmp_path):
    out, _ = packed
    with pytest.raises(EvalError, match="unknown task"):
        parse_tasks("classification,segmentation")
    with pytest.raises(EvalError, match="not a folder"):
        evaluate(tiny_run, tmp_path / "nowhere", QUICK, progress=False)
    result = CliRunner().invoke(main, ["eval", str(tmp_path), "--data", str(out)])
    assert result.exit_code == 1 and "no checkpoint.pt" in result.output
    result = CliRunner().invoke(main, ["eval", str(tmp_path), "--data", str(out), "--random-init"])
    assert result.exit_code == 1 and "is not a run folder" in result.output and not (tmp_path / "eval-random-init").exists()


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


def test_the_same_evaluation_gives_the_same_numbers_in_one_process_and_in_two(tiny_run, packed, tmp_path):
    import shutil
    import subprocess
    import sys

    out, _ = packed
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    settings = EvalSettings(tasks=("classification", "rotation", "mrr"), probe=ProbeSettings(epochs=3, batch_size=64, seed=2))
    first = evaluate(run, out, settings, progress=False)["results"]
    assert evaluate(run, out, settings, progress=False)["results"] == first
    command = [
        sys.executable,
        "-m",
        "iebench.cli",
        "eval",
        str(run),
        "--data",
        str(out),
        "--tasks",
        "classification,rotation,mrr",
        "--epochs",
        "3",
        "--batch-size",
        "64",
        "--seed",
        "2",
        "--device",
        "cpu",
    ]
    subprocess.run(command, check=True, capture_output=True)
    assert json.loads((run / "eval" / "eval.json").read_text())["results"] == json.loads(json.dumps(first))


ROTATION_ONLY = EvalSettings(tasks=("rotation",), probe=ProbeSettings(epochs=2, batch_size=64))


def written_at(run):
    """When RUN's eval.json was last written."""
    return (run / "eval" / "eval.json").stat().st_mtime_ns


@pytest.fixture
def evaluated_copy(tiny_run, packed, tmp_path):
    """A copy of the tiny run with a cached rotation-only evaluation on the packed shards: (run, that result)."""
    import shutil

    from iebench.baselines.evaluate import cached_evaluate

    run = shutil.copytree(tiny_run, tmp_path / "run")
    return run, cached_evaluate(run, packed[0], ROTATION_ONLY, progress=False)


def test_a_cached_evaluation_is_reused_only_for_the_same_settings(evaluated_copy, packed):
    from iebench.baselines.evaluate import cached_evaluate

    run, first = evaluated_copy
    out = packed[0]
    stamp = written_at(run)
    assert cached_evaluate(run, out, ROTATION_ONLY, progress=False) == first and written_at(run) == stamp
    for changed in (
        EvalSettings(tasks=("rotation",), probe=ProbeSettings(epochs=3, batch_size=64)),
        EvalSettings(tasks=("rotation",), rotation_part="equi", probe=ProbeSettings(epochs=2, batch_size=64)),
        EvalSettings(tasks=("rotation", "colour"), probe=ProbeSettings(epochs=2, batch_size=64)),
    ):
        again = cached_evaluate(run, out, changed, progress=False)
        assert again["key"] != first["key"] and again["settings"]["tasks"] == list(changed.tasks)
    assert len(again["results"]["colour"]["r2_by_output"]) == 2  # floor hue, spot hue: each column's own R^2
    (run / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes())  # same weights, new time stamp: still reused
    last = json.loads((run / "eval" / "eval.json").read_text())
    assert cached_evaluate(run, out, changed, progress=False)["key"] == last["key"]


def test_a_cached_evaluation_follows_its_shards_to_another_folder_but_not_to_other_bytes(evaluated_copy, packed, tmp_path):
    import shutil

    from iebench.baselines.evaluate import cached_evaluate

    run, first = evaluated_copy
    stamp = written_at(run)
    moved = shutil.copytree(packed[0], tmp_path / "elsewhere" / "shards")  # SHA256SUMS names every byte: the same data
    assert cached_evaluate(run, moved, ROTATION_ONLY, progress=False) == first and written_at(run) == stamp
    sums = moved / "SHA256SUMS"
    lines = sums.read_text().splitlines()

    def with_zeroed(suffix: str) -> str:  # SHA256SUMS with one file's digest changed
        index = next(i for i, line in enumerate(lines) if line.endswith(suffix))
        return "\n".join([*lines[:index], "0" * 64 + lines[index][64:], *lines[index + 1 :]]) + "\n"

    sums.write_text(with_zeroed("  _info.json"))  # a description rewritten (a pack re-run after a render with nothing to do)
    assert cached_evaluate(run, moved, ROTATION_ONLY, progress=False) == first and written_at(run) == stamp
    sums.write_text(with_zeroed(".tar"))  # a shard with other bytes than the cache's
    assert cached_evaluate(run, moved, ROTATION_ONLY, progress=False)["key"] != first["key"]


def test_a_cached_evaluation_is_computed_again_when_the_results_change_shape(evaluated_copy, packed, monkeypatch):
    from iebench.baselines import evaluate

    run, first = evaluated_copy
    stamp = written_at(run)
    monkeypatch.setattr(evaluate, "RESULTS_VERSION", evaluate.RESULTS_VERSION + 1)
    again = evaluate.cached_evaluate(run, packed[0], ROTATION_ONLY, progress=False)
    assert again["key"] != first["key"] and written_at(run) != stamp
    assert again["results"] == first["results"]  # the same inputs give the same numbers: only the key moved


def test_bn_mode_train_runs_the_backbone_as_the_released_scripts(tiny_run, packed):
    import numpy as np
    import torch

    from iebench.baselines.probes import LiveViews

    out, _ = packed
    state = torch.load(tiny_run / "checkpoint.pt", weights_only=True)["model"]["method"]
    settings = EvalSettings(tasks=("classification", "rotation"), bn_mode="train", probe=ProbeSettings(epochs=2, batch_size=4))
    live = evaluate(tiny_run, out, settings, progress=False)["results"]
    frozen = evaluate(
        tiny_run, out, EvalSettings(tasks=("classification", "rotation"), probe=ProbeSettings(epochs=2, batch_size=4)), progress=False
    )["results"]
    assert live["rotation"]["r2_sie"] != frozen["rotation"]["r2_sie"] and "train_fit" not in live["rotation"]
    assert torch.load(tiny_run / "checkpoint.pt", weights_only=True)["model"]["method"].keys() == state.keys()
    from iebench.baselines.evaluate import load_subject

    method = load_subject(tiny_run, False, ("rot_x", "rot_y", "rot_z")).method
    before = method.backbone.bn1.running_mean.clone()
    views = LiveViews(method.backbone, out, "train", 32, torch.device("cpu"))
    reps = views(np.array([0, 1, 2]), np.array([0, 1, 2]))
    assert reps.shape == (3, 512) and not torch.equal(method.backbone.bn1.running_mean, before)  # running statistics moved
    from iebench.baselines.probes import ProbeBatchError

    with pytest.raises(ProbeBatchError, match="a batch of one image has none"):  # not BatchNorm's traceback
        views(np.array([0]), np.array([1]))


def test_bn_mode_train_scores_validation_on_the_statistics_the_probe_moved(tiny_run, packed, monkeypatch):
    """As the released scripts: each probe trains with BatchNorm live, then validation is extracted with the running
    statistics its training left (a spy records the real calls' order; nothing is replaced)."""
    from iebench.baselines import evaluate as evaluation

    out, _ = packed
    calls, fit, extract = [], evaluation.fit_regressor, evaluation.extract
    monkeypatch.setattr(evaluation, "fit_regressor", lambda *a, **k: calls.append("fit") or fit(*a, **k))
    monkeypatch.setattr(evaluation, "extract", lambda *a, **k: calls.append(f"extract {a[2]}") or extract(*a, **k))
    settings = EvalSettings(tasks=("rotation", "colour"), bn_mode="train", probe=ProbeSettings(epochs=1, batch_size=4))
    evaluate(tiny_run, out, settings, progress=False)
    assert calls[-4:] == ["fit", "extract val", "fit", "extract val"]  # rotation, then colour: each fit before its validation


def test_data_of_another_schema_is_refused_with_both_named(tiny_run, tiny_render, tmp_path):
    from ..conftest import rotations_only_copy

    data = rotations_only_copy(tiny_render[0].out, tmp_path / "rotations-only")
    with pytest.raises(EvalError, match=r"latents \(rot_x, rot_y, rot_z\) are not those the run was trained on \(rot_x, .*spot_hue\)"):
        evaluate(tiny_run, data, QUICK, progress=False)
