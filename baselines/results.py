"""Reading an evaluation report (`eval.json`): one value by its path, and the name of its run. Torch-free, so the
mini's verdicts and the CLI read results without loading torch."""

from __future__ import annotations

import math
from pathlib import Path


def not_applicable(results: dict, task: str) -> str | None:
    """Why `task` does not apply to the evaluated network (a method without predictor, ...), or None."""
    value = results.get(task)
    return value.get("not_applicable") if isinstance(value, dict) else None


# Why a number of a report is null, by its key: written beside it as `<key>_null` (strict JSON has no NaN).
NULL_REASONS = {
    "per_class": "null for a class with no object in val (no accuracy to measure)",
}
NOT_A_NUMBER = "not a finite number (NaN or infinity), so null: a probe that diverged gives this (try a lower probe --lr)"


def finite_or_null(value: object, reason: str = NOT_A_NUMBER) -> object:
    """`value` with every NaN or infinity replaced by None, and the reason beside each key that held one (`<key>_null`:
    `NULL_REASONS`'s for its key, else `reason`)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [finite_or_null(v, reason) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        out[key] = finite_or_null(item, reason)
        if _lost_numbers(item) and isinstance(key, str):
            out.setdefault(f"{key}_null", NULL_REASONS.get(key, reason))
    return out


def _lost_numbers(value: object) -> bool:
    """Whether a float directly in `value` (or in its list) is NaN or infinite; nested dicts say so themselves."""
    items = value if isinstance(value, list | tuple) else [value]
    return any(isinstance(v, float) and not math.isfinite(v) for v in items)


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
