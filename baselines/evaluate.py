"""`iebench eval`: the five SIE protocols on a frozen backbone, with eval.json, a table and plots.

Tasks: classification (linear probe on the invariant part, the equivariant part and the whole
representation), rotation and colour (the MLP head on two views, R^2 both ways), mrr (MRR and H@k)
and pre (prediction error of retrieved rotations). MRR, H@k and PRE need a predictor: for methods
without one they are reported as not applicable.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from iebench.baselines import checkpoint
from iebench.baselines.config import TrainConfig
from iebench.baselines.features import SplitFeatures, cached_extract, fingerprint
from iebench.baselines.methods import build_method, default_action
from iebench.baselines.metrics import mrr_and_hits, prediction_error, retrieval_ranks
from iebench.baselines.probes import (
    ProbeSettings,
    classification_probe,
    regression_probe,
)
from iebench.loaders.actions import (
    ActionComputer,
    ActionError,
    action_size,
    check_action,
)
from iebench.loaders.sources import open_source

from iebench.files import write_atomic, write_json_atomic
from iebench.rotations import euler_to_quaternion

TASKS = ("classification", "rotation", "colour", "mrr", "pre")
PARTS = ("inv", "equi", "all")


class EvalError(ValueError):
    """An evaluation that cannot run; the message says why, before any work."""


@dataclass(frozen=True)
class EvalSettings:
    """What to evaluate and how (SPEC 4's probe values by default)."""

    tasks: tuple[str, ...] = TASKS
    rotation_part: str = "all"
    colour_part: str = "all"
    bn_mode: str = "eval"
    random_init: bool = False
    device: str = "auto"
    probe: ProbeSettings = ProbeSettings()


def parse_tasks(text: str) -> tuple[str, ...]:
    """Tasks from a comma-separated list, checked."""
    tasks = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise EvalError(f"unknown task(s) {', '.join(unknown) or '(none)'}; tasks are {', '.join(TASKS)}")
    return tasks


def load_method(run: Path, random_init: bool, latent_names: tuple[str, ...], seed: int = 0) -> tuple[torch.nn.Module, TrainConfig]:
    """The trained method of a run (or, for the floor, a freshly initialised one of the run's configuration)."""
    path = Path(run) / checkpoint.CHECKPOINT_NAME
    if random_init:
        saved = Path(run) / "config.json"
        config = TrainConfig.from_json(json.loads(saved.read_text())) if saved.is_file() else TrainConfig()
        torch.manual_seed(seed)
        return build_method(config, action_size(config.action or default_action(config.method), latent_names)).eval(), config
    state = checkpoint.load(path)
    config = TrainConfig.from_json(state["config"])
    action_dim = state["extra"].get("action_dim", action_size(config.action or default_action(config.method), latent_names))
    method = build_method(config, int(action_dim))
    try:
        method.load_state_dict(state["model"]["method"])
    except RuntimeError as error:
        raise EvalError(f"{path} does not fit method {config.method!r}: {str(error).splitlines()[0]}") from None
    return method.eval(), config


def _part(reps: torch.Tensor, part: str, method) -> torch.Tensor:
    return {"inv": reps[..., : method.inv_dim], "equi": reps[..., method.inv_dim :], "all": reps}[part]


def _colour_target(names: tuple[str, ...]):
    floor, spot = names.index("floor_hue"), names.index("spot_hue")
    return lambda l1, l2: np.stack([l2[:, floor] - l1[:, floor], l2[:, spot] - l1[:, spot]], axis=1)


@torch.no_grad()
def retrieval(method, features: SplitFeatures, action: str, device: torch.device) -> tuple[dict, dict, np.ndarray]:
    """MRR/H@k (source view 0, gallery the object's views) and PRE (gallery the whole split)."""
    reps = features.representations
    n, v, _ = reps.shape
    embeddings = torch.cat([method.equivariant_embedding(reps[i : i + 256].flatten(0, 1).to(device)).cpu()
                            for i in range(0, n, 256)]).view(n, v, -1)
    compute = ActionComputer(action, features.latent_names)
    actions = compute(np.repeat(features.latents[:, :1], v, axis=1), features.latents)  # view 0 -> view j
    source = embeddings[:, 0:1].expand(n, v, -1).reshape(n * v, -1)
    predicted = torch.cat([method.predict(source[i : i + 4096].to(device), torch.from_numpy(actions.reshape(n * v, -1)[i : i + 4096]).to(device)).cpu()
                           for i in range(0, n * v, 4096)]).view(n, v, -1)
    ranks = retrieval_ranks(predicted, embeddings)
    rotation = [features.latent_names.index(c) for c in ("rot_x", "rot_y", "rot_z")]
    quats = euler_to_quaternion(features.latents[..., rotation]).reshape(n * v, 4)
    pre = prediction_error(predicted.reshape(n * v, -1), embeddings.reshape(n * v, -1), quats, quats)
    return mrr_and_hits(ranks), {"pre": pre}, ranks.numpy()


def check(settings: EvalSettings, latent_names: tuple[str, ...], method) -> None:
    """Everything that would fail later, checked before any feature is computed."""
    if settings.bn_mode not in ("eval", "train"):
        raise EvalError(f"--bn-mode must be eval or train, got {settings.bn_mode!r}")
    for part in (settings.rotation_part, settings.colour_part):
        if part not in PARTS:
            raise EvalError(f"--part must be one of {', '.join(PARTS)}, got {part!r}")
    try:
        if "rotation" in settings.tasks or "mrr" in settings.tasks or "pre" in settings.tasks:
            check_action("rotation", latent_names)
        if "colour" in settings.tasks:
            check_action("rotation-color", latent_names)
    except ActionError as error:
        raise EvalError(f"the data set cannot be evaluated on these tasks: {error}") from None


def eval_dir(run: Path, settings: EvalSettings) -> Path:
    """Where `evaluate` writes: RUN/eval, or RUN/eval-random-init for the untrained floor."""
    return Path(run) / ("eval-random-init" if settings.random_init else "eval")


def cached_evaluate(run: Path, data: Path, settings: EvalSettings, progress: bool = True) -> dict:
    """`evaluate`, unless RUN already holds an evaluation newer than its checkpoint."""
    path = eval_dir(run, settings) / "eval.json"
    if path.is_file() and path.stat().st_mtime > (Path(run) / checkpoint.CHECKPOINT_NAME).stat().st_mtime:
        return json.loads(path.read_text())
    return evaluate(run, data, settings, progress=progress)


def evaluate(run: Path, data: Path, settings: EvalSettings = EvalSettings(), progress: bool = True) -> dict:
    """Evaluate a run (or an untrained backbone) on a data set; writes eval.json, eval.md and plots into RUN."""
    run, data = Path(run), Path(data)
    if not data.is_dir():
        raise EvalError(f"--data {data} is not a folder of shards (or of the original layout)")
    use_cuda = torch.cuda.is_available() if settings.device == "auto" else settings.device == "cuda"
    device = torch.device("cuda" if use_cuda else "cpu")
    try:
        latent_names = open_source(data, "val").latent_names
    except Exception as error:  # neither shards nor the original layout
        raise EvalError(f"--data {data}: {error}") from None
    method, config = load_method(run, settings.random_init, latent_names, settings.probe.seed)
    method = method.to(device)
    check(settings, latent_names, method)
    ckpt = run / checkpoint.CHECKPOINT_NAME
    weights = "random" if settings.random_init else f"{ckpt.stat().st_mtime_ns}-{ckpt.stat().st_size}"
    key = fingerprint(weights, data.resolve(), config.image_size, settings.probe.seed)
    cache = None if settings.random_init else run / "features"
    start = time.perf_counter()
    features = {split: cached_extract(cache, key, split, method=method, root=data, device=device, image_size=config.image_size,
                                      bn_mode=settings.bn_mode, progress=progress) for split in ("train", "val")}
    extracted = time.perf_counter()
    train, val = features["train"], features["val"]
    classes = int(max(train.labels.max(), val.labels.max())) + 1
    results: dict = {}
    if "classification" in settings.tasks:
        results["classification"] = {part: classification_probe(_part(train.representations, part, method), train.labels,
                                                                 _part(val.representations, part, method), val.labels,
                                                                 classes, settings.probe, device) for part in PARTS
                                     if _part(train.representations, part, method).shape[-1] > 0}
    rotation = ActionComputer("rotation", latent_names)
    plots: dict = {}
    for task, part, target in (("rotation", settings.rotation_part, rotation),
                               ("colour", settings.colour_part, _colour_target(latent_names) if "colour" in settings.tasks else None)):
        if task in settings.tasks:
            out = regression_probe(_part(train.representations, part, method), train.latents, _part(val.representations, part, method),
                                   val.latents, target, settings.probe, device)
            plots[task] = (out.pop("target"), out.pop("prediction"))
            results[task] = {"part": part, **out}
    if {"mrr", "pre"} & set(settings.tasks):
        if not method.has_predictor:
            for task in ("mrr", "pre"):
                if task in settings.tasks:
                    results[task] = {"not_applicable": f"{config.method} has no predictor"}
        else:
            action = config.action or default_action(config.method)
            mrr, pre, ranks = retrieval(method, val, action, device)
            plots["ranks"] = ranks
            if "mrr" in settings.tasks:
                results["mrr"] = mrr
            if "pre" in settings.tasks:
                results["pre"] = pre
    done = time.perf_counter()
    report = {
        "run": str(run), "data": str(data), "method": config.method, "random_init": settings.random_init,
        "settings": {**asdict(settings), "tasks": list(settings.tasks)},
        "objects": {"train": len(train.keys), "val": len(val.keys)}, "views_per_object": int(val.representations.shape[1]),
        "results": results,
        "timing": {"features_seconds": extracted - start, "probes_seconds": done - extracted},
    }
    out_dir = eval_dir(run, settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "eval.json", report)
    write_atomic(out_dir / "eval.md", markdown_table([report]).encode())
    from iebench.baselines.plots import eval_plots

    eval_plots(out_dir, plots, results.get("classification", {}).get("all"), classes)
    return report


def _cell(results: dict, task: str, field: str) -> str:
    value = results.get(task, {})
    if "not_applicable" in value:
        return "n/a"
    number = value.get(field)
    return "-" if number is None else f"{100 * number:.1f}" if field.startswith("top") else f"{number:.3f}"


def markdown_table(reports: list[dict]) -> str:
    """One row per evaluated run: classification top-1 per part, R^2 both ways, MRR, H@1, H@5, PRE."""
    head = ("| run | method | top-1 inv | top-1 equi | top-1 all | rotation R^2 (SIE) | rotation R^2 (per output) "
            "| colour R^2 (SIE) | colour R^2 (per output) | MRR | H@1 | H@5 | PRE |")
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for report in reports:
        r = report["results"]
        classification = r.get("classification", {})
        tops = [f"{100 * classification[p]['top1']:.1f}" if p in classification else "-" for p in PARTS]
        name = Path(report["run"]).name + (" (untrained)" if report["random_init"] else "")
        lines.append(f"| {name} | {report['method'] if not report['random_init'] else 'random init'} | " + " | ".join(tops) + " | "
                     + " | ".join([_cell(r, "rotation", "r2_sie"), _cell(r, "rotation", "r2_per_output"), _cell(r, "colour", "r2_sie"),
                                   _cell(r, "colour", "r2_per_output"), _cell(r, "mrr", "mrr"), _cell(r, "mrr", "h@1"),
                                   _cell(r, "mrr", "h@5"), _cell(r, "pre", "pre")]) + " |")
    return "\n".join(lines) + "\n"
