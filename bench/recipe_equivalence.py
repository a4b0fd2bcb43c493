"""Render recipes judged by training: the mini run on each recipe from the same latents, compared with the original's.

For each recipe (`iebench render --quality`), runs `iebench mini ROOT/<recipe> --scale S --seeds N --quality
<recipe>` (every stage resumes, so an interrupted benchmark continues), then compares every metric of every
method with the original recipe's: a recipe agrees when each mean is within twice the larger seed spread of the
original's. The latents depend only on the seed, the object and the view, so every recipe renders the same views.
Prints and writes ROOT/recipes.md: render minutes, the metrics that disagree, and the fastest recipe that agrees.
Rows with one seed (the supervised reference) have no spread to judge by and are listed apart, not judged.

    python bench/recipe_equivalence.py ROOT [--scale laptop] [--seeds 3] [--recipes original,default,fast,draft]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from iebench.orchestration.mini import MiniOptions, run_mini
from iebench.orchestration.verdicts import seed_values, summarise


def disagreements(reference: dict, other: dict, unjudged: frozenset[str] = frozenset()) -> list[str]:
    """'method: metric (a vs b)' for every mean of `other` further than twice the larger spread from `reference`'s."""
    found = []
    for method, metrics in reference.items():
        if method in unjudged or method not in other:
            continue
        for metric, (mean, std) in metrics.items():
            if metric not in other[method] or mean != mean:  # NaN: a metric the method lacks
                continue
            other_mean, other_std = other[method][metric]
            if other_mean != other_mean:
                found.append(f"{method}: {metric} (missing vs {mean:.3f})")
            elif abs(other_mean - mean) > 2 * max(std, other_std):
                found.append(f"{method}: {metric} ({other_mean:.3f} vs {mean:.3f})")
    return found


def single_seed_rows(values: dict) -> frozenset[str]:
    """The rows (`seed_values`) trained with one seed: no spread to judge them by."""
    return frozenset(method for method, metrics in values.items() if all(len(seeds) == 1 for seeds in metrics.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--scale", default="laptop")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--recipes", default="original,default,fast,draft", help="the first is the reference")
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds must be at least 2: agreement is judged against the spread over seeds")
    recipes = args.recipes.split(",")
    reports = {}
    for recipe in recipes:
        out = args.root / recipe
        run_mini(MiniOptions(out=out, scale=args.scale, seeds=args.seeds, quality=recipe), f"bench/recipe_equivalence.py ({recipe})")
        reports[recipe] = json.loads((out / "report.json").read_text())
    text = f"Mini at the {args.scale} scale, {args.seeds} seeds per recipe; reference: {recipes[0]}\n\n" + agreement_table(reports)
    print(text)
    (args.root / "recipes.md").write_text(text)


def agreement_table(reports: dict[str, dict]) -> str:
    """The markdown table of which recipes' mini reports (report.json, the first the reference) agree, and the fastest that does."""
    values = {recipe: seed_values(report["reports"]) for recipe, report in reports.items()}
    summaries = {recipe: summarise(v) for recipe, v in values.items()}
    minutes = {recipe: report["timings"].get("render", float("nan")) / 60 for recipe, report in reports.items()}
    reference = next(iter(reports))
    unjudged = single_seed_rows(values[reference])
    lines = ["| recipe | render minutes | agrees with the reference | metrics that disagree |", "|---|---|---|---|"]
    agreeing = []
    for recipe in reports:
        differ = disagreements(summaries[reference], summaries[recipe], unjudged)
        if not differ:
            agreeing.append(recipe)
        lines.append(f"| {recipe} | {minutes[recipe]:.1f} | {'yes' if not differ else 'no'} | {'; '.join(differ) or '-'} |")
    fastest = min(agreeing, key=minutes.get)
    listed = ", ".join(sorted(unjudged)) or "none"
    return "\n".join(lines) + f"\n\nNot judged (one seed, no spread): {listed}\n\nFastest recipe that agrees: **{fastest}**\n"


if __name__ == "__main__":
    main()
