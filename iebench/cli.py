"""The `iebench` command line: thin wrappers that parse, validate, call the library and report.

Each command imports its part inside itself, so `iebench --help` and training never load Blender.
Every anticipated failure (no space left, an unreadable or corrupt file, a wrong file type, an
interrupt) ends in one `Error:` line that names the file and says what to do, with a non-zero exit
code; `--debug` (or `IEBENCH_DEBUG=1`) shows the traceback instead.
"""

from __future__ import annotations

import errno
import functools
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import click

import iebench
from iebench.baselines.methods import METHODS, compared_methods, mini_methods, variants_of
from iebench.orchestration.mini import SCALES
from iebench.presets import PRESETS
from iebench.render.settings import DENOISERS, PREFILTERS, QUALITIES

DEBUG_ENV = "IEBENCH_DEBUG"
EXIT_INTERRUPTED = 130

# Counts are never negative: every numeric option says what it accepts.
COUNT = click.IntRange(min=1)
NONNEG = click.IntRange(min=0)
POSITIVE = click.FloatRange(min=0, min_open=True)
NONNEG_FLOAT = click.FloatRange(min=0)
FRACTION = click.FloatRange(min=0, max=1, max_open=True)


def method_list(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    """A --methods value: registered methods, comma-separated, checked before any work starts."""
    names = tuple(m.strip() for m in value.split(",") if m.strip())
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise click.BadParameter(f"no method {', '.join(map(repr, unknown))}: `iebench methods` lists them")
    if not names:
        raise click.BadParameter("name at least one method")
    twice = sorted({m for m in names if names.count(m) > 1})
    if twice:
        raise click.BadParameter(f"{', '.join(map(repr, twice))} named twice")
    return names


QUALITY = click.IntRange(min=1, max=100)


def _fail(message: str, details: list[str] | tuple[str, ...] = ()) -> None:
    """End the command with one `Error:` line; `details` (one problem a line) are printed above it.

    Called while handling an exception with --debug on, the exception goes on instead, traceback and all.
    """
    context = click.get_current_context(silent=True)
    if context is not None and context.find_root().params.get("debug") and sys.exc_info()[1] is not None:
        raise  # the exception being handled, traceback and all
    for line in details:
        click.echo(f"  {line}", err=True)
    raise click.ClickException(message)


def describe_os_error(error: OSError) -> str:
    """One line for an OS error: what happened, to which file, and what to do."""
    name = error.filename
    where = f" {name}" if name is not None else ""
    writing = f" writing {name}" if name is not None else ""
    again = "then run the same command again (finished work is kept; it resumes)"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device{writing}: free some space or write elsewhere, {again}"
    if error.errno == errno.EFBIG:
        return f"file too large{writing} (the file-size limit, `ulimit -f`, or the file system's): raise it or write elsewhere, {again}"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied:{where}: check the permissions of the file and its folder"
    if error.errno == errno.EROFS:
        return f"read-only file system:{where}: write elsewhere"
    if error.errno == errno.ENOENT:
        return f"no such file or folder:{where}"
    if error.errno == errno.EISDIR:
        return f"a folder where a file was expected:{where}"
    if error.errno == errno.EIO:
        return f"input/output error on{where}: the disk or network file system failed; check it, {again}"
    return f"{error.strerror or error}:{where}" if name is not None else str(error.strerror or error)


def describe(error: BaseException) -> str:
    """The message of an anticipated error, without the DataLoader worker's traceback some carry."""
    if isinstance(error, OSError) and error.errno is not None:
        return describe_os_error(error)
    text = str(error)
    if isinstance(error, MemoryError):  # its message is often empty
        return f"out of memory{f' ({text})' if text else ''}: ask for less (fewer views, objects or workers, a smaller batch), or use a machine with more"
    if "Original Traceback" in text:  # re-raised from a DataLoader worker: its own message is the last line
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = re.sub(rf"^(?:[\w.]+\.)?{type(error).__name__}: ", "", last)
    return text


def anticipated(error: BaseException) -> bool:
    """Errors that are the data's or the machine's, not the code's: every iebench error type, OS errors, a dead loader worker."""
    if isinstance(error, (OSError, MemoryError)):
        return True
    if isinstance(error, RuntimeError) and str(error).startswith("DataLoader worker"):
        return True  # killed (out of memory?) or exited: torch's message says which
    return isinstance(error, Exception) and type(error).__module__.split(".")[0] == "iebench"


class Interrupted(click.ClickException):
    """Ctrl-C or SIGTERM: temporary files are gone, finished work is kept."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, resume: str = "run the same command again to resume") -> None:
        super().__init__(f"interrupted: finished work is kept and temporary files are removed; {resume}")


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class Commands(click.Group):
    """The iebench group: anticipated failures become one `Error:` line unless --debug asks for the traceback."""

    def main(self, args: list[str] | None = None, *rest: object, **options: object) -> object:
        """Run the CLI, with --debug accepted anywhere before `--` and SIGTERM cleaned up as Ctrl-C is."""
        args = list(sys.argv[1:] if args is None else args)
        cut = args.index("--") if "--" in args else len(args)
        if "--debug" in args[:cut]:  # accepted anywhere before `--`, not only before the command
            args = ["--debug"] + [a for i, a in enumerate(args) if not (a == "--debug" and i < cut)]
        previous = None
        try:
            previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # a SLURM cancel cleans up as Ctrl-C does
        except ValueError:  # not the main thread
            pass
        try:
            return super().main(args, *rest, **options)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def invoke(self, ctx: click.Context) -> object:
        """Run the command: an interrupt or an anticipated failure becomes one `Error:` line."""
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            if debug:
                raise
            if ctx.invoked_subcommand == "train":  # a run folder resumes only when asked to
                raise Interrupted("run the same command again, with --resume if the run folder holds a checkpoint.pt") from None
            raise Interrupted() from None
        except Exception as error:
            if debug or not anticipated(error):
                raise
            _fail(describe(error), getattr(error, "details", ()))


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(iebench.__version__, prog_name="iebench")
@click.option("--debug", is_flag=True, envvar=DEBUG_ENV, help=f"Show the traceback of a failure (also {DEBUG_ENV}=1).")
def main(debug: bool) -> None:
    """iebench: regenerate 3DIEBench with Blender, pack it, load it, train and evaluate SIE.

    Start with `iebench objects procedural` (a ShapeNet-free object set) and `iebench render`.
    """


# --------------------------------------------------------------------------------------------- objects
@main.group()
def objects() -> None:
    """Object sets: generate the embedded procedural set, or list what a mesh folder holds."""


@objects.command("procedural")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--classes", type=COUNT, default=10, show_default=True, help="Number of classes (of 13), in synset order.")
@click.option("--per-class", type=COUNT, default=3, show_default=True, help="Objects per class.")
@click.option("--seed", type=NONNEG, default=0, show_default=True, help="Seed of the shapes, proportions and colours.")
def objects_procedural(out: Path, classes: int, per_class: int, seed: int) -> None:
    """Write procedurally built everyday objects in ShapeNet's layout (OBJ + MTL, free to use).

    Classes carry the ShapeNet synset id of the same everyday class (chair 03001627, table
    04379243, mug 03797390, ...), and objects are normalised as ShapeNet's are.
    """
    from iebench.render import procedural

    try:
        made = procedural.generate(out, classes, per_class, seed)
    except ValueError as error:
        _fail(str(error))
    click.echo(f"wrote {len(made)} objects of {classes} classes under {out}")


@objects.command("list")
@click.argument("root", type=click.Path(path_type=Path))
def objects_list(root: Path) -> None:
    """Count the objects per class of a ShapeNet-layout folder."""
    from iebench.classes import class_name
    from iebench.render.collections import read_collection
    from iebench.render.objects import scan_root

    found = scan_root(root)
    names = (read_collection(root) or {}).get("classes")  # a linked collection's own class names
    counts: dict[str, int] = {}
    for ref in found:
        counts[ref.synset] = counts.get(ref.synset, 0) + 1
    for synset, count in sorted(counts.items()):
        click.echo(f"{synset}  {class_name(synset, names):<14} {count:>7}")
    click.echo(f"{len(found)} objects in {len(counts)} classes")


@objects.command("link")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--layout",
    required=True,
    type=click.Choice(["shapenet", "class-folders", "gso", "objaverse", "flat"]),
    help="How SRC holds its objects: shapenet (<synset>/<id>/models/model_normalized.obj), class-folders (<class>/<name>.glb: "
    "ShapeNetCore's GLB, ABO), gso (<name>/meshes/model.obj), objaverse (<uid>.glb in any sub-folders), flat (mesh files).",
)
@click.option(
    "--classes",
    "classes_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV with the header mesh,class (optionally licence): each mesh path relative to SRC and its class; "
    "meshes it does not list are left out.",
)
@click.option(
    "--collection",
    type=click.Choice(["shapenet", "gso", "abo", "objaverse", "other"]),
    help="Which collection it is, for its licence on the dataset card [default: shapenet, gso, objaverse from the layout; else other].",
)
@click.option("--licence", help="The licence to record (for --collection other, e.g. cc-by-4.0; overrides a collection's own).")
def objects_link(src: Path, out: Path, layout: str, classes_file: Path | None, collection: str | None, licence: str | None) -> None:
    """Link a collection of meshes into ShapeNet's layout (symbolic links, no copies) in OUT, which must not exist.

    OUT gets <class>/<model_id>/models/model_normalized.<ext> for every object, with the files its mesh
    refers to beside it, and _collection.json (layout, licence, class names), which `iebench render`
    carries into its manifest and the dataset card. docs/rendering.md lists the collections.

    \b
    Examples:
      iebench objects link ShapeNetCore.v2 objs --layout shapenet
      iebench objects link google_scanned_objects objs --layout gso --classes gso_classes.csv
      iebench objects link objaverse/glbs objs --layout objaverse --classes lvis.csv
      iebench objects link abo/3dmodels/original objs --layout flat --classes abo_types.csv --collection abo
    """
    from iebench.render.collections import LinkError, link

    try:
        report = link(src, out, layout, classes_file, collection, licence)
    except (LinkError, OSError) as error:
        _fail(str(error))
    record = report.record
    click.echo(
        f"linked {report.linked} objects of {len(report.classes)} classes into {out} "
        f"(collection {record['collection']}, licence {record['licence']['name']})"
    )
    if report.left_out:
        click.echo(f"{len(report.left_out)} meshes left out: {classes_file} does not list them (first: {report.left_out[0]})")
    if report.not_found:
        click.echo(f"{len(report.not_found)} rows of {classes_file} name no mesh of {src} (first: {report.not_found[0]})", err=True)


# ---------------------------------------------------------------------------------------------- render
SHARD_KEYS = ("name", "val_fraction", "split_seed", "split_files", "shard_seed", "shard_size_mb")


def shard_options(note: str = "") -> Callable[[Callable], Callable]:
    """The options of how a shard set is named, split and cut (`PackOptions`): `pack`'s, and `render --format shards`'s."""
    options = [
        click.option("--name", default="3diebench", show_default=True, help=f"{note}Dataset name: shards are <name>-<split>-000000.tar."),
        click.option("--val-fraction", type=FRACTION, default=0.2, show_default=True, help=f"{note}Share of each class's objects in val."),
        click.option("--split-seed", type=NONNEG, default=0, show_default=True, help=f"{note}Seed of the stratified split."),
        click.option(
            "--split-files",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help=f"{note}Use the original SIE split instead: a folder with train_images.npy and val_images.npy.",
        ),
        click.option("--shard-seed", type=NONNEG, default=0, show_default=True, help=f"{note}Seed of the order of objects across shards."),
        click.option("--shard-size-mb", type=POSITIVE, default=100.0, show_default=True, help=f"{note}Target shard size."),
    ]

    def apply(command):
        @functools.wraps(command)
        def with_shard_values(**params):  # the six values reach the command as one dict, `shard_values`
            return command(shard_values={key: params.pop(key) for key in SHARD_KEYS}, **params)

        for option in reversed(options):
            with_shard_values = option(with_shard_values)
        return with_shard_values

    return apply


@main.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option(
    "--preset",
    default="3diebench",
    show_default=True,
    help=f"Scene preset: {', '.join(PRESETS)} (docs/rendering.md says what each varies).",
)
@click.option(
    "--variant",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML variant file: preset = '...', name = '...', and a [factors] table of values or ranges.",
)
@click.option(
    "--factor",
    "factors",
    multiple=True,
    metavar="NAME=VALUE|LO:HI",
    help="Fix a factor or set its range, e.g. --factor floor_hue=0.3 --factor rot_z=-0.5:0.5 (repeatable).",
)
@click.option("--views", type=COUNT, help="Views per object [default: 50; with --latents, the views they list].")
@click.option("--seed", type=NONNEG, default=0, show_default=True, help="Seed: a view's factors depend on (seed, object, view) only.")
@click.option("--resolution", type=COUNT, default=256, show_default=True, help="Image width and height in pixels.")
@click.option(
    "--quality",
    "--recipe",
    "recipe",
    type=click.Choice(list(QUALITIES)),
    default="default",
    show_default=True,
    help="Render recipe along the speed/quality frontier (docs/benchmarks.md): draft 8 spp, fast 16 spp, "
    "default 24 spp (all OIDN high, fast prefilter); original: the generator's 100 spp adaptive, accurate prefilter.",
)
@click.option("--samples", type=COUNT, help="Cycles samples per pixel (overrides the recipe).")
@click.option("--denoiser", type=click.Choice(DENOISERS), help="OIDN quality (overrides the recipe).")
@click.option("--adaptive/--no-adaptive", default=None, help="Adaptive sampling, threshold 0.01 (overrides the recipe).")
@click.option("--prefilter", type=click.Choice(PREFILTERS), help="OIDN prefilter of the albedo and normal passes (overrides the recipe).")
@click.option("--jpeg-quality", type=QUALITY, default=95, show_default=True, help="JPEG quality (4:2:0 subsampling).")
@click.option("--legacy-bgr", is_flag=True, help="Swap red and blue as the published 3DIEBench JPEGs do.")
@click.option("--device", type=click.Choice(["cpu", "gpu", "auto"]), default="cpu", show_default=True, help="Cycles device.")
@click.option(
    "--workers",
    type=NONNEG,
    default=0,
    show_default=True,
    help="Blender worker processes; 0: one per 2 cores, each with 2 Cycles threads (faster than 2 x 1, see docs/benchmarks.md).",
)
@click.option("--job-index", type=NONNEG, help="This job's index in a job array [default: $SLURM_ARRAY_TASK_ID or 0].")
@click.option("--num-jobs", type=COUNT, help="Jobs in the array [default: $SLURM_ARRAY_TASK_COUNT or 1].")
@click.option(
    "--objects",
    "object_list",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Render only these objects: an SIE list (.npy of '/<synset>/<model_id>/') or a text file.",
)
@click.option("--max-faces", type=COUNT, default=5_000_000, show_default=True, help="Objects with more faces are reported, not rendered.")
@click.option(
    "--max-mesh-mb", type=POSITIVE, default=1024.0, show_default=True, help="Mesh files larger than this are reported, not rendered."
)
@click.option(
    "--latents",
    "latents_from",
    type=click.Path(exists=True, path_type=Path),
    help="Render exactly the views these latents give: a release-layout folder, all_latents_<split>.npy "
    "(+ <split>_images.npy), or a shard folder. The preset then only chooses the scene kind and schema.",
)
@click.option(
    "--passes",
    default="",
    metavar="NAMES",
    help="Also store these passes of every view, from the same render: depth, normal, mask (comma-separated); "
    "the camera record (intrinsics, extrinsics, object matrix) comes with any. Default: none (RGB only).",
)
@click.option(
    "--object-timeout",
    type=POSITIVE,
    help="Seconds one object's import and views may take; a slower object's worker is stopped and the object is listed "
    "as timed out [default: 300 s plus, per view, 2 s and 20 times a view's time on 2 CPU cores at these settings].",
)
@click.option(
    "--retry-failed", is_flag=True, help="On a resume, render again the objects an earlier run stopped (timed out, or their worker died)."
)
@click.option("--dry-run", is_flag=True, help="Print the image count, disk estimate and ETA (from a short calibration render), then stop.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["loose", "shards"]),
    default="loose",
    show_default=True,
    help="loose: the original layout of files; shards: WebDataset shards written while rendering.",
)
@shard_options(note="Shards: ")
def render(src: Path, out: Path, dry_run: bool, output_format: str, shard_values: dict, **flags: object) -> None:
    """Render 3DIEBench views of the meshes under SRC (ShapeNetCore v2 layout) into OUT.

    Writes OUT/<synset>/<model_id>/image_<i>.jpg and latent_<i>.npy (the original layout, read
    unchanged by the SIE code), or with --format shards WebDataset shards as `iebench pack` writes
    them; plus _manifest.json and, if anything went wrong, _failures.jsonl. Re-running the same
    command resumes: only missing views (or unwritten shards) are rendered.

    \b
    Examples:
      iebench render ShapeNetCore.v2 --out 3DIEBench
      iebench render objs --out small --views 8 --resolution 128 --factor floor_hue=0.5
      sbatch --array=0-99 --wrap "iebench render ShapeNetCore.v2 --out 3DIEBench"   # one job per task
    """
    import importlib.util

    from iebench.dataset.pack import PackOptions
    from iebench.object_lists import ObjectListError
    from iebench.presets import PresetError
    from iebench.render import job as render_job
    from iebench.render.objects import ObjectSourceError
    from iebench.render.request import RenderRequest, prepare_job, render_and_finalize

    shards = PackOptions(**shard_values) if output_format == "shards" else None
    request = RenderRequest(src=src, out=out, shards=shards, **flags)  # every other flag is named as the request's field
    try:
        job = prepare_job(request)
    except (PresetError, ObjectSourceError, ObjectListError, ValueError) as error:  # GivenLatentsError is a ValueError
        _fail(str(error))
    if importlib.util.find_spec("bpy") is None:
        _fail("bpy (Blender as a Python module) is not installed: pip install 'iebench[render]' on Python 3.11")
    if not job.objects:
        click.echo(f"job {job.job_index} of {job.num_jobs} has no objects")
        return
    if dry_run:
        render_job.check_resumable(job)
        _echo_forecast(job, render_job.estimate(job))
        return
    summary, info = render_and_finalize(job)
    _echo_render_summary(job, summary, info)


def _echo_forecast(job, forecast) -> None:
    click.echo(
        f"objects:  {len(job.objects)} (job {job.job_index} of {job.num_jobs})\n"
        f"images:   {forecast.images_total} ({forecast.images_todo} still to render)\n"
        f"disk:     {forecast.disk_bytes / 2**20:.1f} MiB ({forecast.bytes_per_image / 1024:.1f} KiB per view)\n"
        f"speed:    {forecast.seconds_per_image:.2f} s per image per worker, {forecast.workers} worker{'s' if forecast.workers != 1 else ''}\n"
        f"ETA:      {_duration(forecast.eta_seconds)}"
    )


def _echo_render_summary(job, summary, info: dict | None) -> None:
    """What was rendered, the set (when finalized) or what to do next, warnings, and failures (exit code 1)."""
    from iebench.render.job import failures_path

    click.echo(
        f"rendered {summary.images_rendered} images ({summary.images_skipped} already there) of "
        f"{summary.objects} objects in {_duration(summary.seconds)} -> {job.out}"
    )
    if info is not None:
        _echo_info(job.out, info)
    elif job.shard_plan is not None:
        click.echo(f"job {job.job_index} of {job.num_jobs} done: once every job is, run `iebench finalize {job.out}`")
    failures = failures_path(job.out, job.job_index, job.num_jobs)
    if summary.warnings:
        click.echo(f"{len(summary.warnings)} objects rendered with warnings (see {failures.name})")
    if summary.failures:
        click.echo(f"{len(summary.failures)} objects failed:", err=True)
        for key, reason in sorted(summary.failures.items())[:20]:
            click.echo(f"  {key}: {reason.splitlines()[0]}", err=True)
        click.echo(f"all reasons: {failures}", err=True)
        sys.exit(1)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


# ------------------------------------------------------------------------------------------------ shards
@main.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@shard_options()
@click.option("--workers", type=NONNEG, default=0, show_default=True, help="Processes writing shards; 0: one per core.")
@click.option(
    "--skip-bad",
    is_flag=True,
    help="Pack the good objects and list the bad ones (it decodes every image first to find them), instead of stopping.",
)
def pack(
    src: Path,
    out: Path,
    shard_values: dict,
    workers: int,
    skip_bad: bool,
) -> None:
    """Pack SRC, in the original 3DIEBench layout (the release or our renders), into shards in OUT.

    One WebDataset sample per object (all its views as JPEG bytes, its latents, label, metadata),
    split by object, with offset indexes, _info.json, SHA256SUMS, the SIE split files and a dataset
    card. The same input and options give the same bytes; re-running resumes.

    \b
    Example:
      iebench pack 3DIEBench 3DIEBench-shards --split-files 3DIEBench   # the original split
    """
    from iebench.dataset.finalize import FinalizeError
    from iebench.dataset.loose import LooseLayoutError
    from iebench.dataset.pack import PackError, PackOptions
    from iebench.dataset.pack import pack as pack_shards
    from iebench.dataset.splits import SplitError

    options = PackOptions(**shard_values, workers=workers, skip_bad=skip_bad)
    try:
        info, skipped = pack_shards(src, out, options)
    except (PackError, LooseLayoutError, SplitError, FinalizeError, ValueError) as error:
        _fail(str(error), getattr(error, "details", ()))
    _echo_info(out, info)
    if skipped:
        named = f"{len(skipped)} bad object{'s' if len(skipped) > 1 else ''}"
        more = [f"  ... and {len(skipped) - 5} more"] if len(skipped) > 5 else []
        click.echo("\n".join([f"skipped {named} (listed in _info.json):", *(f"  {why}" for why in skipped[:5]), *more]), err=True)


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
def finalize(out: Path) -> None:
    """Once every writer is done (all jobs of a render array), write _info.json, checksums, split files and the card."""
    from iebench.dataset.finalize import finalize as finalize_set

    info = finalize_set(out)
    _echo_info(out, info)


@main.command()
@click.argument("out", metavar="SHARDS", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--quick", is_flag=True, help="Check every file's size and sha256 only, at disk speed (the everyday check of a copied set).")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="Processes checking shards (0: every core).")
def verify(out: Path, quick: bool, workers: int) -> None:
    """Check every shard of SHARDS against _info.json: checksums, counts, JPEGs, latents, splits, indexes.

    Without --quick every member is read and checked against its crc32, every image decoded, every latent checked
    against the preset's ranges, and the split files compared with the shards.
    """
    from iebench.dataset.verify import verify as verify_set

    problems = verify_set(out, quick=quick, workers=workers)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        _fail(f"{len(problems)} problems in {out}")
    click.echo(f"{out}: verified" + (" (sizes and checksums: --quick)" if quick else ""))


def _echo_info(out: Path, info: dict) -> None:
    for split, data in info["splits"].items():
        click.echo(
            f"{split:>5}: {data['objects']:>7,} objects {data['views']:>9,} views {len(data['shards']):>5} shards "
            f"{data['bytes'] / 2**20:>9.1f} MiB"
        )
    click.echo(f"-> {out}")


@main.command()
@click.argument("out", metavar="SHARDS", type=click.Path(exists=True, file_okay=False, path_type=Path))
def info(out: Path) -> None:
    """Print counts per class and split, sizes and the settings of a shard set."""
    from iebench.dataset.description import read_description

    data = read_description(out).info
    click.echo(
        f"{data['name']}: {data['views_per_object']} views per object at {data['resolution']} px, "
        f"preset {data['preset']['name']}, latents {', '.join(data['latent_names'])}"
    )
    if data.get("passes"):
        click.echo(f"passes: {', '.join(data['passes'])} (docs/rendering.md)")
    split = data["split"]
    click.echo(
        "split: "
        + (
            f"stratified, val fraction {split['val_fraction']}, seed {split['seed']}"
            if split["method"] == "stratified"
            else f"SIE files {split['path']}"
        )
    )
    settings = (data.get("render_manifest") or {}).get("render_settings")
    if settings:
        click.echo("render: " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    collection = data["source"].get("collection")
    if collection:
        click.echo(
            f"objects: {collection['collection']} collection, {collection['layout']} layout, licence {collection['licence']['name']}"
            + (f" ({len(collection['object_licences'])} objects with their own)" if collection.get("object_licences") else "")
        )
    ids = max([9, *(len(c["synset"]) for c in data["classes"])])  # a linked collection's class ids may be longer than a synset
    names = max([14, *(len(c["name"]) for c in data["classes"])])
    click.echo(f"\n{'label':>5}  {'synset':<{ids}} {'class':<{names}} {'train':>7} {'val':>7}")
    for c in data["classes"]:
        click.echo(f"{c['label']:>5}  {c['synset']:<{ids}} {c['name']:<{names}} {c['train']:>7} {c['val']:>7}")
    click.echo()
    _echo_info(out, data)


@main.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="PNG to write [default: SRC/contact_sheet.png].")
@click.option("--split", type=click.Choice(["train", "val"]), default="train", show_default=True, help="Split to show (shards).")
@click.option("--objects", "max_objects", type=COUNT, default=12, show_default=True, help="Objects (rows) to show, spread over classes.")
@click.option("--views", "max_views", type=COUNT, default=8, show_default=True, help="Views (columns) per object.")
@click.option("--tile", type=click.IntRange(16, 1024), default=128, show_default=True, help="Tile size in pixels.")
def show(src: Path, out: Path | None, split: str, max_objects: int, max_views: int, tile: int) -> None:
    """Write a contact sheet of a shard set or a render output: objects x views, captioned with class and latents."""
    from iebench.contact_sheet import save_png
    from iebench.dataset.finalize import FinalizeError
    from iebench.dataset.format import INFO_NAME
    from iebench.dataset.loose import LooseLayoutError, loose_contact_sheet
    from iebench.dataset.parts import PART_GLOB
    from iebench.dataset.reader import shard_contact_sheet

    try:
        if (src / INFO_NAME).is_file() or any(src.glob(PART_GLOB)):  # a shard set; unfinalized, the error says to finalize it
            sheet = shard_contact_sheet(src, split, max_objects, max_views, tile)
        else:
            sheet = loose_contact_sheet(src, max_objects, max_views, tile)
    except (LooseLayoutError, FinalizeError, ValueError) as error:
        _fail(str(error))
    path = save_png(sheet, out or src / "contact_sheet.png")
    click.echo(f"contact sheet: {path}")


# ----------------------------------------------------------------------------------------------- train
@main.command()
@click.option(
    "--method",
    type=click.Choice(list(METHODS)),
    default=None,
    help="Method [default: sie]; supervised-rotation is a reference (the backbone trained to regress the relative rotation). "
    "`iebench methods` lists each with its default action.",
)
@click.option(
    "--backbone",
    type=click.Choice(["resnet18-sie", "resnet18-sie-w32", "resnet18-sie-w16", "resnet18", "vit-s16"]),
    help="Encoder [default: resnet18-sie]. resnet18-sie: the SIE authors' ResNet-18 (stride on a block's second conv, "
    "TF-style padding, a shortcut conv in every stage's first block, zero-initialised last BN; their checkpoints load); "
    "resnet18-sie-w32 / -w16: the same network at 1/2 or 1/4 of the width (256-d or 128-d, about 3x or 8x faster on a CPU); "
    "resnet18: torchvision's; vit-s16: ViT-S/16 (the reconstruction paper's).",
)
@click.option(
    "--data", type=click.Path(path_type=Path), help="Shard folder (or the original layout) to train on (required, here or in --config)."
)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), help="Run folder (required, here or in --config).")
@click.option(
    "--preset",
    type=click.Choice(["sie-paper", "recon-paper", "tiny"]),
    help="sie-paper: the SIE paper's setting (256 px, batch 1024, 2000 epochs); recon-paper: ViT-S/16, 800 epochs; tiny: a few CPU "
    "minutes [default: none: TrainConfig's defaults, the SIE paper's settings].",
)
@click.option(
    "--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TOML file of settings (flags win)."
)
@click.option("--epochs", type=COUNT, help="Training epochs, each one pair per object [default: 2000 or the preset's].")
@click.option("--batch-size", type=COUNT, help="Global batch size, over all ranks.")
@click.option("--lr", type=POSITIVE, help="Adam's learning rate, constant [default: 1e-3].")
@click.option("--weight-decay", type=NONNEG_FLOAT, help="Adam's weight decay [default: 1e-6].")
@click.option("--image-size", type=COUNT, help="Resize on the device to this size [default: 256, the paper's; presets set their own].")
@click.option(
    "--action",
    type=click.Choice(["rotation", "euler", "rotation-color", "translation", "rotation-translation", "all", "none"]),
    help="Action [default: the method's]; translation and rotation-translation need data with translation latents (3diebench-t).",
)
@click.option("--seed", type=NONNEG, help="Seed of the initial weights and of every pair drawn [default: 0].")
@click.option("--workers", type=NONNEG, help="DataLoader workers per rank [default: cores, at most 8].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--amp/--no-amp", default=None, help="Mixed precision, float16 (CUDA only).")
@click.option(
    "--cpu-bf16/--no-cpu-bf16",
    default=None,
    help="The backbone in bfloat16 on a CPU: faster with AMX or AVX512-BF16 (1.2-1.35x a laptop-mini step), slower without.",
)
@click.option("--drop-last/--keep-last", default=None, help="Drop the last partial batch of each epoch [default: keep].")
@click.option(
    "--online-probe/--no-online-probe", default=None, help="Train a linear classifier and rotation regressor on detached features."
)
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where its last checkpoint stopped.")
def train(data: Path | None, out: Path | None, preset: str | None, config_file: Path | None, resume: bool, **flags: object) -> None:
    """Train a method on SIE pairs: CPU, one GPU, or many GPUs and nodes under torchrun.

    \b
    Examples:
      iebench train --preset tiny --data demo-out/shards --out runs/tiny
      torchrun --nproc_per_node 8 -m iebench.cli train --preset sie-paper --data 3DIEBench-shards --out runs/sie
      iebench train --out runs/sie --data 3DIEBench-shards --preset sie-paper --resume
    """
    from iebench.baselines.config import resolve
    from iebench.baselines.trainer import train as train_run

    # `flags`: every other option, named as TrainConfig's fields; None where not given (the preset or file decides)
    config = resolve(preset, config_file, data=str(data) if data else None, out=str(out) if out else None, **flags)
    result = train_run(config, resume=resume)
    click.echo(
        f"trained {config.method} for {result.epochs_done} epochs -> {result.run} "
        f"(last epoch loss {result.last_epoch_loss if result.last_epoch_loss is None else round(result.last_epoch_loss, 4)})"
    )


@main.command("methods")
@click.option("--compared", is_flag=True, help="Only the names `iebench compare` and `make bench` run by default, on one line.")
def methods_command(compared: bool) -> None:
    """List the registered methods and the action each trains with unless --action says otherwise."""
    if compared:
        click.echo(" ".join(compared_methods()))
        return
    for name, entry in METHODS.items():
        click.echo(f"{name:<24} {entry.default_action}")


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def export(run: Path, out: Path) -> None:
    """Write RUN's backbone as a plain state dict in its reference code's layout.

    \b
    resnet18-sie: the SIE authors' resnet18() loads it with strict=True;
    resnet18:     torchvision's resnet18() loads it after fc = Identity();
    vit-s16:      torchvision's VisionTransformer (ViT-S/16) without head.
    """
    from iebench.baselines.export import export_backbone

    path = export_backbone(run, out)
    click.echo(f"backbone: {path}")


@main.command("import")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--method",
    type=click.Choice(variants_of("SIE")),
    help="The authors' model [default: read from the shapes; sie-novar cannot be told from sie by its weights].",
)
@click.option("--image-size", default=256, show_default=True, help="Size the images are resized to for this model (the paper's: 256).")
def import_command(checkpoint: Path, run: Path, method: str | None, image_size: int) -> None:
    """Turn a checkpoint of the SIE authors' code into a run folder that `iebench eval` evaluates.

    CHECKPOINT is their model.pth ({epoch, model, optimizer}: backbone, projectors and predictor, so all five
    tasks) or final_weights.pth (the backbone alone: classification, rotation and colour only).

    \b
    Example:
      iebench import SIE-exp/model.pth runs/sie-authors
      iebench eval runs/sie-authors --data 3DIEBench-shards
    """
    from iebench.baselines.authors import import_checkpoint

    if image_size < 16:
        _fail(f"--image-size must be at least 16, got {image_size}")
    done = import_checkpoint(checkpoint, run, method, image_size)
    parts = "backbone, projectors and predictor" if "heads" in done["parts"] else "backbone only (classification, rotation, colour)"
    epochs = f", {done['authors_epochs']} epochs" if done["authors_epochs"] is not None else ""
    click.echo(f"imported {done['method']} ({parts}{epochs}) -> {run}; left out {done['dropped_entries']} online-evaluator entries")


# ------------------------------------------------------------------------------------------------ eval
@main.command("eval")
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Shard folder (or the original layout) with train and val.")
@click.option(
    "--tasks",
    default=",".join(("classification", "rotation", "colour", "mrr", "pre")),
    show_default=True,
    help="Comma-separated: classification, rotation, colour, mrr, pre, and translation (asked for by name: on data with "
    "translation latents, 3diebench-t; R^2 in the object frame and the base frame).",
)
@click.option(
    "--part",
    type=click.Choice(["inv", "equi", "all"]),
    default="all",
    show_default=True,
    help="Representation part for the rotation, colour and translation probes (classification reports all three).",
)
@click.option("--epochs", type=COUNT, default=300, show_default=True, help="Probe epochs.")
@click.option("--lr", type=POSITIVE, default=1e-3, show_default=True, help="Probe learning rate (Adam).")
@click.option("--batch-size", type=COUNT, default=256, show_default=True, help="Probe batch size.")
@click.option(
    "--draws-per-object",
    type=COUNT,
    default=1,
    show_default=True,
    help="Views (classification) or pairs (rotation, colour) drawn per object in each probe epoch (the released scripts: 1).",
)
@click.option(
    "--bn-mode",
    type=click.Choice(["eval", "train"]),
    default="eval",
    show_default=True,
    help="eval: a frozen backbone with cached features; train: as the released probe scripts, BatchNorm in training mode "
    "while a probe trains (batch statistics, running statistics updated; the backbone runs every step, not cached), "
    "then eval mode on those running statistics for validation. Retrieval (mrr, pre) is in eval mode either way.",
)
@click.option("--seed", type=NONNEG, default=0, show_default=True, help="Seed of every probe's sampling and initialisation.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--random-init", is_flag=True, help="Evaluate an untrained backbone of RUN's configuration (the floor of every table).")
@click.option(
    "--ood",
    type=click.Path(path_type=Path),
    help="A second data set of the same latents (e.g. rendered with --preset rotation-ood from the val object list): every "
    "probe trained on --data's train split is also scored on every object of it (both its splits), beside --data's val.",
)
def eval_command(
    run: Path,
    data: Path,
    tasks: str,
    part: str,
    epochs: int,
    lr: float,
    batch_size: int,
    draws_per_object: int,
    bn_mode: str,
    seed: int,
    device: str,
    random_init: bool,
    ood: Path | None,
) -> None:
    """Evaluate RUN's frozen backbone with the SIE protocols; writes RUN/eval/eval.json, eval.md and plots.

    \b
    Example:
      iebench eval runs/sie --data 3DIEBench-shards
      iebench eval runs/sie --data 3DIEBench-shards --random-init     # the untrained floor
      iebench eval runs/sie --data 3DIEBench-T-shards --tasks classification,rotation,translation
      iebench eval runs/sie --data 3DIEBench-shards --ood rotation-ood-shards   # validation and OOD side by side
    """
    from iebench.baselines.eval_report import markdown_table, metrics_table, retrieval_table
    from iebench.baselines.evaluate import EvalSettings, evaluate, parse_tasks
    from iebench.baselines.probes import ProbeSettings

    settings = EvalSettings(
        tasks=parse_tasks(tasks),
        rotation_part=part,
        colour_part=part,
        bn_mode=bn_mode,
        random_init=random_init,
        device=device,
        probe=ProbeSettings(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, draws_per_object=draws_per_object),
    )
    report = evaluate(run, data, settings, ood=ood)
    click.echo(markdown_table([report]))
    click.echo(retrieval_table(report))
    if ood is not None or "translation" in report["results"]:
        click.echo(metrics_table(report))
    click.echo(
        f"features {report['timing']['features_seconds']:.1f} s, probes {report['timing']['probes_seconds']:.1f} s "
        f"-> {run / ('eval-random-init' if random_init else 'eval')}"
    )


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.md"),
    show_default=True,
    help="Markdown table to write (the chart goes beside it as .png).",
)
def report(runs: tuple[Path, ...], out: Path) -> None:
    """Put evaluated runs side by side: a table and a bar chart (RUN may be a run folder or an eval.json)."""
    from iebench.baselines.eval_report import EVAL_DIR, RANDOM_INIT_DIR, REPORT_NAME, markdown_table, read_report
    from iebench.baselines.plots import report_chart
    from iebench.files import write_atomic

    reports = []
    for run in runs:
        found = (run / EVAL_DIR / REPORT_NAME, run / RANDOM_INIT_DIR / REPORT_NAME)
        paths = [run] if run.is_file() else [p for p in found if p.is_file()]
        if not paths:
            _fail(f"{run} has no eval/eval.json: run `iebench eval {run} --data ...` first")
        reports += [read_report(p) for p in paths]
    table = markdown_table(reports)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, table.encode())
    chart = report_chart(reports, out.with_suffix(".png"))
    click.echo(table)
    click.echo(f"-> {out}, {chart}")


@main.command()
@click.option(
    "--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="Shards to train and evaluate on."
)
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder of the runs and the comparison."
)
@click.option("--methods", default=",".join(compared_methods()), show_default=True, callback=method_list, help="Comma-separated methods.")
@click.option("--preset", type=click.Choice(["tiny", "sie-paper"]), default="tiny", show_default=True)
@click.option("--epochs", type=COUNT, help="Training epochs (default: the preset's).")
@click.option("--probe-epochs", type=COUNT, default=300, show_default=True, help="Epochs of every evaluation probe.")
def compare(data: Path, out: Path, methods: tuple[str, ...], preset: str, epochs: int | None, probe_epochs: int) -> None:
    """Train the compared methods (or --methods) on the same data with one preset, evaluate each, and write a table and figure.

    Resumable: finished runs and evaluations are reused. The untrained backbone is the floor.
    """
    from iebench.baselines.compare import compare as compare_methods

    result = compare_methods(data, out, list(methods), preset, epochs, probe_epochs)
    click.echo(result["table"])
    click.echo(f"-> {out / 'compare.md'}, {out / 'compare.png'}")


@main.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--scale",
    type=click.Choice(list(SCALES)),
    default="laptop",
    show_default=True,
    help="ci: a few objects and views at 32 px, a few minutes; laptop: 10 classes x 40 objects, 16 views at 64 px, "
    "rotation about the vertical axis, 80-85 minutes with 3 seeds on 2 CPU cores; gpu: the paper's task at 128 px on one GPU.",
)
@click.option("--seeds", type=COUNT, default=3, show_default=True, help="Training seeds per method (mean and std are reported).")
@click.option("--methods", default=",".join(mini_methods()), show_default=True, callback=method_list, help="Comma-separated methods.")
@click.option(
    "--objects",
    "objects_root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A ShapeNet-layout folder to take a class-balanced subset from, instead of procedural objects.",
)
@click.option("--per-class", type=COUNT, help="With --objects: objects per class.")
@click.option("--epochs", type=COUNT, help="Training epochs instead of the scale's (an ablation; use a new OUT).")
@click.option(
    "--quality",
    type=click.Choice(list(QUALITIES)),
    help="Render with this recipe (as `render --quality`) instead of the scale's samples; the same latents whatever the "
    "recipe, so runs with different recipes compare what the recipe does to training (use a new OUT).",
)
@click.option(
    "--cpu-bf16/--no-cpu-bf16",
    default=None,
    help="Train the backbone in bfloat16 where the CPU has AMX or AVX512-BF16 (1.2-1.35x a laptop step), or in float32 "
    "[default: the scale's: bfloat16 at laptop, float32 at ci]. A run already started keeps its precision (use a new OUT).",
)
@click.option(
    "--data-only",
    is_flag=True,
    help="Make the objects, renders and shards, then stop. To train on another machine (a GPU one without Blender), copy "
    "OUT/shards and OUT/_timings.json into an empty OUT there and run the same command without --data-only: an OUT with "
    "finished shards and no renders skips the render, after checking the shards were made with this scale's settings "
    "and arrived whole.",
)
def mini(out: Path, objects_root: Path | None, data_only: bool, **flags: object) -> None:
    """3DIEBench-mini: build objects, render, pack, train every method and seed, evaluate, and report.

    Every stage resumes, so a run may be completed over several invocations. The report
    (OUT/report.md, .json, .png) says which of the paper's findings hold at this scale.
    """
    import shlex

    from iebench.orchestration.mini import MiniOptions, run_mini

    options = MiniOptions(out=out, objects=objects_root, data_only=data_only, **flags)  # the other flags are named as its fields
    try:
        path = run_mini(options, "iebench " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    except ValueError as error:
        _fail(str(error))
    click.echo(f"shards ready: {path} (train: the same command without --data-only)" if data_only else path.read_text())


if __name__ == "__main__":
    main()
