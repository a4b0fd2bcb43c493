"""`iebench eval`: the five SIE protocols on a frozen backbone, with eval.json, a table and plots.

Tasks: classification (linear probe on the invariant part, the equivariant part and the whole
representation), rotation and colour (the MLP head on two views, R^2 both ways), mrr (MRR and H@k,
train->train and val->val) and pre (prediction error of retrieved rotations, val->val and val->all).
MRR, H@k and PRE need a predictor: for methods without one they are reported as not applicable.
Asked for by name: translation (3DIEBench-T: the relative translation in the object frame and the base frame).
With an OOD set, every probe is also scored on it, beside the validation split (`ood` in eval.json).

An evaluation is a pure function of (weights, data, settings): every draw is seeded, and eval.json
carries a key of all three, so a cached result is reused only for the same inputs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from iebench.baselines import checkpoint
from iebench.baselines.config import TrainConfig
from iebench.baselines.distributed import wants_cuda
from iebench.baselines.errors import EvalError
from iebench.baselines.eval_report import EVAL_DIR, PARTS, RANDOM_INIT_DIR, REPORT_NAME, markdown_table, metrics_table, retrieval_table
from iebench.baselines.features import SplitFeatures, cached_extract, data_digest, data_stamp, extract, fingerprint
from iebench.baselines.methods import build_method
from iebench.baselines.methods.base import Method
from iebench.baselines.metrics import mrr_and_hits, prediction_error, retrieval_ranks
from iebench.baselines.probes import (
    CachedViews,
    LiveViews,
    ProbeSettings,
    Target,
    ViewSource,
    classification_scores,
    fit_classifier,
    fit_regressor,
    regression_scores,
)
from iebench.baselines.results import finite_or_null
from iebench.files import remove_temporary, sha256_file, write_atomic, write_json_atomic
from iebench.loaders.actions import ActionComputer, ActionError, action_size, check_action
from iebench.loaders.sources import SourceError, open_source
from iebench.presets import ROTATION_NAMES, TRANSLATION_NAMES, get_preset
from iebench.rotations import euler_to_quaternion, translation_in_object_frame

TASKS = ("classification", "rotation", "colour", "mrr", "pre")
# Tasks run only when asked for: translation needs data with translation latents (3DIEBench-T).
EXTRA_TASKS = ("translation",)
TRANSLATION_FRAMES = ("object", "base")
BN_MODES = ("eval", "train")
# The shape of a result: bump it when a result field is added or changes meaning, so that a cached eval.json made
# before is computed again rather than read with the field missing (the key covers inputs, not outputs).
RESULTS_VERSION = 3


@dataclass(frozen=True, kw_only=True)
class EvalSettings:
    """What to evaluate and how (SPEC 4's probe values by default)."""

    tasks: tuple[str, ...] = TASKS
    rotation_part: str = "all"
    colour_part: str = "all"
    bn_mode: str = "eval"  # eval: frozen BatchNorm, cached features; train: the released scripts' BatchNorm (SPEC 4a)
    random_init: bool = False
    device: str = "auto"
    probe: ProbeSettings = ProbeSettings()

    def key_fields(self) -> dict:
        """Every setting that changes the numbers (the device does not)."""
        return {k: v for k, v in asdict(self).items() if k != "device"} | {"tasks": list(self.tasks)}


@dataclass
class Subject:
    """What is evaluated: the method, its configuration, and what its weights are."""

    method: torch.nn.Module
    config: TrainConfig
    weights: str  # the checkpoint's sha256, or "random-init-<seed>"
    trained_on: tuple[str, ...] | None  # the latent names of the training data, where the checkpoint says
    imported: dict = field(default_factory=dict)


def parse_tasks(text: str) -> tuple[str, ...]:
    """Tasks from a comma-separated list, checked."""
    tasks = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in tasks if t not in TASKS + EXTRA_TASKS]
    if unknown or not tasks:
        raise EvalError(f"unknown task(s) {', '.join(unknown) or '(none)'}; tasks are {', '.join(TASKS + EXTRA_TASKS)}")
    return tasks


def _action_dim(config: TrainConfig, latent_names: tuple[str, ...]) -> int:
    return action_size(config.action_name, latent_names)


