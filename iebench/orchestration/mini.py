"""3DIEBench-mini: objects -> render -> shards -> train every method and seed -> evaluate -> report.

An orchestration layer like the CLI: it imports the torch and Blender parts inside the stages that need them. Every
stage resumes: objects, renders and shards are skipped or completed, runs continue from their
checkpoints, and finished evaluations are reused. The data can be made on one machine (`data_only`)
and trained on another: an OUT that holds finished shards and no renders skips the objects and render
stages, so the training machine needs neither Blender nor the renders.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from iebench.baselines.methods import mini_methods
from iebench.dataset import format as fmt
from iebench.files import write_atomic, write_json_atomic
from iebench.orchestration.mini_report import stage_kind, write_report
from iebench.orchestration.verdicts import SUPERVISED

if TYPE_CHECKING:
    from iebench.baselines.config import TrainConfig
    from iebench.baselines.probes import ProbeSettings
    from iebench.render.settings import RenderSettings


@dataclass(frozen=True, kw_only=True)
class MiniScale:
    """The knobs of one scale, recorded in the report."""

    classes: int
    per_class: int
    views: int
    resolution: int
    samples: int
    epochs: int
    batch_size: int
    image_size: int
    probe_epochs: int
    preset: str = "3diebench"  # the render preset: the rotation task at this scale
    probe_draws: int = 1  # pairs (views) per object in each probe epoch
    val_pairs: int = 4  # seeded validation pairs per object: more when objects are few, so the R^2 is not the noise
    projector: tuple[int, ...] = (256, 256, 256)
    backbone: str = "resnet18-sie"
    device: str = "cpu"
    cpu_bf16: bool = False  # the backbone in bfloat16 where the CPU does it in hardware (AMX or AVX512-BF16); float32 elsewhere
    supervised: bool = True  # train the supervised reference (seed 0): the ceiling of the rotation probe

    def probe(self, seed: int) -> ProbeSettings:
        """The probes' settings at this scale for a seed."""
        from iebench.baselines.probes import ProbeSettings

        return ProbeSettings(epochs=self.probe_epochs, seed=seed, draws_per_object=self.probe_draws, val_pairs_per_object=self.val_pairs)


SCALES = {
    "ci": MiniScale(
        classes=3, per_class=4, views=4, resolution=32, samples=2, epochs=2, batch_size=4, image_size=32, probe_epochs=20, supervised=False
    ),
    # Measured here: 6,400 views at 48 px render in about 2 minutes, but ResNet-18 with the small stem at 48 px
    # costs 2.9 s a step (batch 32) against 0.54 s with SIE's own stem at 64 px: hence 64 px, the usual stem.
    # Rotation about the vertical axis only: with all three axes no method (nor a supervised network) learns
    # rotation at this scale. The authors' ResNet-18 at half width, 3x faster a step, for 3x the steps: SIE's
    # rotation R^2 grows with training while VICReg's falls (docs/mini.md: the ablation table). `cpu_bf16`: the
    # claims hold over 3 seeds in either precision, and a step is 1.23x faster with it.
    "laptop": MiniScale(
        classes=10,
        per_class=40,
        views=16,
        resolution=64,
        samples=8,
        epochs=150,
        batch_size=32,
        image_size=64,
        probe_epochs=100,
        preset="3diebench-yaw",
        probe_draws=16,
        val_pairs=32,
        backbone="resnet18-sie-w32",
        cpu_bf16=True,
    ),
    # The paper's task (all three axes) with the authors' ResNet-18 at 128 px on one GPU.
    "gpu": MiniScale(
        classes=13,
        per_class=100,
        views=24,
        resolution=128,
        samples=16,
        epochs=200,
        batch_size=256,
        image_size=128,
        probe_epochs=300,
        probe_draws=4,
        projector=(1024, 1024, 1024),
        device="cuda",
    ),
}
DEFAULT_METHODS = mini_methods()
COLOUR_CLAIM = ("sie", "sie-rotcolor")  # the methods claim (b) compares


