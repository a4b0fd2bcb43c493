"""3DIEBench-mini at `ci` scale, end to end: objects, real renders, shards, training, evaluation, report."""

import json
import shutil

import numpy as np
import pytest

from iebench.baselines import precision
from iebench.orchestration.mini import SCALES, MiniOptions, render_settings, run_mini, train_config
from iebench.orchestration.verdicts import claim_line, claims, seed_values, seedwise_margin, summarise
from iebench.render.settings import ORIGINAL_RECIPE

pytest.importorskip("bpy", reason="the render extra (bpy) is part of the dev set-up")


@pytest.mark.slow
def test_ci_scale_end_to_end_made_here_trained_there_and_resumes(tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"
    shards = run_mini(MiniOptions(out=here, scale="ci", seeds=1, data_only=True))
    assert shards == here / "shards" and (shards / "_info.json").is_file() and not (here / "runs").exists()
    assert set(json.loads((here / "_timings.json").read_text())) == {"objects", "render", "pack"}
    in_place = MiniOptions(out=here, scale="ci", seeds=1, data_only=True)
    assert run_mini(in_place) == shards and in_place.ran == []  # with its renders, an OUT resumes in place: nothing redone
    there.mkdir()  # the training machine gets the shards and the stage times, not the objects or the renders
    shutil.copytree(shards, there / "shards")
    shutil.copy(here / "_timings.json", there)
    with pytest.raises(ValueError, match=r"made with other settings .*render differ"):
        run_mini(MiniOptions(out=there, scale="ci", seeds=1, quality="original"))
    with pytest.raises(ValueError, match=r"preset, views_per_object, render, object count differ"):
        run_mini(MiniOptions(out=there, scale="laptop", seeds=1))
    cut = tmp_path / "cut"  # a copy that broke off: the last shard is short
    shutil.copytree(there, cut)
    last = sorted((cut / "shards").glob("*.tar"))[-1]
    last.write_bytes(last.read_bytes()[:-1024])
    with pytest.raises(ValueError, match=rf"did not arrive whole .*{last.name}"):
        run_mini(MiniOptions(out=cut, scale="ci", seeds=1))
    options = MiniOptions(out=there, scale="ci", seeds=1, methods=("sie", "sie-rotcolor", "vicreg", "simclr"))
    report = run_mini(options, "iebench mini OUT --scale ci --seeds 1")
    assert not (there / "render").exists() and not (there / "objects").exists()  # nothing rendered here
    assert {"objects", "render"} <= set(options.timings) and "render" not in options.ran  # the times carried over
    text = report.read_text()
    for name in ("sie", "sie-rotcolor", "vicreg", "simclr", "random init", "pixels"):
        assert f"| {name} |" in text
    assert text.count("**inconclusive**") == 3  # one seed: no spread to judge a margin by
    data = json.loads((there / "report.json").read_text())
    assert data["scale"]["resolution"] == 32 and len(data["reports"]) == 6  # 4 methods, the untrained floor, the pixels
    assert data["render"]["samples"] == 2 and data["render"]["resolution"] == 32
    assert data["precision"] == {"float32": ["sie-rotcolor-seed0", "sie-seed0", "simclr-seed0", "vicreg-seed0"]}
    assert "trained in float32 (4 runs)" in text
    assert (there / "report.png").is_file() and (there / "shards" / "_info.json").is_file()
    again = MiniOptions(out=there, scale="ci", seeds=1, methods=("sie", "sie-rotcolor", "vicreg", "simclr"))
    run_mini(again)
    assert not any(name.startswith("train") for name in again.ran)  # nothing retrained
    assert again.timings == json.loads((there / "_timings.json").read_text())  # first run's times kept
    assert "train sie seed 0" in again.timings and "| total |" in again.out.joinpath("report.md").read_text()
    for epochs in (1, 3):  # fewer would report the longer runs as shorter; more would extend them silently
        with pytest.raises(ValueError, match=r"sie-seed0 was trained for 2 epochs and this command asks for \d: use a new OUT"):
            run_mini(MiniOptions(out=there, scale="ci", seeds=1, epochs=epochs))


def test_a_named_recipe_replaces_the_scales_samples_at_its_resolution():
    laptop = SCALES["laptop"]
    assert render_settings(laptop).samples == laptop.samples and render_settings(laptop).resolution == 64
    assert render_settings(laptop, "original") == ORIGINAL_RECIPE.replace(resolution=64)
    with pytest.raises(ValueError, match="unknown render quality 'best'"):
        render_settings(laptop, "best")


def test_cpu_bf16_trains_in_bfloat16_only_where_the_cpu_does_it_in_hardware(tmp_path, monkeypatch):
    def precision_of(scale: str, **asked) -> bool:
        return train_config(MiniOptions(out=tmp_path, scale=scale, **asked).scale_used(), "sie", 0, tmp_path, tmp_path / "new").cpu_bf16

    for native in (True, False):
        monkeypatch.setattr(precision, "native_cpu_bf16", lambda native=native: native)
        assert precision_of("laptop") is native and precision_of("ci", cpu_bf16=True) is native  # the scale's, or --cpu-bf16
        assert not precision_of("laptop", cpu_bf16=False) and not precision_of("ci")  # --no-cpu-bf16, or the scale's
        assert not precision_of("gpu", cpu_bf16=True)  # CUDA trains with AMP instead
    started = tmp_path / "started"
    started.mkdir()
    for native, began_in in ((False, True), (True, False)):  # a run resumed keeps its precision, whatever this machine does
        monkeypatch.setattr(precision, "native_cpu_bf16", lambda native=native: native)
        (started / "config.json").write_text(json.dumps({"cpu_bf16": began_in, "epochs": 150}))  # the laptop scale's
        assert train_config(SCALES["laptop"], "sie", 0, tmp_path, started).cpu_bf16 is began_in


def test_claims_compare_seed_by_seed():
    def seeds(*values):
        return dict(enumerate(values))

    values = {
        "sie": {
            "rotation R^2 (per output)": seeds(0.30, 0.20, 0.25),
            "colour R^2 (SIE)": seeds(0.1, 0.1, 0.1),
            "top-1 (all, %)": seeds(50.0, 51.0, 49.0),
        },
        "sie-rotcolor": {
            "rotation R^2 (per output)": seeds(0.2, 0.2, 0.2),
            "colour R^2 (SIE)": seeds(0.9, 0.8, 0.85),
            "top-1 (all, %)": seeds(48.0, 48.0, 48.0),
        },
        "vicreg": {
            "rotation R^2 (per output)": seeds(0.25, 0.15, 0.20),
            "colour R^2 (SIE)": seeds(0.0, 0.0, 0.0),
            "top-1 (all, %)": seeds(55.0, 56.0, 54.0),
        },
        "simclr": {
            "rotation R^2 (per output)": seeds(0.31, 0.14, 0.20),
            "colour R^2 (SIE)": seeds(0.0, 0.0, 0.0),
            "top-1 (all, %)": seeds(60.0, 61.0, 62.0),
        },
        "random init": {
            "rotation R^2 (per output)": seeds(0.0, 0.0, 0.0),
            "colour R^2 (SIE)": seeds(0.0, 0.0, 0.0),
            "top-1 (all, %)": seeds(60.0, 60.5, 61.0),
        },
    }
    found = {c["claim"][:3]: c for c in claims(values)}
    # SIE beats VICReg by 0.05 on every seed: the seeds' common ups and downs cancel, and the spread is 0 ...
    assert seedwise_margin(values, "rotation R^2 (per output)", "sie", "vicreg")["verdict"] == "holds"
    # ... but not SimCLR (per seed -0.01, +0.06, +0.05): (a) must hold against both, and shows the closer one
    assert found["(a)"]["verdict"] == "inconclusive" and found["(a)"]["versus"] == "simclr"
    assert found["(a)"]["margin"] == pytest.approx(0.1 / 3) and found["(a)"]["spread"] == pytest.approx(np.std([-0.01, 0.06, 0.05], ddof=1))
    assert found["(b)"]["verdict"] == "holds" and found["(b)"]["margin"] == pytest.approx(0.75)
    assert (
        found["(c)"]["verdict"] == "fails" and found["(c)"]["better"] == "sie-rotcolor" and found["(c)"]["margin"] == pytest.approx(-12.5)
    )
    one_seed = {name: {m: {0: v[0]} for m, v in metrics.items()} for name, metrics in values.items()}
    assert all(c["verdict"] == "inconclusive" for c in claims(one_seed))
    assert claim_line(found["(b)"]).endswith(
        "**holds** (sie-rotcolor - sie: margin +0.750 = mean of +0.800, +0.700, +0.750; spread over seeds 0.050)"
    )
    values["pixels"] = {"colour R^2 (SIE)": seeds(0.9, 0.9, 0.9)}  # (b) has no pixels floor (tests/mini/test_claim_b.py)
    assert claims(values)[1]["verdict"] == "holds" and "pixels" not in claims(values)[1]["claim"]


def test_summary_reads_each_reports_seed():
    def report(seed, mrr):
        results = {
            "classification": {"all": {"top1": 0.5}},
            "rotation": {"r2_sie": 0.6, "r2_per_output": 0.4},
            "mrr": {"val->val": {"mrr": mrr, "h@1": 0.3}},
        }
        return {"random_init": False, "method": "sie", "settings": {"probe": {"seed": seed}}, "results": results}

    values = seed_values([report(0, 0.5), report(1, 0.7)])
    assert values["sie"]["MRR"] == {0: 0.5, 1: 0.7}
    mean, std = summarise(values)["sie"]["MRR"]
    assert mean == pytest.approx(0.6) and std == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert np.isnan(summarise(values)["sie"]["colour R^2 (SIE)"][0])  # not evaluated: n/a, not an error
    assert np.isnan(summarise(values)["sie"]["spot hue R^2"][0])


def test_summary_reads_the_colour_targets_columns_as_floor_and_spot():
    results = {
        "classification": {"all": {"top1": 0.5}},
        "rotation": {"r2_sie": 0.6, "r2_per_output": 0.4},
        "colour": {"r2_sie": 0.55, "r2_per_output": 0.5, "r2_by_output": [0.9, 0.1]},
        "mrr": {},
    }
    values = seed_values([{"random_init": False, "method": "sie-rotcolor", "settings": {"probe": {"seed": 0}}, "results": results}])
    assert values["sie-rotcolor"]["floor hue R^2"] == {0: 0.9} and values["sie-rotcolor"]["spot hue R^2"] == {0: 0.1}