def load_subject(run: Path, random_init: bool, latent_names: tuple[str, ...], seed: int = 0) -> Subject:
    """The trained method of a run (or, for the floor, a freshly initialised one of the run's configuration)."""
    path = Path(run) / checkpoint.CHECKPOINT_NAME
    if random_init:
        saved = Path(run) / checkpoint.CONFIG_NAME
        if not saved.is_file():
            raise EvalError(
                f"{run} is not a run folder (no config.json): --random-init evaluates the untrained network of a run's configuration"
            )
        config = TrainConfig.from_json(json.loads(saved.read_text()))
        torch.manual_seed(seed)
        return Subject(build_method(config, _action_dim(config, latent_names)).eval(), config, f"random-init-{seed}", None)
    state = checkpoint.load(path)
    again = (
        "import a checkpoint whose weights are all finite numbers into a new folder"
        if state["extra"].get("imported")
        else "train again into a new --out (with a lower --lr if the training diverged)"
    )
    checkpoint.check_finite(state["model"]["method"], path, again)
    config = TrainConfig.from_json(state["config"])
    extra = state["extra"]
    # the data's own action size only where the checkpoint does not say (computed lazily: the data may lack the action's latents)
    method = build_method(config, int(extra["action_dim"] if "action_dim" in extra else _action_dim(config, latent_names)))
    try:
        method.load_state_dict(state["model"]["method"])
    except RuntimeError as error:
        raise EvalError(f"{path} does not fit method {config.method!r}: {str(error).splitlines()[0]}") from None
    imported = extra.get("imported", {})
    trained_on = extra.get("latent_names") or (get_preset("3diebench").latent_names if imported else None)
    return Subject(method.eval(), config, sha256_file(path), tuple(trained_on) if trained_on else None, imported)


def _part(dim: int, inv_dim: int, part: str) -> slice:
    return {"inv": slice(0, inv_dim), "equi": slice(inv_dim, dim), "all": slice(0, dim)}[part]


