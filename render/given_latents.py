"""Given latents: the exact (object, view, factors) to render, read from the published files or our own outputs.

FROM may be
- a folder in the original release layout (`<synset>/<model_id>/latent_<i>.npy`; images are ignored),
- the published split arrays (`all_latents_<split>.npy`, object-major, with `<split>_images.npy` naming
  the objects), given as one of the two files or as the folder holding them,
- a shard folder of this toolkit (`_info.json`).
Every array is checked (type, length, object count) before anything renders; each message names the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iebench.dataset import format as fmt
from iebench.layout import LATENT_GLOB, latent_view
from iebench.object_lists import ObjectListError, read_object_list
from iebench.presets import Preset

Key = tuple[str, str]


class GivenLatentsError(ValueError):
    """Latents that cannot define the views to render; the message names the file."""


@dataclass(frozen=True)
class GivenLatents:
    """Per object, the view indices and their latent vectors (float64, as read), and where they came from."""

    views: dict[Key, dict[int, np.ndarray]]
    source: dict

    def latents_for(self, preset: Preset, seed: int, synset: str, model_id: str, view: int) -> np.ndarray:
        """The `sample_view_latents` replacement: the given vector (seed and preset play no part)."""
        return self.views[(synset, model_id)][view]


def _as_float64(array: np.ndarray, path: Path) -> np.ndarray:
    """The array itself: 3DIEBench latents are float64, and any other type is refused (float32 values would be
    written back rounded, not bit-identical to what was given)."""
    if array.dtype != np.float64:
        raise GivenLatentsError(
            f"{path}: latents are {array.dtype}, not float64 as 3DIEBench's are: give the original "
            "float64 file (other types would be rendered and written rounded)"
        )
    if not np.isfinite(array).all():
        raise GivenLatentsError(
            f"{path}: {int((~np.isfinite(array)).sum())} latent values are NaN or infinite: no view can be rendered from them"
        )
    return array


def _load_latents(path: Path) -> np.ndarray:
    """A .npy file of latents as float64, with a clear error naming the file."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise GivenLatentsError(f"{path}: not a readable .npy file ({error})") from None
    return _as_float64(array, path)


def _check_length(k: int, preset: Preset, path: Path) -> None:
    if k != len(preset.latent_names):
        raise GivenLatentsError(
            f"{path}: latents have {k} values, preset {preset.name!r} has {len(preset.latent_names)} "
            f"({', '.join(preset.latent_names)}); choose the preset whose scene they describe"
        )


def _from_loose(root: Path, preset: Preset) -> dict[Key, dict[int, np.ndarray]]:
    views: dict[Key, dict[int, np.ndarray]] = {}
    for path in sorted(root.glob(f"*/*/{LATENT_GLOB}")):
        if path.parts[-3].startswith(("_", ".")):
            continue
        array = _load_latents(path)
        if array.ndim != 1:
            raise GivenLatentsError(f"{path}: expected a vector of latents, got shape {array.shape}")
        _check_length(array.shape[0], preset, path)
        view = latent_view(path)
        views.setdefault((path.parts[-3], path.parts[-2]), {})[view] = array
    return views


def _from_split_arrays(paths: list[Path], preset: Preset) -> dict[Key, dict[int, np.ndarray]]:
    views: dict[Key, dict[int, np.ndarray]] = {}
    for latents_path in paths:
        split = latents_path.stem[len("all_latents_") :]
        images_path = latents_path.with_name(f"{split}_images.npy")
        try:
            objects = read_object_list(images_path)
        except ObjectListError as error:
            raise GivenLatentsError(f"{latents_path}: its object list: {error}") from None
        array = _load_latents(latents_path)
        if array.ndim != 2:
            raise GivenLatentsError(f"{latents_path}: expected (objects x views, k), got shape {array.shape}")
        _check_length(array.shape[1], preset, latents_path)
        if not objects or array.shape[0] % len(objects):
            raise GivenLatentsError(
                f"{latents_path}: {array.shape[0]} rows are not a whole number of views for the "
                f"{len(objects)} objects of {images_path.name}"
            )
        per_object = array.shape[0] // len(objects)
        for index, key in enumerate(objects):
            views[key] = {v: array[index * per_object + v] for v in range(per_object)}
    return views


def _from_shards(root: Path, preset: Preset) -> dict[Key, dict[int, np.ndarray]]:
    from iebench.dataset.reader import ShardSet

    shards = ShardSet(root)
    views: dict[Key, dict[int, np.ndarray]] = {}
    for split in fmt.SPLITS:
        for ref in shards.samples(split):
            try:
                array = ref.latents()
            except fmt.ShardFormatError as error:
                raise GivenLatentsError(f"--latents {root}: {error}") from None
            array = _as_float64(array, ref.shard)
            _check_length(array.shape[1], preset, ref.shard)
            views[(ref.synset, ref.model_id)] = {v: array[v] for v in range(array.shape[0])}
    return views


def read_given_latents(source: Path, preset: Preset) -> GivenLatents:
    """Read and check every latent vector of FROM against the preset's schema."""
    source = Path(source)
    if preset.rotation_sampler != "euler-box" or any(f.fixed for f in preset.factors):
        fixed = [f.name for f in preset.factors if f.fixed]
        raise GivenLatentsError(
            f"preset {preset.name!r} fixes {', '.join(fixed) or 'its rotation sampling'}, which given "
            "latents define: with --latents a preset only chooses the scene kind and schema"
        )
    if source.is_file() and source.name.startswith("all_latents_"):
        views, kind = _from_split_arrays([source], preset), "split-arrays"
    elif source.is_file() and source.name.endswith("_images.npy"):
        split = source.name[: -len("_images.npy")]
        views, kind = _from_split_arrays([source.with_name(f"all_latents_{split}.npy")], preset), "split-arrays"
    elif (source / fmt.INFO_NAME).is_file():
        views, kind = _from_shards(source, preset), "shards"
    elif source.is_dir() and list(source.glob(f"*/*/{LATENT_GLOB}")):
        views, kind = _from_loose(source, preset), "loose"
    elif source.is_dir() and list(source.glob("all_latents_*.npy")):
        views, kind = _from_split_arrays(sorted(source.glob("all_latents_*.npy")), preset), "split-arrays"
    else:
        raise GivenLatentsError(f"--latents {source}: not a release layout, split arrays or shard folder")
    if not views:
        raise GivenLatentsError(f"--latents {source}: no latents found")
    return GivenLatents(views, {"kind": kind, "path": str(source.resolve())})