@dataclass(kw_only=True)
class MiniOptions:
    """What `iebench mini` runs."""

    out: Path
    scale: str = "laptop"
    seeds: int = 3
    methods: tuple[str, ...] = DEFAULT_METHODS
    objects: Path | None = None  # a ShapeNet-layout folder instead of procedural objects
    per_class: int | None = None
    epochs: int | None = None  # overrides the scale's training epochs (for ablations)
    quality: str | None = None  # a named render recipe (`render.settings.QUALITIES`) instead of the scale's samples
    cpu_bf16: bool | None = None  # overrides the scale's CPU precision (True: bfloat16 where the CPU does it in hardware)
    data_only: bool = False  # stop after the shards (to train on another machine)
    timings: dict = field(default_factory=dict)  # seconds per stage, over every invocation (OUT/_timings.json)
    ran: list = field(default_factory=list)  # the stages that did work in this invocation

    def scale_used(self) -> MiniScale:
        """The scale's knobs with the overrides applied."""
        scale = SCALES[self.scale]
        scale = replace(scale, epochs=self.epochs) if self.epochs else scale
        return scale if self.cpu_bf16 is None else replace(scale, cpu_bf16=self.cpu_bf16)


TIMINGS_NAME = "_timings.json"


def _eta(options: MiniOptions, remaining: list[str]) -> str:
    """Time left, from the measured times of stages of the same kind (or of any training/evaluation)."""
    by_kind: dict[str, list[float]] = {}
    for name, seconds in options.timings.items():
        by_kind.setdefault(stage_kind(name), []).append(seconds)
        by_kind.setdefault(stage_kind(name).split(" ")[0], []).append(seconds)
    total = 0.0
    for stage in remaining:
        known = by_kind.get(stage_kind(stage)) or by_kind.get(stage.split(" ")[0])
        if known is None:
            return "ETA after the first training run"
        total += float(np.mean(known))
    return f"about {total / 60:.0f} min left" if total >= 90 else f"about {total:.0f} s left"


def _stage(options: MiniOptions, plan: list[str], name: str, work) -> object:
    """Run one stage with a progress line; OUT/_timings.json gets its time when it first ends (training is only
    called while epochs remain, so a resumed run adds the rest). An interrupted stage's time is not counted."""
    start = time.perf_counter()
    position = plan.index(name)
    print(f"[mini {position + 1}/{len(plan)}] {name} ({_eta(options, plan[position:])})", file=sys.stderr, flush=True)
    result = work()
    seconds = time.perf_counter() - start
    if name not in options.timings or name.startswith("train "):  # a stage found finished keeps the time it first took
        options.timings[name] = options.timings.get(name, 0.0) + seconds
        options.ran.append(name)
        write_json_atomic(options.out / TIMINGS_NAME, options.timings)
    return result


def _plan(options: MiniOptions) -> list[str]:
    """Every stage of the run, in order."""
    stages = ["objects", "render", "pack"]
    if options.data_only:
        return stages
    scale = options.scale_used()
    for seed in range(options.seeds):
        for method in _methods(options, scale, seed):
            stages += [f"train {method} seed {seed}", f"evaluate {method} seed {seed}"]
        stages += [f"evaluate random init seed {seed}", f"evaluate pixels seed {seed}"]
    return stages


def _objects(options: MiniOptions, scale: MiniScale) -> Path:
    from iebench.render import procedural
    from iebench.render.objects import scan_root

    if options.objects is None:
        root = options.out / "objects"
        if not procedural.is_procedural(root):
            procedural.generate(root, scale.classes, scale.per_class, seed=0)
        return root
    chosen = options.out / "objects.txt"  # a class-balanced subset of a ShapeNet-layout folder
    found = scan_root(options.objects)
    per_class = options.per_class or scale.per_class
    by_class: dict[str, list] = {}
    for ref in found:
        by_class.setdefault(ref.synset, []).append(ref)
    keep = [ref for members in by_class.values() for ref in members[:per_class]]
    write_atomic(chosen, "".join(f"{r.synset}/{r.model_id}\n" for r in keep).encode())
    return options.objects


def _render_job(options: MiniOptions, scale: MiniScale, objects: tuple, source_root: Path | None):
    """The scale's render job (a `RenderJob`) over these objects."""
    from iebench.presets import get_preset
    from iebench.render.job import RenderJob

    return RenderJob(
        objects=objects,
        out=options.out / "render",
        preset=get_preset(scale.preset),
        seed=0,
        views=scale.views,
        settings=render_settings(scale, options.quality),
        source_root=source_root,
    )


def _render(options: MiniOptions, scale: MiniScale, objects: Path) -> Path:
    from iebench.object_lists import read_object_list
    from iebench.render.job import run
    from iebench.render.objects import select_objects

    listed = read_object_list(options.out / "objects.txt") if options.objects else None
    job = _render_job(options, scale, tuple(select_objects(objects, listed)), objects)
    run(job)
    return job.out