def colour_target(names: tuple[str, ...]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The colour task's target from two views' latents: (floor hue, spot hue) of view 2 minus view 1 (SPEC 4)."""
    floor, spot = names.index("floor_hue"), names.index("spot_hue")
    return lambda l1, l2: np.stack([l2[:, floor] - l1[:, floor], l2[:, spot] - l1[:, spot]], axis=1)


def translation_target(names: tuple[str, ...], frame: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The translation task's target from two views' latents (world positions t): t2 - t1 in the base (world) frame,
    R1^-1 (t2 - t1) in the object frame (view 1's object coordinates, R1 its rotation)."""
    if frame not in TRANSLATION_FRAMES:
        raise EvalError(f"unknown translation frame {frame!r}; frames are {', '.join(TRANSLATION_FRAMES)}")
    rotation = [names.index(n) for n in ROTATION_NAMES]
    position = [names.index(n) for n in TRANSLATION_NAMES]
    if frame == "base":
        return lambda l1, l2: l2[:, position] - l1[:, position]
    return lambda l1, l2: translation_in_object_frame(l1[:, rotation], l1[:, position], l2[:, position])


def check(settings: EvalSettings, latent_names: tuple[str, ...], subject: Subject | None) -> None:
    """Everything that would fail later, checked before any feature is computed."""
    if settings.bn_mode not in BN_MODES:
        raise EvalError(f"--bn-mode must be eval or train, got {settings.bn_mode!r}")
    for part in (settings.rotation_part, settings.colour_part):
        if part not in PARTS:
            raise EvalError(f"--part must be one of {', '.join(PARTS)}, got {part!r}")
    if subject is not None and subject.trained_on is not None and tuple(subject.trained_on) != tuple(latent_names):
        raise EvalError(
            f"the data's latents ({', '.join(latent_names)}) are not those the run was trained on "
            f"({', '.join(subject.trained_on)}): evaluate on data of the same preset"
        )
    try:
        if {"rotation", "mrr", "pre"} & set(settings.tasks):
            check_action("rotation", latent_names)
        if "colour" in settings.tasks:
            check_action("rotation-color", latent_names)
        if "translation" in settings.tasks:
            check_action("rotation-translation", latent_names)
    except ActionError as error:
        raise EvalError(f"the data set cannot be evaluated on these tasks: {error}") from None


def eval_dir(run: Path, settings: EvalSettings) -> Path:
    """Where `evaluate` writes: RUN/eval, or RUN/eval-random-init for the untrained floor."""
    return Path(run) / (RANDOM_INIT_DIR if settings.random_init else EVAL_DIR)


def evaluation_key(weights: str, data: Path, settings: EvalSettings, config: TrainConfig, ood: Path | None = None) -> str:
    """The key of a result: the weights' digest, the data's (and the OOD set's), every setting that changes the numbers,
    and the results' shape."""
    parts = (weights, data_digest(data), settings.key_fields(), config.image_size, config.backbone, config.stem, RESULTS_VERSION)
    return fingerprint(*parts) if ood is None else fingerprint(*parts, "ood", data_digest(ood))


def cached_evaluate(run: Path, data: Path, settings: EvalSettings, progress: bool = True, ood: Path | None = None) -> dict:
    """`evaluate`, unless RUN's eval.json was computed from the same weights, data and settings."""
    path = eval_dir(run, settings) / REPORT_NAME
    if path.is_file():
        cached = json.loads(path.read_text())
        weights_path = Path(run) / checkpoint.CHECKPOINT_NAME
        weights = (
            f"random-init-{settings.probe.seed}" if settings.random_init else sha256_file(weights_path) if weights_path.is_file() else None
        )
        config_path = Path(run) / checkpoint.CONFIG_NAME
        if weights and config_path.is_file():
            config = TrainConfig.from_json(json.loads(config_path.read_text()))
            if cached.get("key") == evaluation_key(weights, Path(data), settings, config, ood):
                return cached
    return evaluate(run, data, settings, progress=progress, ood=ood)


@dataclass
class OodSet:
    """An out-of-distribution set scored beside the validation split: every object of it, both of its splits, with its
    labels in the evaluated data's classes (`why_no_classification` says why not, where a class is not there)."""

    path: Path
    features: SplitFeatures
    why_no_classification: str | None = None


@dataclass
class _Context:
    """What every task of one evaluation reads."""

    subject: Subject
    data: Path
    train: SplitFeatures
    val: SplitFeatures
    settings: EvalSettings
    device: torch.device
    backbone_state: dict
    classes: int
    ood: OodSet | None = None
    ood_results: dict = field(default_factory=dict)  # what each task scored on the OOD set, filled as the tasks run

    def source(self, split: str, part: slice):
        """Where a probe reads representations: the cached features, or (BatchNorm in training mode) the live backbone."""
        if self.settings.bn_mode == "train" and split == "train":
            self.subject.method.backbone.load_state_dict(self.backbone_state)  # each released probe script starts from the checkpoint
            return LiveViews(self.subject.method.backbone, self.data, "train", self.subject.config.image_size, self.device, part)
        if self.settings.bn_mode == "train":  # validation after a live probe: eval mode, on the running statistics it moved
            features = extract(self.subject.method, self.data, "val", self.device, self.subject.config.image_size, progress=False)
            self.subject.method.backbone.load_state_dict(self.backbone_state)
            return CachedViews(features.representations, part)
        return CachedViews((self.train if split == "train" else self.val).representations, part)


def _classification(ctx: _Context, classes: int) -> dict:
    method, probe = ctx.subject.method, ctx.settings.probe
    out = {}
    for part in PARTS:
        cut = _part(method.dim, method.inv_dim, part)
        if cut.stop - cut.start == 0:
            continue
        head = fit_classifier(ctx.source("train", cut), ctx.train.labels, classes, probe, ctx.device)
        out[part] = classification_scores(head, ctx.source("val", cut), ctx.val.labels, classes, probe, ctx.device)
        if ctx.ood is not None and ctx.ood.why_no_classification is None:
            ood = ctx.ood.features
            scores = classification_scores(head, CachedViews(ood.representations, cut), ood.labels, classes, probe, ctx.device)
            ctx.ood_results.setdefault("classification", {})[part] = scores
    if ctx.ood is not None and ctx.ood.why_no_classification is not None:
        ctx.ood_results["classification"] = {"not_applicable": ctx.ood.why_no_classification}
    return out


def probe_regression(
    fit_on: ViewSource,
    score_on: Callable[[], ViewSource],
    fit_check: ViewSource | None,
    data: tuple[SplitFeatures, SplitFeatures],
    target: Target,
    probe: ProbeSettings,
    device: torch.device,
    also: dict[str, tuple[ViewSource, np.ndarray]] | None = None,
) -> dict:
    """A regression probe trained on `fit_on`, then scored on the views `score_on()` gives, and with `fit_check` (the
    training views, cached) scored on its own training pairs too (`train_fit`): an under-fit probe shows there.
    The same probe is scored on each of `also`'s (views, latents) too, under `also` by name (an OOD set).

    `score_on` is called after the fit: with BatchNorm in training mode, the validation features are extracted on
    the running statistics the probe's training moved, as the released scripts do.
    """
    train, val = data
    head = fit_regressor(fit_on, train.latents, target, probe, device)
    out = regression_scores(head, score_on(), val.latents, target, probe, device)
    if fit_check is not None:
        fit = regression_scores(head, fit_check, train.latents, target, probe, device, stream=6)
        out["train_fit"] = {k: fit[k] for k in ("r2_sie", "r2_per_output", "r2_undefined") if k in fit}
    if also:
        out["also"] = {
            name: _scores_only(regression_scores(head, views, latents, target, probe, device)) for name, (views, latents) in also.items()
        }
    return out


def _scores_only(scores: dict) -> dict:
    """A regression's scores without its target and prediction arrays."""
    return {k: v for k, v in scores.items() if k not in ("target", "prediction")}


def class_count(train: SplitFeatures, val: SplitFeatures) -> int:
    """The number of classes the classification probe predicts: every label either split holds."""
    return int(max(train.labels.max(), val.labels.max())) + 1


def _regression(ctx: _Context, part: str, target: Target) -> tuple[dict, dict | None]:
    """The probe's scores on the validation split, and on the OOD set (None without one)."""
    method = ctx.subject.method
    cut = _part(method.dim, method.inv_dim, part)
    fit_check = CachedViews(ctx.train.representations, cut) if ctx.settings.bn_mode == "eval" else None
    also = {"ood": (CachedViews(ctx.ood.features.representations, cut), ctx.ood.features.latents)} if ctx.ood is not None else None
    scores = probe_regression(
        ctx.source("train", cut),
        lambda: ctx.source("val", cut),
        fit_check,
        (ctx.train, ctx.val),
        target,
        ctx.settings.probe,
        ctx.device,
        also=also,
    )
    ood = scores.pop("also", {}).get("ood")
    return {"part": part, **scores}, None if ood is None else {"part": part, **ood}


@torch.no_grad()
def _predicted_and_embedded(method, features: SplitFeatures, action: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(objects, views, e) equivariant embeddings of every view, and those predicted from view 0 by the relative action."""
    reps = features.representations
    n, v, _ = reps.shape
    embeddings = torch.cat([method.equivariant_embedding(reps[i : i + 256].flatten(0, 1).to(device)).cpu() for i in range(0, n, 256)]).view(
        n, v, -1
    )
    actions = ActionComputer(action, features.latent_names)(np.repeat(features.latents[:, :1], v, axis=1), features.latents)
    source = embeddings[:, 0:1].expand(n, v, -1).reshape(n * v, -1)
    flat_actions = torch.from_numpy(actions.reshape(n * v, -1))
    predicted = torch.cat(
        [method.predict(source[i : i + 4096].to(device), flat_actions[i : i + 4096].to(device)).cpu() for i in range(0, n * v, 4096)]
    ).view(n, v, -1)
    return predicted, embeddings


def _quaternions(features: SplitFeatures) -> np.ndarray:
    rotation = [features.latent_names.index(c) for c in ("rot_x", "rot_y", "rot_z")]
    return euler_to_quaternion(features.latents[..., rotation]).reshape(-1, 4)


def retrieval(method: Method, train: SplitFeatures, val: SplitFeatures, action: str, device: torch.device) -> tuple[dict, dict, np.ndarray]:
    """The released scripts' retrieval protocols, each named by source -> gallery.

    MRR and H@k (source view 0 of each object, gallery the object's views): train->train and val->val.
    PRE (the rotation of the nearest embedding in the gallery): val->val and val->all (train + val).
    """
    (pred_t, emb_t), (pred_v, emb_v) = (_predicted_and_embedded(method, f, action, device) for f in (train, val))
    ranks = retrieval_ranks(pred_v, emb_v)
    mrr = {"train->train": mrr_and_hits(retrieval_ranks(pred_t, emb_t)), "val->val": mrr_and_hits(ranks)}
    queries, quats_t, quats_v = pred_v.flatten(0, 1), _quaternions(train), _quaternions(val)
    pre = {
        "val->val": prediction_error(queries, emb_v.flatten(0, 1), quats_v, quats_v),
        "val->all": prediction_error(
            queries, torch.cat([emb_t.flatten(0, 1), emb_v.flatten(0, 1)]), quats_v, np.concatenate([quats_t, quats_v])
        ),
    }
    return mrr, pre, ranks.numpy()


def _retrieval_results(ctx: _Context) -> tuple[dict, np.ndarray | None]:
    subject, tasks = ctx.subject, ctx.settings.tasks
    asked = [t for t in ("mrr", "pre") if t in tasks]
    why = (
        f"{subject.config.method} has no predictor"
        if not subject.method.has_predictor
        else "imported backbone only (no projector or predictor)"
        if subject.imported and "heads" not in subject.imported["parts"]
        else None
    )
    if why:
        return {t: {"not_applicable": why} for t in asked}, None
    mrr, pre, ranks = retrieval(subject.method, ctx.train, ctx.val, subject.config.action_name, ctx.device)
    return {t: {"mrr": mrr, "pre": pre}[t] for t in asked}, ranks


def run_tasks(ctx: _Context, latent_names: tuple[str, ...]) -> tuple[dict, dict]:
    """Every task asked for: the results, and the arrays the plots draw."""
    settings, results, plots = ctx.settings, {}, {}
    if "classification" in settings.tasks:
        results["classification"] = _classification(ctx, ctx.classes)
    targets = {
        "rotation": (settings.rotation_part, ActionComputer("rotation", latent_names)),
        "colour": (settings.colour_part, colour_target(latent_names) if "colour" in settings.tasks else None),
    }
    for task, (part, target) in targets.items():
        if task in settings.tasks:
            out, ood = _regression(ctx, part, target)
            plots[task] = (out.pop("target"), out.pop("prediction"))
            results[task] = out
            if ood is not None:
                ctx.ood_results[task] = ood
    if "translation" in settings.tasks:
        results["translation"] = _translation(ctx, latent_names)
    if {"mrr", "pre"} & set(settings.tasks):
        found, ranks = _retrieval_results(ctx)
        results |= found
        if ranks is not None:
            plots["ranks"] = ranks
        if ctx.ood is not None:
            ctx.ood_results |= _ood_retrieval(ctx, found)
    return results, plots


def _translation(ctx: _Context, latent_names: tuple[str, ...]) -> dict:
    """The relative translation probed in both frames (on the rotation probe's part of the representation)."""
    out = {}
    for frame in TRANSLATION_FRAMES:
        scores, ood = _regression(ctx, ctx.settings.rotation_part, translation_target(latent_names, frame))
        out[frame] = _scores_only(scores)
        if ood is not None:
            ctx.ood_results.setdefault("translation", {})[frame] = ood
    return out


def _ood_retrieval(ctx: _Context, found: dict) -> dict:
    """MRR and PRE with the OOD set in the validation split's place (OOD -> OOD, and OOD -> train + OOD for PRE)."""
    if any("not_applicable" in value for value in found.values()):
        return found
    mrr, pre, _ = retrieval(ctx.subject.method, ctx.train, ctx.ood.features, ctx.subject.config.action_name, ctx.device)
    return {t: {"mrr": {"val->val": mrr["val->val"]}, "pre": pre}[t] for t in found}


def evaluate(run: Path, data: Path, settings: EvalSettings = EvalSettings(), progress: bool = True, ood: Path | None = None) -> dict:
    """Evaluate a run (or an untrained backbone) on a data set; writes eval.json, eval.md and plots into RUN.

    With `ood` (a second data set of the same latents, e.g. rendered with `--preset rotation-ood`), every probe
    trained on the data's train split is also scored on every object of `ood` (both its splits): `ood` in eval.json.

    The steps, in order: sweep what a crashed evaluation left; open the data; load what is evaluated
    and check the settings against both; extract (or reuse) the features of both splits; run the
    tasks; write the report.
    """
    run, data = Path(run), Path(data)
    _start(run, data, settings)
    device = torch.device("cuda" if wants_cuda(settings.device) else "cpu")
    latent_names = check_splits(data)
    subject = load_subject(run, settings.random_init, latent_names, settings.probe.seed)
    check(settings, latent_names, subject)
    if ood is not None:
        check_ood(Path(ood), settings, latent_names)
    subject.method.to(device)
    start = time.perf_counter()
    train, val = _features(run, data, subject, device, progress)
    ood_set = None if ood is None else ood_features(run, data, Path(ood), subject, device, progress)
    extracted = time.perf_counter()
    backbone_state = {k: v.clone() for k, v in subject.method.backbone.state_dict().items()}
    classes = class_count(train, val)
    ctx = _Context(subject, data, train, val, settings, device, backbone_state, classes, ood_set)
    results, plots = run_tasks(ctx, latent_names)
    timing = {"features_seconds": extracted - start, "probes_seconds": time.perf_counter() - extracted}
    report = _report(run, data, settings, subject, train, val, results, timing)
    if ood_set is not None:
        report["key"] = evaluation_key(subject.weights, data, settings, subject.config, Path(ood))
        report["ood"] = _ood_report(ood_set, train, ctx.ood_results)
    _write_report(eval_dir(run, settings), report, plots, classes)
    return report


def _start(run: Path, data: Path, settings: EvalSettings) -> None:
    """Refuse what cannot be evaluated (no checkpoint, no data folder) and sweep a crashed evaluation's temporary files."""
    if not settings.random_init and not (run / checkpoint.CHECKPOINT_NAME).is_file():
        raise EvalError(f"{run} has no {checkpoint.CHECKPOINT_NAME} (train it first, or pass --random-init)")
    if not data.is_dir():
        raise EvalError(f"--data {data} is not a folder of shards (or of the original layout)")
    for folder in (run / EVAL_DIR, run / RANDOM_INIT_DIR, run / "features"):
        remove_temporary(folder)


def check_ood(ood: Path, settings: EvalSettings, latent_names: tuple[str, ...]) -> None:
    """An OOD set must be a data folder of the same latents, and its features cached (BatchNorm in eval mode)."""
    if settings.bn_mode != "eval":
        raise EvalError("--ood scores the probes on cached features: use it with --bn-mode eval")
    if not ood.is_dir():
        raise EvalError(f"--ood {ood} is not a folder of shards (or of the original layout)")
    try:
        names = open_source(ood, "val").latent_names
    except SourceError as error:
        raise EvalError(f"--ood {ood}: {error}") from None
    if tuple(names) != tuple(latent_names):
        raise EvalError(
            f"--ood {ood}: its latents ({', '.join(names)}) are not the evaluated data's ({', '.join(latent_names)}): "
            "render the OOD set with a preset of the same latents"
        )


def ood_features(run: Path, data: Path, ood: Path, subject: Subject, device: torch.device, progress: bool) -> OodSet:
    """Every object of the OOD set (its train and val splits together), its labels in the evaluated data's classes."""
    cache = None if subject.weights.startswith("random-init-") else run / "features"
    key, stamp = fingerprint(subject.weights, data_digest(ood), subject.config.image_size), data_stamp(ood)
    parts = [
        cached_extract(
            cache,
            key,
            split,
            stamp=stamp,
            method=subject.method,
            root=ood,
            device=device,
            image_size=subject.config.image_size,
            progress=progress,
        )
        for split in ("train", "val")
        if open_source(ood, split).objects
    ]
    if not parts:
        raise EvalError(f"--ood {ood} holds no objects")
    ood_classes, classes = open_source(ood, "val").class_ids, open_source(data, "val").class_ids
    unknown = sorted(set(ood_classes) - set(classes))
    labels = np.concatenate([p.labels for p in parts])
    why = f"classes {', '.join(unknown)} of the OOD set are not in {data}" if unknown else None
    if not unknown:
        labels = np.array([classes.index(ood_classes[label]) for label in labels], dtype=labels.dtype)
    features = SplitFeatures(
        [k for p in parts for k in p.keys],
        labels,
        np.concatenate([p.latents for p in parts]),
        torch.cat([p.representations for p in parts]),
        parts[0].latent_names,
    )
    return OodSet(ood, features, why)


def _ood_report(ood: OodSet, train: SplitFeatures, results: dict) -> dict:
    """eval.json's `ood`: the set, how many of its objects the probes (and the run) saw in training, and every task's scores."""
    return {
        "data": str(ood.path),
        "objects": len(ood.features.keys),
        "objects_in_train": len(set(ood.features.keys) & set(train.keys)),
        "views_per_object": int(ood.features.representations.shape[1]),
        "results": results,
    }


def check_splits(data: Path) -> tuple[str, ...]:
    """The data's latent names, once both splits are known to open and to hold objects (probes fit on train, score on val)."""
    sources = {}
    for split in ("train", "val"):
        try:
            sources[split] = open_source(data, split)
        except SourceError as error:  # neither shards nor the original layout, or a shard cut short
            raise EvalError(f"--data {data}: {error}") from None
    for split, source in sources.items():
        if not source.objects:
            raise EvalError(
                f"--data {data}: its {split} split holds no objects, and evaluation fits its probes on train and scores them "
                f"on val: {_repack_hint(data)}"
            )
    return sources["val"].latent_names


def _repack_hint(data: Path) -> str:
    """What to do about an empty split: the pack command that splits the same renders with a val fraction above 0."""
    try:
        info = json.loads((Path(data) / "_info.json").read_text())
        fraction, renders = info["split"]["val_fraction"], info["source"]["path"]
    except (OSError, ValueError, KeyError, TypeError):  # the original layout, or a set that does not say how it was packed
        return "split the objects again so that both splits hold some (`iebench pack RENDERS OUT --val-fraction 0.2`)"
    return (
        f"it was packed with --val-fraction {fraction}; pack the renders again into a new folder with a fraction above 0 "
        f"and below 1 (`iebench pack {renders} NEW --val-fraction 0.2`) and evaluate on that"
    )


def _features(run: Path, data: Path, subject: Subject, device: torch.device, progress: bool) -> tuple[SplitFeatures, SplitFeatures]:
    """Both splits' representations of every view: cached in RUN/features for trained weights, computed afresh for the floor."""
    config = subject.config
    cache = None if subject.weights.startswith("random-init-") else run / "features"  # an untrained floor is not kept
    features_key, stamp = fingerprint(subject.weights, data_digest(data), config.image_size), data_stamp(data)
    return tuple(
        cached_extract(
            cache,
            features_key,
            split,
            stamp=stamp,  # a shard changed since the features were cached (damaged, restored) is read again
            method=subject.method,
            root=data,
            device=device,
            image_size=config.image_size,
            progress=progress,
        )
        for split in ("train", "val")
    )


def _report(
    run: Path, data: Path, settings: EvalSettings, subject: Subject, train: SplitFeatures, val: SplitFeatures, results: dict, timing: dict
) -> dict:
    """eval.json's content: what was evaluated on what, how, its key, the results and the time taken."""
    return {
        "run": str(run),
        "data": str(data),
        "method": subject.config.method,
        "random_init": settings.random_init,
        "key": evaluation_key(subject.weights, data, settings, subject.config),
        "data_digest": data_digest(data),  # the data's identity wherever it lies: `report` notes runs evaluated on different data
        "weights": subject.weights,
        "imported": subject.imported or None,
        "settings": {**asdict(settings), "tasks": list(settings.tasks)},
        "objects": {"train": len(train.keys), "val": len(val.keys)},
        "views_per_object": int(val.representations.shape[1]),
        "results": finite_or_null(results),  # strict JSON: null where there is no number, the reason beside it
        "timing": timing,
    }


def _side_by_side(report: dict) -> str:
    """eval.md's table of every metric, validation beside OOD, where there is an OOD set or a task the run table lacks."""
    return "\n" + metrics_table(report) if "ood" in report or "translation" in report["results"] else ""


def _write_report(out_dir: Path, report: dict, plots: dict, classes: int) -> None:
    """The plots, eval.md, then eval.json: last, so that its presence says the evaluation is whole."""
    from iebench.baselines.plots import eval_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    eval_plots(out_dir, plots, report["results"].get("classification", {}).get("all"), classes)
    write_atomic(out_dir / "eval.md", (markdown_table([report]) + "\n" + retrieval_table(report) + _side_by_side(report)).encode())
    write_json_atomic(out_dir / REPORT_NAME, report, allow_nan=False)
