"""Training and evaluation faults end in one clear line, and eval.json stays strict JSON (issue 33).

Bad 2 (a set packed with --val-fraction 0), bad 6 (weights holding NaN or infinities), and the poor cases: a
learning rate that makes training diverge, a shard damaged after its features were cached, colour R^2 on data
whose colour never varies, and `report` over runs evaluated on different data.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from iebench.baselines.results import finite_or_null
from iebench.dataset import format as fmt
from iebench.dataset.pack import PackOptions, pack
from iebench.presets import get_preset
from iebench.render.job import RenderJob, run
from iebench.render.objects import scan_root

from ..conftest import TINY_SETTINGS
from .conftest import TINY_TRAIN, assert_clean_failure, invoke

QUICK_EVAL = ("--epochs", "2", "--batch-size", "64", "--device", "cpu")


def strict_json(path):
    """A JSON file read as strict parsers read it: NaN and Infinity are errors."""
    return json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{path} holds {name}"))


@pytest.fixture(scope="module")
def train_only(tiny_render, tmp_path_factory):
    """The session's tiny render packed with no val split (`--val-fraction 0`)."""
    job, _ = tiny_render
    out = tmp_path_factory.mktemp("train-only")
    pack(job.out, out, PackOptions(name="tiny", val_fraction=0.0, workers=1))
    return out


