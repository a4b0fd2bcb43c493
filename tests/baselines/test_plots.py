"""The pictures: which files each plot writes for the data it is given, at what size, and that they show something."""

import json

import numpy as np
from PIL import Image

from iebench.baselines.plots import eval_plots, loss_curve, report_chart, summary_chart


def picture(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def assert_drawn(path, size: tuple[int, int]) -> None:
    pixels = picture(path)
    assert pixels.shape[:2] == (size[1], size[0])
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # axes, lines and text: not a blank canvas


def test_loss_curve_draws_steps_epochs_and_terms(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    lines = [
        {"kind": "step", "epoch": e, "step": s, "global_step": 4 * e + s, "loss": 5.0 - e - s / 4, "invariance": 1.0}
        for e in range(3)
        for s in range(4)
    ]
    lines += [{"kind": "epoch", "epoch": e, "loss": 4.5 - e, "invariance": 1.0 / (e + 1)} for e in range(3)]
    metrics.write_text("".join(json.dumps(line) + "\n" for line in lines))
    path = loss_curve(metrics, tmp_path / "loss.png", title="sie")
    assert_drawn(path, (11 * 110, 4 * 110))


def test_eval_plots_write_one_picture_per_result_given(tmp_path):
    rng = np.random.default_rng(0)
    rotation = (rng.normal(size=(20, 4)), rng.normal(size=(20, 4)))
    written = eval_plots(tmp_path / "a", {"rotation": rotation}, None, 3)
    assert [p.name for p in written] == ["rotation_scatter.png"]  # no colour, ranks or classification: no picture of them
    assert_drawn(written[0], (round(3.2 * 4 * 110), round(3.2 * 110)))
    everything = {"rotation": rotation, "colour": (rng.normal(size=(20, 2)), rng.normal(size=(20, 2))), "ranks": np.array([[1, 2], [1, 5]])}
    classification = {"top1": 0.5, "per_class": [1.0, float("nan"), 0.25]}
    written = eval_plots(tmp_path / "b", everything, classification, 3)
    assert [p.name for p in written] == ["rotation_scatter.png", "colour_scatter.png", "mrr_ranks.png", "per_class_accuracy.png"]
    for path in written:
        assert_drawn(path, Image.open(path).size)


def test_report_and_summary_charts(tmp_path):
    results = {"classification": {"all": {"top1": 0.6}}, "rotation": {"r2_sie": 0.4, "r2_per_output": 0.3}, "mrr": {}}
    reports = [{"run": "runs/sie", "random_init": False, "results": results}, {"run": "runs/sie", "random_init": True, "results": {}}]
    assert_drawn(report_chart(reports, tmp_path / "report.png"), (round((2 + 1.6 * 5) * 110), round(3.8 * 110)))
    summary = {"sie": {"MRR": (0.5, 0.1), "top-1": (40.0, 2.0)}, "vicreg": {"MRR": (float("nan"), float("nan")), "top-1": (45.0, 1.0)}}
    assert_drawn(summary_chart(summary, tmp_path / "summary.png", title="mini"), (round(2.3 * 2 * 110), round(3.4 * 110)))
