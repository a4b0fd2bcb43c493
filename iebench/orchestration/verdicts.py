"""The mini's verdicts, pure: per-seed values of each metric, their summary, and the paper's claims judged by them.

A claim holds only when its margin beats twice its spread over seeds; for (a) and (c) the winner must also beat the
pixels row. Claim (b) is about which training discards less colour: colour is in the pixels themselves, and an
untrained backbone keeps it too, so neither row is a floor for it (they stay in the table as context).
"""

from __future__ import annotations

import numpy as np

from iebench.baselines.results import result_value

SUPERVISED = "supervised-rotation"
REFERENCES = ("random init", "pixels", SUPERVISED)  # rows that are not self-supervised methods


def _metric(*path: str | int, scale: float = 1.0):
    """A reader of one number of a report's results (NaN where it is not there: shown as n/a)."""

    def read(results: dict) -> float:
        value = result_value(results, *path)
        return np.nan if value is None else scale * value

    return read


METRICS = {
    "top-1 (all, %)": _metric("classification", "all", "top1", scale=100),
    "rotation R^2 (SIE)": _metric("rotation", "r2_sie"),
    "rotation R^2 (per output)": _metric("rotation", "r2_per_output"),
    "rotation probe's fit (per output)": _metric("rotation", "train_fit", "r2_per_output"),
    "colour R^2 (SIE)": _metric("colour", "r2_sie"),
    # the colour target's two columns (`colour_target`): where a representation keeps colour, or loses it
    "floor hue R^2": _metric("colour", "r2_by_output", 0),
    "spot hue R^2": _metric("colour", "r2_by_output", 1),
    "MRR": _metric("mrr", "val->val", "mrr"),
    "H@1": _metric("mrr", "val->val", "h@1"),
}


def seed_values(reports: list[dict]) -> dict[str, dict[str, dict[int, float]]]:
    """Per method (the untrained floor as 'random init'), per metric: each seed's value."""
    values: dict[str, dict[str, dict[int, float]]] = {}
    for report in reports:
        name = "random init" if report["random_init"] else report["method"]
        seed = report["settings"]["probe"]["seed"]
        for metric, read in METRICS.items():
            values.setdefault(name, {}).setdefault(metric, {})[seed] = float(read(report["results"]))
    return values


def _std(values: list[float]) -> float:
    """The sample standard deviation (0 for a single value)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarise(values: dict[str, dict[str, dict[int, float]]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per method and metric: mean and sample standard deviation over seeds."""
    return {
        name: {m: (float(np.mean(list(v.values()))), _std(list(v.values()))) for m, v in metrics.items()}
        for name, metrics in values.items()
    }


def verdict(margin: float, spread: float, seeds: int) -> str:
    """'holds' when the margin exceeds twice the spread over seeds, 'fails' when the order is reversed by as much,
    'inconclusive' otherwise, and always with one seed (no spread to judge by)."""
    if seeds < 2:
        return "inconclusive"
    if margin > 2 * spread:
        return "holds"
    return "fails" if margin < -2 * spread else "inconclusive"


def seedwise_margin(values: dict, metric: str, better: str, worse: str) -> dict:
    """`better` minus `worse` seed by seed: the margin (mean), its spread (sample standard deviation over seeds) and the verdict.

    Seed by seed, because every method of a seed shares that seed's probe draws and validation pairs (and its
    data order): what a seed makes easier or harder for one method it makes so for all, and the difference's own
    spread is the noise a margin has to beat.
    """
    a, b = values[better][metric], values[worse][metric]
    seeds = sorted(set(a) & set(b))
    per_seed = [a[s] - b[s] for s in seeds]
    margin, spread = float(np.mean(per_seed)), _std(per_seed)
    return {"versus": worse, "margin": margin, "spread": spread, "per_seed": per_seed, "verdict": verdict(margin, spread, len(seeds))}


def claims(values: dict) -> list[dict]:
    """The paper's qualitative findings: the verdict on each, its margin and the spread of the margin over seeds.

    Where a claim compares one method with several, each comparison must hold, and the report shows the closest.
    A winner that does not beat the pixels row (where there is one) leaves (a) or (c) inconclusive; (b) has no
    floor (`pixels_floor=False`): colour is in the pixels themselves, and an untrained backbone keeps it too.
    """
    out, summary = [], summarise(values)

    def claim(text: str, metric: str, pairs: list[tuple[str, str]], pixels_floor: bool = True) -> None:
        found = [seedwise_margin(values, metric, better, worse) for better, worse in pairs]
        closest = min(found, key=lambda f: f["margin"] - 2 * f["spread"])
        verdicts = {f["verdict"] for f in found}
        closest["verdict"] = "holds" if verdicts == {"holds"} else "fails" if "fails" in verdicts else "inconclusive"
        better, worse = pairs[found.index(closest)]
        winner = better if closest["margin"] > 0 else worse
        pixels = summary.get("pixels", {}).get(metric, (np.nan,))[0]
        if pixels_floor and closest["verdict"] != "inconclusive" and winner != "random init" and summary[winner][metric][0] <= pixels:
            closest["verdict"] = "inconclusive"
            text += " (the winner does not beat the pixels row)"
        out.append({"claim": text, "metric": metric, "better": better, **closest})

    invariant = [m for m in ("vicreg", "simclr") if m in values]
    if "sie" in values and invariant:
        claim(
            "(a) SIE's rotation R^2 (per output) is above the invariant methods'",
            "rotation R^2 (per output)",
            [("sie", m) for m in invariant],
        )
    if "sie" in values and "sie-rotcolor" in values:
        claim(
            "(b) SIE rotation + colour has a higher colour R^2 than SIE",
            "colour R^2 (SIE)",
            [("sie-rotcolor", "sie")],
            pixels_floor=False,
        )
    trained = [m for m in values if m not in REFERENCES]
    if "random init" in values and trained:
        claim(
            "(c) every trained method beats the untrained backbone on classification",
            "top-1 (all, %)",
            [(m, "random init") for m in trained],
        )
    return out


def claim_line(found: dict) -> str:
    """'- (a) ...: **holds** (sie - vicreg: margin +0.200 = mean of +0.190, +0.210; spread over seeds 0.014)'."""
    seeds = ", ".join(f"{d:+.3f}" for d in found["per_seed"])
    return (
        f"- {found['claim']}: **{found['verdict']}** ({found['better']} - {found['versus']}: margin {found['margin']:+.3f}"
        f" = mean of {seeds}; spread over seeds {found['spread']:.3f})"
    )