@pytest.fixture(scope="module")
def trained(train_only, tmp_path_factory):
    """One epoch of SIE trained on the train-only set: a set without val trains as any other does."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    code, output = invoke("train", "--data", train_only, "--out", run_dir, *TINY_TRAIN, "--epochs", "1", "--workers", "0")
    assert code == 0, output
    return run_dir


@pytest.fixture
def run_copy(trained, tmp_path):
    """A private copy of the trained run."""
    return shutil.copytree(trained, tmp_path / "run")


def test_eval_on_a_set_without_val_is_refused_before_any_work(trained, train_only, tmp_path):
    code, output = invoke("eval", trained, "--data", train_only, *QUICK_EVAL)
    line = assert_clean_failure(code, output, str(train_only), "val split holds no objects", "--val-fraction 0.0", "--val-fraction 0.2")
    assert "iebench pack " in line
    assert not (trained / "eval").exists() and not (trained / "features").exists()  # nothing computed
    code, output = invoke("compare", "--data", train_only, "--out", tmp_path / "cmp", "--methods", "sie", "--epochs", "1")
    assert_clean_failure(code, output, "val split holds no objects")
    assert not (tmp_path / "cmp").exists()  # refused before anything trained


def nan_backbone(run_dir, out):
    """The run's exported backbone with its first convolution filled with NaN, as a user's damaged file."""
    code, output = invoke("export", run_dir, out)
    assert code == 0, output
    state = torch.load(out, weights_only=True)
    state["conv1.weight"].fill_(float("nan"))
    torch.save(state, out)
    return out


def test_weights_holding_nan_or_infinities_are_refused_at_import_and_eval(run_copy, packed, tmp_path):
    damaged = nan_backbone(run_copy, tmp_path / "nan.pt")
    code, output = invoke("import", damaged, tmp_path / "imported")
    assert_clean_failure(code, output, str(damaged), "conv1.weight", "NaN", "finite")
    assert not (tmp_path / "imported").exists()
    # A run whose checkpoint was damaged after training: eval names the tensor and writes nothing.
    checkpoint = run_copy / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    state["model"]["method"]["backbone.bn1.running_var"][0] = float("inf")
    torch.save(state, checkpoint)
    code, output = invoke("eval", run_copy, "--data", packed[0], *QUICK_EVAL)
    assert_clean_failure(code, output, str(checkpoint), "backbone.bn1.running_var", "1 infinite of", "lower --lr")
    assert not (run_copy / "eval").exists()


def test_a_training_that_diverges_ends_in_one_line_and_its_metrics_stay_strict_json(packed, tmp_path):
    out = tmp_path / "run"
    code, output = invoke("train", "--data", packed[0], "--out", out, *TINY_TRAIN, "--epochs", "4", "--workers", "0", "--lr", "1e12")
    assert_clean_failure(code, output, "diverged", "lower --lr", "1e+12", "iebench verify")
    for line in (out / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"metrics.jsonl holds {name}"))
    strict_json(out / "run.json")
    if (out / "checkpoint.pt").is_file():  # whatever was saved holds finite weights (eval would refuse the others)
        state = torch.load(out / "checkpoint.pt", weights_only=True)
        assert all(torch.isfinite(v).all() for v in state["model"]["method"].values() if v.is_floating_point())


def flip_member_byte(root):
    """Flip one byte inside the first JPEG member of the first train shard (same size); returns (shard, original bytes)."""
    info = json.loads((root / fmt.INFO_NAME).read_text())
    shard = root / info["splits"]["train"]["shards"][0]["name"]
    start, size, _ = fmt.read_index(shard)["samples"][0]["members"][fmt.view_field(0)]
    original = shard.read_bytes()
    damaged = bytearray(original)
    damaged[start + size // 2] ^= 0x5A
    shard.write_bytes(bytes(damaged))
    return shard, original


def test_a_shard_damaged_after_its_features_were_cached_is_noticed(run_copy, shards):
    args = ("eval", run_copy, "--data", shards, "--tasks", "classification", *QUICK_EVAL)
    code, output = invoke(*args)
    assert code == 0, output
    cached = sorted((run_copy / "features").glob("features-*.pt"))
    assert len(cached) == 2
    shard, original = flip_member_byte(shards)
    code, output = invoke(*args)
    assert_clean_failure(code, output, shard.name, "checksum")
    shard.write_bytes(original)  # restored: the features are computed again, in the same cache files
    code, output = invoke(*args)
    assert code == 0, output
    assert sorted((run_copy / "features").glob("features-*.pt")) == cached


@pytest.fixture
def fixed_colour(procedural_root, tmp_path):
    """A real render where floor and spot hue never vary (preset rotation-only), packed."""
    job = RenderJob(
        objects=tuple(scan_root(procedural_root)),
        out=tmp_path / "render",
        preset=get_preset("rotation-only"),
        seed=3,
        views=2,
        settings=TINY_SETTINGS,
        workers=1,
        source_root=procedural_root,
    )
    run(job)
    out = tmp_path / "fixed-colour"
    pack(job.out, out, PackOptions(name="fixed", workers=1))
    return out


def test_colour_r2_on_fixed_colours_is_null_with_the_reason_and_report_notes_other_data(run_copy, fixed_colour, packed, tmp_path):
    code, output = invoke("eval", run_copy, "--data", fixed_colour, "--tasks", "classification,colour", *QUICK_EVAL)
    assert code == 0, output
    report = strict_json(run_copy / "eval" / "eval.json")
    colour = report["results"]["colour"]
    assert colour["r2_sie"] is None and colour["r2_per_output"] is None and colour["r2_by_output"] == [None, None]
    assert "does not vary" in colour["r2_undefined"]
    assert "undefined" in output and "colour R^2 undefined" in output
    assert "undefined" in (run_copy / "eval" / "eval.md").read_text()
    # The same run evaluated on other data, set beside it: the report says they do not compare.
    other = shutil.copytree(run_copy, tmp_path / "other")
    shutil.rmtree(other / "eval")
    assert invoke("eval", other, "--data", packed[0], "--tasks", "classification,colour", *QUICK_EVAL)[0] == 0
    assert strict_json(other / "eval" / "eval.json")["data_digest"] != report["data_digest"]
    code, output = invoke("report", run_copy, other, "--out", tmp_path / "report.md")
    assert code == 0, output
    note = next(line for line in (tmp_path / "report.md").read_text().splitlines() if "different data" in line)
    assert f"run on {fixed_colour}" in note and f"other on {packed[0]}" in note
    code, output = invoke("report", other, "--out", tmp_path / "one.md")
    assert code == 0 and "different data" not in output


def test_a_probe_that_diverges_gives_null_and_its_reason_not_nan(run_copy, packed):
    code, output = invoke("eval", run_copy, "--data", packed[0], "--tasks", "rotation", *QUICK_EVAL, "--lr", "1e30")
    assert code == 0, output
    rotation = strict_json(run_copy / "eval" / "eval.json")["results"]["rotation"]
    assert rotation["r2_sie"] is None and "not a finite number" in rotation["r2_sie_null"]
    assert "rotation for run, r2_sie" in output and "lower probe --lr" in output


def test_eval_json_holds_null_and_a_reason_where_a_number_is_not_finite():
    results = {"classification": {"all": {"top1": 0.5, "per_class": [1.0, float("nan")]}}, "rotation": {"r2_sie": float("inf")}}
    clean = finite_or_null(results)
    json.dumps(clean, allow_nan=False)  # strict
    assert clean["classification"]["all"]["per_class"] == [1.0, None]
    assert "no object in val" in clean["classification"]["all"]["per_class_null"]
    assert clean["rotation"]["r2_sie"] is None and "not a finite number" in clean["rotation"]["r2_sie_null"]


def test_the_mini_report_json_is_strict_where_a_metric_does_not_apply(tmp_path):
    from iebench.orchestration.mini import SCALES, MiniOptions
    from iebench.orchestration.mini_report import write_report

    results = {
        "classification": {"all": {"top1": 0.5}},
        "rotation": {"r2_sie": 0.6, "r2_per_output": 0.4},
        "mrr": {"not_applicable": "none"},
    }
    report = {
        "run": str(tmp_path / "sie-seed0"),
        "random_init": False,
        "method": "sie",
        "settings": {"probe": {"seed": 0}},
        "results": results,
    }
    write_report(MiniOptions(out=tmp_path, scale="ci", seeds=1), SCALES["ci"], {"samples": 2}, [report], "iebench mini OUT")
    summary = strict_json(tmp_path / "report.json")["summary"]["sie"]
    assert summary["MRR"][0] is None and "does not apply" in summary["MRR_null"]
    assert summary["rotation R^2 (SIE)"][0] == pytest.approx(0.6)
