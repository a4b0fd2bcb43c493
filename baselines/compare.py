"""Train every method with one preset on the same shards, evaluate each the same way, and put them side by side."""

from __future__ import annotations

from pathlib import Path

from iebench.baselines import checkpoint
from iebench.baselines.config import ConfigError, resolve
from iebench.baselines.eval_report import markdown_table
from iebench.baselines.evaluate import EvalSettings, cached_evaluate, check_splits
from iebench.baselines.plots import report_chart
from iebench.baselines.probes import ProbeSettings
from iebench.baselines.trainer import train
from iebench.files import write_atomic, write_json_atomic

TINY_NOTE = (
    "At the `tiny` scale (a few CPU minutes of training on a few dozen procedural objects) these numbers are a "
    "smoke signal that every method trains and evaluates end to end, not the paper's results."
)


def compare(
    data: Path,
    out: Path,
    methods: list[str],
    preset: str = "tiny",
    epochs: int | None = None,
    probe_epochs: int = 300,
    progress: bool = True,
) -> dict:
    """Train (or resume) each method, evaluate it and the untrained floor; write compare.md/.png/.json into OUT."""
    out = Path(out)
    check_splits(Path(data))  # a set that cannot be evaluated is refused before anything trains
    reports = []
    for method in methods:
        run = out / method
        config = resolve(preset, method=method, data=str(data), out=str(run), epochs=epochs)
        done = checkpoint.trained_epochs(run)
        if done < config.epochs:
            try:
                train(config, resume=done > 0, progress=progress)
            except ConfigError as error:  # the preset sets what compare has no flag for, the batch size among them
                raise ConfigError(f"{method} with the {preset} preset: {error}") from None
        reports.append(cached_evaluate(run, data, EvalSettings(probe=ProbeSettings(epochs=probe_epochs)), progress=progress))
    floor = EvalSettings(random_init=True, probe=ProbeSettings(epochs=probe_epochs))
    reports.append(cached_evaluate(out / methods[0], data, floor, progress=progress))
    note = TINY_NOTE if preset == "tiny" else ""
    table = f"# Methods compared ({preset} preset, data {Path(data).name})\n\n{note}\n\n{markdown_table(reports)}"
    write_atomic(out / "compare.md", table.encode())
    write_json_atomic(out / "compare.json", {"preset": preset, "data": str(data), "reports": reports})
    report_chart(reports, out / "compare.png")
    return {"table": table, "reports": reports}
