"""Train every method with one preset on the same shards, evaluate each the same way, and put them side by side."""

from __future__ import annotations

import json
from pathlib import Path

from iebench.baselines import checkpoint
from iebench.baselines.config import resolve
from iebench.baselines.evaluate import EvalSettings, evaluate, markdown_table
from iebench.baselines.plots import report_chart
from iebench.baselines.probes import ProbeSettings
from iebench.baselines.trainer import train

from iebench.files import write_atomic, write_json_atomic

TINY_NOTE = ("At the `tiny` scale (a few CPU minutes of training on a few dozen procedural objects) these numbers are a "
             "smoke signal that every method trains and evaluates end to end, not the paper's results.")


def _trained_epochs(run: Path) -> int:
    path = run / checkpoint.CHECKPOINT_NAME
    return checkpoint.load(path)["epoch"] + 1 if path.is_file() else 0


def compare(data: Path, out: Path, methods: list[str], preset: str = "tiny", epochs: int | None = None,
            probe_epochs: int = 300, progress: bool = True) -> dict:
    """Train (or resume) each method, evaluate it and the untrained floor; write compare.md/.png/.json into OUT."""
    out = Path(out)
    reports = []
    for method in methods:
        run = out / method
        config = resolve(preset, method=method, data=str(data), out=str(run), epochs=epochs)
        done = _trained_epochs(run)
        if done < config.epochs:
            train(config, resume=done > 0, progress=progress)
        evaluation = run / "eval" / "eval.json"
        if evaluation.is_file() and evaluation.stat().st_mtime > (run / checkpoint.CHECKPOINT_NAME).stat().st_mtime:
            reports.append(json.loads(evaluation.read_text()))
        else:
            reports.append(evaluate(run, data, EvalSettings(probe=ProbeSettings(epochs=probe_epochs)), progress=progress))
    floor = out / methods[0] / "eval-random-init" / "eval.json"
    reports.append(json.loads(floor.read_text()) if floor.is_file() else
                   evaluate(out / methods[0], data, EvalSettings(random_init=True, probe=ProbeSettings(epochs=probe_epochs)), progress=progress))
    note = TINY_NOTE if preset == "tiny" else ""
    table = f"# Methods compared ({preset} preset, data {Path(data).name})\n\n{note}\n\n{markdown_table(reports)}"
    write_atomic(out / "compare.md", table.encode())
    write_json_atomic(out / "compare.json", {"preset": preset, "data": str(data), "reports": reports})
    report_chart(reports, out / "compare.png")
    return {"table": table, "reports": reports}
