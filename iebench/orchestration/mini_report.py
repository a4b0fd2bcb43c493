"""The mini's report: report.md, report.json and report.png, with the machine, the command and the time per stage."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import iebench
from iebench.files import write_atomic, write_json_atomic
from iebench.orchestration.verdicts import METRICS, claim_line, claims, seed_values, summarise

if TYPE_CHECKING:
    from iebench.orchestration.mini import MiniOptions, MiniScale


def stage_kind(stage: str) -> str:
    """'train sie seed 1' -> 'train sie': the stages whose times predict each other."""
    return stage.rsplit(" seed ", 1)[0]


def write_report(options: MiniOptions, scale: MiniScale, render: dict, reports: list[dict], command: str) -> Path:
    """report.md, report.json and report.png in OUT (`render`: the render settings the data was made with)."""
    import torch

    from iebench.baselines.plots import summary_chart
    from iebench.baselines.results import finite_or_null

    values = seed_values(reports)
    summary = summarise(values)
    found = claims(values)
    precision = training_precision(reports)
    lines = [
        f"# 3DIEBench-mini ({options.scale} scale, {options.seeds} seed{'s' if options.seeds > 1 else ''})",
        "",
        f"`{command}`",
        "",
        f"iebench {iebench.__version__}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.machine()}; seeds {list(range(options.seeds))}; scale {asdict(scale)}; "
        f"render {render}; trained in " + "; ".join(f"{dtype} ({len(runs)} runs)" for dtype, runs in precision.items()),
        "",
        "| method | " + " | ".join(METRICS) + " |",
        "|" + "---|" * (len(METRICS) + 1),
    ]
    for name, metrics in summary.items():
        lines.append(
            f"| {name} | "
            + " | ".join(
                "n/a" if np.isnan(m) else f"{m:.3f} ± {s:.3f}" if "top-1" not in k else f"{m:.1f} ± {s:.1f}"
                for k, (m, s) in metrics.items()
            )
            + " |"
        )
    lines += ["", "## The paper's findings at this scale", ""]
    lines += [claim_line(c) for c in found]
    lines += ["", "## Time per stage (summed over seeds and invocations)", "", "| stage | runs | minutes |", "|---|---|---|"]
    for kind, seconds in stage_minutes(options.timings).items():
        lines.append(f"| {kind} | {seconds[1]} | {seconds[0]:.1f} |")
    write_atomic(options.out / "report.md", ("\n".join(lines) + "\n").encode())
    write_json_atomic(
        options.out / "report.json",
        finite_or_null(  # strict JSON: a metric that does not apply (no predictor) or was not run is null, not NaN
            {
                "command": command,
                "scale": asdict(scale),
                "render": render,
                "precision": precision,
                "seeds": options.seeds,
                "summary": summary,
                "claims": found,
                "timings": options.timings,
                "reports": reports,
            },
            reason="null: the metric does not apply to this method (no predictor) or was not run",
        ),
        allow_nan=False,
    )
    summary_chart(
        summary,
        options.out / "report.png",
        f"3DIEBench-mini, {options.scale} scale, {options.seeds} seed{'s' if options.seeds > 1 else ''} (mean ± std)",
    )
    return options.out / "report.md"


def training_precision(reports: list[dict]) -> dict[str, list[str]]:
    """The trained runs by the precision they computed in (`precision.precision`, from each run's config.json)."""
    import torch

    from iebench.baselines.checkpoint import CONFIG_NAME
    from iebench.baselines.config import TrainConfig
    from iebench.baselines.precision import precision

    found: dict[str, list[str]] = {}
    for run in sorted({Path(r["run"]) for r in reports if not r.get("random_init") and (Path(r["run"]) / CONFIG_NAME).is_file()}):
        config = TrainConfig.from_json(json.loads((run / CONFIG_NAME).read_text()))
        found.setdefault(precision(config, torch.device("cuda" if config.device == "cuda" else "cpu")), []).append(run.name)
    return found


def stage_minutes(timings: dict[str, float]) -> dict[str, tuple[float, int]]:
    """Minutes and count per stage kind ('train sie' over all seeds), then the total."""
    out: dict[str, tuple[float, int]] = {}
    for name, seconds in timings.items():
        minutes, count = out.get(stage_kind(name), (0.0, 0))
        out[stage_kind(name)] = (minutes + seconds / 60, count + 1)
    out["total"] = (sum(timings.values()) / 60, len(timings))
    return out
