"""Pictures of training runs (matplotlib, no display needed)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


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
    out = Path(out)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