def made_elsewhere(options: MiniOptions, scale: MiniScale) -> bool:
    """True when OUT holds finished shards and no renders: the data was made on another machine (`data_only`) and
    carried here, so the objects and render stages have nothing to do. Shards rendered otherwise than this scale
    and these options would render are refused, as `iebench render` refuses to resume into such a folder, and so
    are shards that did not arrive whole (`iebench verify`'s checks, before any training)."""
    from iebench.dataset.description import read_description
    from iebench.dataset.finalize import FinalizeError
    from iebench.dataset.verify import verify
    from iebench.render.job import settings_mismatch

    shards = options.out / "shards"
    if (options.out / "render").exists() or not (shards / fmt.INFO_NAME).is_file():
        return False
    try:
        manifest = read_description(shards).info.get("render_manifest")
    except FinalizeError as error:
        raise ValueError(f"{shards} did not arrive whole ({error}): copy it again") from None
    if not manifest:
        raise ValueError(f"{shards}/_info.json has no render manifest: these shards were not made by `iebench mini`; use a new OUT")
    procedural = options.objects is None
    mismatched = settings_mismatch(_render_job(options, scale, (), None), manifest)
    if manifest.get("object_source", {}).get("procedural") != procedural:
        mismatched.append("objects (procedural or --objects)")
    elif procedural and len(manifest.get("objects", ())) != scale.classes * scale.per_class:
        mismatched.append("object count")
    if mismatched:
        raise ValueError(
            f"{shards} was made with other settings than --scale {options.scale} and these options ({', '.join(mismatched)} "
            "differ; see its _info.json): use the options it was made with, or a new OUT"
        )
    problems = verify(shards, progress=False)
    if problems:
        raise ValueError(f"{shards} did not arrive whole ({len(problems)} problems, the first: {problems[0]}): copy it again")
    return True


def render_settings(scale: MiniScale, quality: str | None = None) -> RenderSettings:
    """The scale's render settings: its samples, or the named recipe at its resolution."""
    from iebench.render.settings import QUALITIES, RenderSettings

    if quality is None:
        return RenderSettings(resolution=scale.resolution, samples=scale.samples)
    if quality not in QUALITIES:
        raise ValueError(f"unknown render quality {quality!r}; qualities are {', '.join(QUALITIES)}")
    return QUALITIES[quality].replace(resolution=scale.resolution)


def _pack(options: MiniOptions, render: Path) -> Path:
    from iebench.dataset.description import read_description
    from iebench.dataset.pack import PackOptions, pack

    out = options.out / "shards"
    if not (out / fmt.INFO_NAME).is_file():
        pack(render, out, PackOptions(name="3diebench-mini", skip_bad=True))
    read_description(out)
    return out


def _train_and_evaluate(options: MiniOptions, scale: MiniScale, shards: Path, plan: list[str]) -> list[dict]:
    from iebench.baselines.checkpoint import trained_epochs
    from iebench.baselines.evaluate import EvalSettings, cached_evaluate
    from iebench.baselines.pixels import pixels_report
    from iebench.baselines.trainer import train

    reports = []
    for seed in range(options.seeds):
        probe = scale.probe(seed)
        for method in _methods(options, scale, seed):
            run = options.out / "runs" / f"{method}-seed{seed}"
            config = train_config(scale, method, seed, shards, run)
            done = trained_epochs(run)
            if done < config.epochs:
                _stage(options, plan, f"train {method} seed {seed}", partial(train, config, resume=done > 0, progress=False))
            reports.append(
                _stage(
                    options,
                    plan,
                    f"evaluate {method} seed {seed}",
                    partial(cached_evaluate, run, shards, EvalSettings(tasks=_tasks(method), probe=probe), progress=False),
                )
            )
        floor = options.out / "runs" / f"{options.methods[0]}-seed{seed}"
        reports.append(
            _stage(
                options,
                plan,
                f"evaluate random init seed {seed}",
                partial(cached_evaluate, floor, shards, EvalSettings(random_init=True, probe=probe), progress=False),
            )
        )
        reports.append(
            _stage(
                options,
                plan,
                f"evaluate pixels seed {seed}",
                partial(pixels_report, shards, options.out / "runs" / f"pixels-seed{seed}", EvalSettings(probe=probe)),
            )
        )
    return reports


