"""Reading an evaluation report (`eval.json`): one value by its path, and the name of its run. Torch-free, so the
mini's verdicts and the CLI read results without loading torch."""

from __future__ import annotations

from pathlib import Path


def not_applicable(results: dict, task: str) -> str | None:
    """Why `task` does not apply to the evaluated network (a method without predictor, ...), or None."""
    value = results.get(task)
    return value.get("not_applicable") if isinstance(value, dict) else None


def result_value(results: dict, task: str, *path: str | int) -> float | None:
    """The number at `results[task][path...]`, or None where the task was not run, does not apply, or lacks it."""
    value: object = results.get(task)
    for step in path:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and isinstance(step, int) and step < len(value):
            value = value[step]
        else:
            return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_label(report: dict) -> str:
    """The run's folder name, marked when the report is of its untrained network."""
    return Path(report["run"]).name + (" (untrained)" if report["random_init"] else "")
