"""An evaluation's report as tables: one row per run (markdown), each run's retrieval protocols, and reading an
`eval.json` back, checked against the checkpoint its run holds now."""

from __future__ import annotations

import json
from pathlib import Path

from iebench.baselines import checkpoint
from iebench.baselines.errors import EvalError
from iebench.baselines.results import not_applicable, result_value, run_label
from iebench.files import sha256_file

PARTS = ("inv", "equi", "all")
# A run's evaluations: RUN/eval/eval.json, and RUN/eval-random-init/eval.json for its untrained floor.
EVAL_DIR, RANDOM_INIT_DIR, REPORT_NAME = "eval", "eval-random-init", "eval.json"


def _cell(results: dict, task: str, *path: str) -> str:
    if not_applicable(results, task):
        return "n/a"
    value = result_value(results, task, *path)
    if value is None and str(path[0]).startswith("r2") and (results.get(task) or {}).get("r2_undefined"):
        return "undefined"  # the target does not vary: the note under the table says so
    return "-" if value is None else f"{value:.3f}"


def read_report(path: Path) -> dict:
    """An eval.json, checked: a report of `iebench eval`, and of the checkpoint its run holds now."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except ValueError as error:
        raise EvalError(f"{path} is not an evaluation report ({error}): run `iebench eval` again") from None
    if not isinstance(report, dict) or not {"run", "method", "random_init", "results"} <= report.keys():
        raise EvalError(f"{path} is not an evaluation report of `iebench eval`")
    run = path.parent.parent  # RUN/eval/eval.json
    weights = run / checkpoint.CHECKPOINT_NAME
    if "weights" in report and not report["random_init"] and weights.is_file() and sha256_file(weights) != report["weights"]:
        raise EvalError(f"{path} evaluates an earlier checkpoint of {run}, which has trained since: run `iebench eval {run}` again")
    return report


def markdown_table(reports: list[dict]) -> str:
    """One row per evaluated run: classification top-1 per part, R^2 both ways, MRR, H@1, H@5 and PRE (val->val)."""
    head = (
        "| run | method | top-1 inv | top-1 equi | top-1 all | rotation R^2 (SIE) | rotation R^2 (per output) "
        "| colour R^2 (SIE) | colour R^2 (per output) | MRR (val) | H@1 (val) | H@5 (val) | PRE (val->val) |"
    )
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for report in reports:
        r = report["results"]
        classification = r.get("classification", {})
        tops = [f"{100 * classification[p]['top1']:.1f}" if p in classification else "-" for p in PARTS]
        lines.append(
            f"| {run_label(report)} | {report['method'] if not report['random_init'] else 'random init'} | "
            + " | ".join(tops)
            + " | "
            + " | ".join(
                [
                    _cell(r, "rotation", "r2_sie"),
                    _cell(r, "rotation", "r2_per_output"),
                    _cell(r, "colour", "r2_sie"),
                    _cell(r, "colour", "r2_per_output"),
                    _cell(r, "mrr", "val->val", "mrr"),
                    _cell(r, "mrr", "val->val", "h@1"),
                    _cell(r, "mrr", "val->val", "h@5"),
                    _cell(r, "pre", "val->val"),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n" + _not_applicable_notes(reports) + _caveats(reports)


def _caveats(reports: list[dict]) -> str:
    """Lines under the table for what its numbers do not show: an R^2 left undefined, runs evaluated on different data."""
    notes = [
        f"- {task} R^2 undefined for {run_label(report)}: {report['results'][task]['r2_undefined']}"
        for report in reports
        for task in ("rotation", "colour")
        if isinstance(report["results"].get(task), dict) and report["results"][task].get("r2_undefined")
    ]
    for report in reports:  # numbers that came out NaN or infinite (a probe that diverged): null in eval.json, `-` above
        for task, value in report["results"].items():
            nulls = [k for k in value if k.endswith("_null") and k != "per_class_null"] if isinstance(value, dict) else []
            if nulls:
                names = ", ".join(k.removesuffix("_null") for k in nulls)
                notes.append(f"- {task} for {run_label(report)}, {names}: {value[nulls[0]]}")
    data: dict[str, list[dict]] = {}
    for report in reports:  # reports written before eval.json recorded its data's digest are told apart by path
        data.setdefault(report.get("data_digest") or f"path {report.get('data')}", []).append(report)
    if len(data) > 1:
        groups = "; ".join(
            f"{', '.join(run_label(r) for r in group)} on {group[0].get('data')} ({key[:12] if group[0].get('data_digest') else 'no digest recorded'})"
            for key, group in data.items()
        )
        notes.append(f"- these runs were evaluated on different data, so their numbers do not compare: {groups}")
    return "" if not notes else "\n" + "\n".join(notes) + "\n"


def _not_applicable_notes(reports: list[dict]) -> str:
    """A line under the table for each reason a cell is n/a (no predictor, a bare imported backbone, ...) and its runs."""
    runs: dict[tuple[str, str], list[str]] = {}
    for report in reports:
        why: dict[str, list[str]] = {}
        for task in report["results"]:
            reason = not_applicable(report["results"], task)
            if reason:
                why.setdefault(reason, []).append(task.upper() if task in ("mrr", "pre") else task)
        for reason, tasks in why.items():
            runs.setdefault((", ".join(tasks), reason), []).append(run_label(report))
    notes = [f"- n/a for {', '.join(labels)} ({tasks}): {reason}" for (tasks, reason), labels in runs.items()]
    return "" if not notes else "\n" + "\n".join(notes) + "\n"


def retrieval_table(report: dict) -> str:
    """Every retrieval protocol of one report, named as the released scripts name them (empty without any)."""
    r = report["results"]
    rows = [
        f"| MRR / H@1 / H@2 / H@5 / H@10 | {mode} | "
        + " / ".join(_cell(r, "mrr", mode, m) for m in ("mrr", "h@1", "h@2", "h@5", "h@10"))
        + " |"
        for mode in ("train->train", "val->val")
        if isinstance(r.get("mrr", {}).get(mode), dict)
    ]
    rows += [f"| PRE | {mode} | {_cell(r, 'pre', mode)} |" for mode in ("val->val", "val->all") if mode in r.get("pre", {})]
    return "" if not rows else "\n".join(["| retrieval | source -> gallery | value |", "|---|---|---|", *rows]) + "\n"


# Every number of one report, by task: (task, label, path in the task's results); top-1 is shown in per cent.
_METRIC_ROWS = (
    *(("classification", f"top-1 {p} (%)", (p, "top1")) for p in PARTS),
    ("rotation", "rotation R^2 (SIE)", ("r2_sie",)),
    ("rotation", "rotation R^2 (per output)", ("r2_per_output",)),
    ("colour", "colour R^2 (SIE)", ("r2_sie",)),
    ("colour", "colour R^2 (per output)", ("r2_per_output",)),
    ("translation", "translation R^2, object frame (SIE)", ("object", "r2_sie")),
    ("translation", "translation R^2, object frame (per output)", ("object", "r2_per_output")),
    ("translation", "translation R^2, base frame (SIE)", ("base", "r2_sie")),
    ("translation", "translation R^2, base frame (per output)", ("base", "r2_per_output")),
    ("mrr", "MRR (val->val)", ("val->val", "mrr")),
    ("mrr", "H@1 (val->val)", ("val->val", "h@1")),
    ("mrr", "H@5 (val->val)", ("val->val", "h@5")),
    ("pre", "PRE (val->val)", ("val->val",)),
    ("pre", "PRE (val->all)", ("val->all",)),
)


def _metric_cell(results: dict, task: str, path: tuple[str, ...], label: str) -> str:
    if not_applicable(results, task):
        return "n/a"
    value = result_value(results, task, *path)
    return "-" if value is None else f"{100 * value:.1f}" if label.startswith("top-1") else f"{value:.3f}"


def metrics_table(report: dict) -> str:
    """Every task's numbers of one report, one metric a row: on the validation split and, where the report has an
    OOD set (`ood`), on it beside (in the OOD column, "val" names the OOD set: MRR OOD->OOD, PRE OOD->train+OOD)."""
    results, ood = report["results"], report.get("ood")
    head = "| metric | val |" + (" OOD |" if ood else "")
    lines = [head, "|---|---|" + ("---|" if ood else "")]
    for task, label, path in _METRIC_ROWS:
        if task not in results:
            continue
        row = f"| {label} | {_metric_cell(results, task, path, label)} |"
        if ood:
            row += f" {_metric_cell(ood['results'], task, path, label)} |"
        lines.append(row)
    note = (
        f"\nOOD: {ood['data']}, {ood['objects']} objects (both of its splits), {ood['objects_in_train']} of them in the training split.\n"
        if ood
        else ""
    )
    return "\n".join(lines) + "\n" + note