def train_config(scale: MiniScale, method: str, seed: int, shards: Path, run: Path) -> TrainConfig:
    """The training configuration of one method and seed at a scale."""
    from iebench.baselines.checkpoint import CONFIG_NAME
    from iebench.baselines.config import TrainConfig
    from iebench.baselines.precision import native_cpu_bf16

    started = run / CONFIG_NAME
    if started.is_file():  # a run resumed keeps the precision it started in, whatever this machine does
        before = json.loads(started.read_text())
        if before.get("epochs") != scale.epochs:  # the report would give one number of epochs for runs of another
            raise ValueError(f"{run} was trained for {before.get('epochs')} epochs and this command asks for {scale.epochs}: use a new OUT")
        cpu_bf16 = before.get("cpu_bf16", False)
    else:
        cpu_bf16 = scale.device == "cpu" and scale.cpu_bf16 and native_cpu_bf16()
    return TrainConfig(
        method=method,
        data=str(shards),
        out=str(run),
        epochs=scale.epochs,
        batch_size=scale.batch_size,
        image_size=scale.image_size,
        projector=scale.projector,
        backbone=scale.backbone,
        seed=seed,
        workers=0 if scale.device == "cpu" else None,  # on 2 cores, loading in the main process is 1.18x faster a step
        amp=scale.device == "cuda",
        cpu_bf16=cpu_bf16,
        device=scale.device,
        stem="small" if scale.image_size < 64 else "imagenet",
    )


def _tasks(method: str) -> tuple[str, ...]:
    """Every task, but the colour probe only where claim (b) reads it (and on the reference rows): it saves minutes."""
    from iebench.baselines.evaluate import TASKS

    return TASKS if method in COLOUR_CLAIM else tuple(t for t in TASKS if t != "colour")


def _methods(options: MiniOptions, scale: MiniScale, seed: int) -> tuple[str, ...]:
    """The methods trained for a seed: the chosen ones, and the supervised reference with seed 0."""
    return options.methods + ((SUPERVISED,) if scale.supervised and seed == 0 and SUPERVISED not in options.methods else ())


# Files that make a folder a shard set or a render's output: mini's OUT holds these only in its shards/ and render/.
FOREIGN_OUT = (fmt.INFO_NAME, "SHA256SUMS", "_part*.json", "_manifest*.json", "*.tar")


def refuse_foreign_out(out: Path) -> None:
    """Refuse an OUT that is itself a shard set or a render's output (mini would write its stages into it), as pack refuses."""
    found = sorted(p.name for pattern in FOREIGN_OUT for p in out.glob(pattern)) if out.is_dir() else []
    if found:
        raise ValueError(
            f"{out} holds a shard set or a render ({found[0]}): mini writes objects/, render/ and shards/ into OUT, which "
            "would spoil it; give a new or empty folder (a shard set made by `iebench mini --data-only` goes in OUT/shards)"
        )


def run_mini(options: MiniOptions, command: str = "iebench mini") -> Path:
    """Every stage, resumable; returns the report's path (the shards' with `data_only`)."""
    if options.scale not in SCALES:
        raise ValueError(f"unknown scale {options.scale!r}; scales are {', '.join(SCALES)}")
    if options.seeds < 1:
        raise ValueError("--seeds must be at least 1")
    if options.per_class is not None and options.objects is None:
        raise ValueError("--per-class picks objects from --objects: give --objects too (the procedural set's size is the scale's)")
    scale = options.scale_used()
    if scale.device == "cuda" and not options.data_only:
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"the {options.scale} scale trains on a CUDA GPU and this machine has none: --data-only makes its data here")
    refuse_foreign_out(options.out)
    options.out.mkdir(parents=True, exist_ok=True)
    if (options.out / TIMINGS_NAME).is_file():
        options.timings = json.loads((options.out / TIMINGS_NAME).read_text())
    plan = _plan(options)
    if made_elsewhere(options, scale):
        print(f"[mini] objects, render: made on another machine; training on {options.out / 'shards'}", file=sys.stderr, flush=True)
        render = options.out / "render"  # not read: the shards are finished
    else:
        objects = _stage(options, plan, "objects", lambda: _objects(options, scale))
        render = _stage(options, plan, "render", lambda: _render(options, scale, objects))
    shards = _stage(options, plan, "pack", lambda: _pack(options, render))
    if options.data_only:
        return shards
    reports = _train_and_evaluate(options, scale, shards, plan)
    return write_report(options, scale, render_settings(scale, options.quality).to_json(), reports, command)
