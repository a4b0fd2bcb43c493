"""3DIEBench-mini at `ci` scale, end to end: objects, real renders, shards, training, evaluation, report."""

import json

import pytest
from iebench.render.settings import ORIGINAL_RECIPE

from iebench.orchestration.mini import SCALES, MiniOptions, claim_line, claims, render_settings, run_mini, summarise

pytest.importorskip("bpy", reason="the render extra (bpy) is part of the dev set-up")


@pytest.mark.slow
def test_ci_scale_end_to_end_and_resumes(tmp_path):
    options = MiniOptions(out=tmp_path, scale="ci", seeds=1, methods=("sie", "sie-rotcolor", "vicreg", "simclr"))
    report = run_mini(options, "iebench mini OUT --scale ci --seeds 1")
    text = report.read_text()
    for name in ("sie", "sie-rotcolor", "vicreg", "simclr", "random init", "pixels"):
        assert f"| {name} |" in text
    assert text.count("**inconclusive**") == 3  # one seed: no spread to judge a margin by
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["scale"]["resolution"] == 32 and len(data["reports"]) == 6  # 4 methods, the untrained floor, the pixels
    assert data["render"]["samples"] == 2 and data["render"]["resolution"] == 32
    assert (tmp_path / "report.png").is_file() and (tmp_path / "shards" / "_info.json").is_file()
    again = MiniOptions(out=tmp_path, scale="ci", seeds=1, methods=("sie", "sie-rotcolor", "vicreg", "simclr"))
    run_mini(again)
    assert not any(name.startswith("train") for name in again.ran)  # nothing retrained
    assert again.timings == json.loads((tmp_path / "_timings.json").read_text())  # first run's times kept
    assert "train sie seed 0" in again.timings and "| total |" in again.out.joinpath("report.md").read_text()


def test_a_named_recipe_replaces_the_scales_samples_at_its_resolution():
    laptop = SCALES["laptop"]
    assert render_settings(laptop).samples == laptop.samples and render_settings(laptop).resolution == 64
    assert render_settings(laptop, "original") == ORIGINAL_RECIPE.replace(resolution=64)
    with pytest.raises(ValueError, match="unknown render quality 'best'"):
        render_settings(laptop, "best")


def test_claims_from_a_summary():
    summary = {
        "sie": {"rotation R^2 (per output)": (0.3, 0.01), "colour R^2 (SIE)": (0.1, 0.0), "top-1 (all, %)": (50.0, 1.0)},
        "sie-rotcolor": {"rotation R^2 (per output)": (0.2, 0.0), "colour R^2 (SIE)": (0.9, 0.0), "top-1 (all, %)": (48.0, 1.0)},
        "vicreg": {"rotation R^2 (per output)": (0.27, 0.02), "colour R^2 (SIE)": (0.0, 0.0), "top-1 (all, %)": (55.0, 1.0)},
        "random init": {"rotation R^2 (per output)": (0.0, 0.0), "colour R^2 (SIE)": (0.0, 0.0), "top-1 (all, %)": (60.0, 0.5)},
    }
    found = {c["claim"][:3]: c for c in claims(summary, seeds=3)}
    assert found["(a)"]["verdict"] == "inconclusive" and found["(a)"]["margin"] == pytest.approx(0.03)  # inside 2 x 0.02
    assert found["(b)"]["verdict"] == "holds" and found["(b)"]["margin"] == pytest.approx(0.8)
    assert found["(c)"]["verdict"] == "fails" and found["(c)"]["margin"] == pytest.approx(-12.0)
    assert all(c["verdict"] == "inconclusive" for c in claims(summary, seeds=1))
    assert claim_line(found["(b)"]).endswith("**holds** (margin +0.800, spread over seeds 0.000)")
    reports = [
        {
            "random_init": False,
            "method": "sie",
            "results": {
                "classification": {"all": {"top1": 0.5}},
                "rotation": {"r2_sie": 0.6, "r2_per_output": 0.4},
                "colour": {"r2_sie": 0.1},
                "mrr": {"val->val": {"mrr": 0.5, "h@1": 0.3}},
            },
        }
    ] * 2
    assert summarise(reports)["sie"]["MRR"] == (0.5, 0.0)
