"""Pictures of training runs (matplotlib, no display needed)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from iebench.baselines.results import result_value, run_label  # noqa: E402
from iebench.files import atomic_path  # noqa: E402


def loss_curve(metrics: Path, out: Path, title: str = "") -> Path:
    """The total loss per step (and per-epoch means) with each loss term, from a metrics.jsonl."""
    records = [json.loads(line) for line in Path(metrics).read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    per_epoch = max(1, len(steps) // max(1, len(epochs)))
    terms = [k for k in ("invariance", "equivariance", "variance", "pred_variance", "covariance") if steps and k in steps[0]]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot([r["global_step"] for r in steps], [r["loss"] for r in steps], lw=0.8, alpha=0.6, label="step")
    axes[0].plot([(r["epoch"] + 1) * per_epoch - 1 for r in epochs], [r["loss"] for r in epochs], "o-", label="epoch mean")
    axes[0].set(xlabel="step", ylabel="loss", title=title or "training loss")
    axes[0].legend()
    for term in terms:
        axes[1].plot([r["epoch"] for r in epochs], [r[term] for r in epochs], "o-", label=term)
    axes[1].set(xlabel="epoch", ylabel="term (unweighted)", yscale="log", title="loss terms, epoch means")
    if terms:
        axes[1].legend(fontsize=8)
    figure.tight_layout()
    return _save(figure, Path(out))


def eval_plots(out_dir: Path, data: dict, classification: dict | None, classes: int) -> list[Path]:
    """Predicted vs true rotation (and colour) components, the MRR rank histogram, per-class accuracy."""
    import numpy as np

    written = []
    for task, names in (("rotation", ["qx", "qy", "qz", "qw"]), ("colour", ["floor hue diff", "spot hue diff"])):
        if task not in data:
            continue
        truth, predicted = data[task]
        figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2))
        for i, ax in enumerate(np.atleast_1d(axes)):
            ax.scatter(truth[:, i], predicted[:, i], s=4, alpha=0.5)
            lo, hi = float(min(truth[:, i].min(), predicted[:, i].min())), float(max(truth[:, i].max(), predicted[:, i].max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.set(xlabel=f"true {names[i]}", ylabel="predicted")
        figure.suptitle(f"{task}: predicted vs true (validation pairs)")
        figure.tight_layout()
        written.append(_save(figure, Path(out_dir) / f"{task}_scatter.png"))
    if "ranks" in data:
        ranks = data["ranks"].ravel()
        figure, ax = plt.subplots(figsize=(5, 3.2))
        ax.hist(ranks, bins=np.arange(1, ranks.max() + 2) - 0.5)
        ax.set(xlabel="rank of the true view (1 = retrieved)", ylabel="queries", title="MRR: rank of each predicted view")
        figure.tight_layout()
        written.append(_save(figure, Path(out_dir) / "mrr_ranks.png"))
    if classification:
        figure, ax = plt.subplots(figsize=(max(5, 0.35 * classes), 3.2))
        ax.bar(range(classes), [0 if a is None or a != a else a for a in classification["per_class"]])
        ax.set(
            xlabel="label",
            ylabel="top-1",
            ylim=(0, 1),
            title=f"per-class accuracy (whole representation), top-1 {classification['top1']:.2f}",
        )
        ax.set_xticks(range(classes))
        figure.tight_layout()
        written.append(_save(figure, Path(out_dir) / "per_class_accuracy.png"))
    return written


def report_chart(reports: list[dict], out: Path) -> Path:
    """Bars per run: top-1 (whole representation), rotation R^2 both ways, colour R^2, MRR."""
    import numpy as np

    metrics = [
        ("top-1 all", ("classification", "all", "top1")),
        ("rotation R^2 SIE", ("rotation", "r2_sie")),
        ("rotation R^2 per output", ("rotation", "r2_per_output")),
        ("colour R^2 SIE", ("colour", "r2_sie")),
        ("MRR (val)", ("mrr", "val->val", "mrr")),
    ]
    figure, ax = plt.subplots(figsize=(2 + 1.6 * len(metrics), 3.8))
    width = 0.8 / max(1, len(reports))
    for i, report in enumerate(reports):
        values = [result_value(report["results"], *path) for _, path in metrics]
        ax.bar(np.arange(len(metrics)) + i * width, [0 if v is None else v for v in values], width, label=run_label(report))
    ax.set_xticks(np.arange(len(metrics)) + width * (len(reports) - 1) / 2, [m for m, _ in metrics], fontsize=8)
    ax.axhline(0, color="k", lw=0.6)
    ax.legend(fontsize=7)
    figure.tight_layout()
    return _save(figure, Path(out))


def summary_chart(summary: dict[str, dict[str, tuple[float, float]]], out: Path, title: str = "") -> Path:
    """Bars per method and metric: the mean over seeds, with the standard deviation as an error bar."""
    import numpy as np

    names = list(summary)
    metrics = list(next(iter(summary.values())))
    figure, axes = plt.subplots(1, len(metrics), figsize=(2.3 * len(metrics), 3.4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        means = [summary[n][metric][0] for n in names]
        stds = [summary[n][metric][1] for n in names]
        ax.bar(
            range(len(names)),
            np.nan_to_num(means),
            yerr=np.nan_to_num(stds),
            capsize=3,
            color=[colours[i % len(colours)] for i in range(len(names))],
        )
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_title(metric, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return _save(figure, Path(out))


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(figure)
    return path
