"""Reading the original 3DIEBench layout of loose files (the published release, or our renders).

Its file names are `iebench.layout`'s: `<root>/<synset>/<model_id>/image_<i>.jpg` + `latent_<i>.npy`, views
i = 0..n-1; with named passes also `<pass>_<i>.<ext>` (`depth_<i>.png`, `camera_<i>.json`, ...: `iebench.passes`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from iebench.classes import class_name, collection_class_names
from iebench.contact_sheet import SheetRow, contact_sheet, spread_over_classes
from iebench.layout import image_path, image_view, latent_path
from iebench.npy import parse_npy
from iebench.object_lists import object_folders
from iebench.passes import PASSES, preview_image
from iebench.presets import (
    LATENT_NAMES,
    TRANSLATION_NAMES,
    Preset,
    get_preset,
    preset_from_json,
)


class LooseLayoutError(ValueError):
    """A folder that is not in the original layout, or an object in it that cannot be read."""


@dataclass(frozen=True)
class LooseObject:
    """One object folder of the original layout and the view indices whose image is there."""

    synset: str
    model_id: str
    folder: Path
    views: tuple[int, ...]

    @property
    def key(self) -> str:
        """`<synset>/<model_id>`."""
        return f"{self.synset}/{self.model_id}"


def list_objects(root: Path) -> list[LooseObject]:
    """Every object folder with at least one view, sorted; a clear error if there is none."""
    root = Path(root)
    if not root.is_dir():
        raise LooseLayoutError(f"{root} does not exist or is not a folder")
    found = []
    for synset, model_id, folder in object_folders(root):
        views = sorted(v for v in (image_view(f.name) for f in folder.iterdir()) if v is not None)
        if views:
            found.append(LooseObject(synset, model_id, folder, tuple(views)))
    if not found:
        raise LooseLayoutError(f"no views in {root}: expected <synset>/<model_id>/image_<i>.jpg and latent_<i>.npy")
    return found


def render_manifest(root: Path) -> dict | None:
    """The render manifest of a folder we rendered (one job's, or the first of an array's), else None."""
    paths = sorted(Path(root).glob("_manifest*.json"))
    if not paths:
        return None
    manifests = [json.loads(p.read_text()) for p in paths]
    for path, manifest in zip(paths[1:], manifests[1:]):
        if manifest["preset"] != manifests[0]["preset"] or manifest["views_per_object"] != manifests[0]["views_per_object"]:
            raise LooseLayoutError(f"{path} and {paths[0]} describe different renders (preset or views differ)")
    return manifests[0]


def passes_of(root: Path, objects: list[LooseObject] | None = None) -> tuple[str, ...]:
    """The named passes a folder holds: those its render manifest lists, else those whose files the first object's
    first view has (the published release has none)."""
    manifest = render_manifest(root)
    if manifest is not None:
        return tuple(manifest.get("passes", ()))
    first = (objects or list_objects(root))[0]
    return tuple(name for name, spec in PASSES.items() if (first.folder / spec.loose_name(first.views[0])).is_file())


def schema(root: Path, k: int) -> Preset:
    """The preset (latent names and ranges) of a folder: from our manifest, else SIE's (7 values, or 10 with translation)."""
    manifest = render_manifest(root)
    if manifest is not None:
        return preset_from_json(manifest["preset"])
    if k == len(LATENT_NAMES):
        return get_preset("3diebench")
    if k == len(LATENT_NAMES) + len(TRANSLATION_NAMES):
        return get_preset("3diebench-t")
    raise LooseLayoutError(f"{root}: latents have {k} values and there is no _manifest.json naming them")


def load_npy(path: Path) -> np.ndarray:
    """A small `.npy` file's array (no pickles), its header parsed once per process (`iebench.npy`)."""
    return parse_npy(Path(path).read_bytes())


def read_latents(obj: LooseObject, view: int) -> np.ndarray:
    """The latent vector of one view (float64), with a clear error naming the file."""
    path = latent_path(obj.folder, view)
    try:
        latents = load_npy(path)
    except ValueError as error:
        raise LooseLayoutError(f"{obj.key}: {path.name} is not a .npy file of latents ({error})") from None
    except OSError as error:
        raise LooseLayoutError(f"{obj.key}: cannot read {path.name}: {error}") from None
    if latents.ndim != 1 or not np.issubdtype(latents.dtype, np.floating):
        raise LooseLayoutError(f"{obj.key}: {path.name} holds {latents.dtype} of shape {latents.shape}, not a float vector")
    if not np.isfinite(latents).all():
        raise LooseLayoutError(f"{obj.key}: {path.name} holds NaN or infinite values")
    return latents.astype(np.float64)


def latent_count(objects: list[LooseObject]) -> int:
    """The latent vectors' length, from the first object whose first latent file reads (checks report the others)."""
    for obj in objects:
        try:
            return read_latents(obj, obj.views[0]).shape[0]
        except LooseLayoutError:
            continue
    raise LooseLayoutError(f"no object under {objects[0].folder.parent.parent} has a readable latent file")


def image_size(objects: list[LooseObject]) -> int:
    """The images' side in pixels, from the first object whose first image reads (checks report the others)."""
    for obj in objects:
        try:
            with Image.open(image_path(obj.folder, obj.views[0])) as image:
                return image.size[0]
        except OSError:
            continue
    raise LooseLayoutError(f"no object under {objects[0].folder.parent.parent} has a readable first image")


def loose_contact_sheet(root: Path, max_objects: int = 12, max_views: int = 8, tile: int = 128) -> Image.Image:
    """A contact sheet of a loose-layout folder, rows spread round-robin over the classes."""
    objects = list_objects(root)
    chosen = spread_over_classes(objects, lambda obj: obj.synset, max_objects)
    rows = []
    passes = [name for name in passes_of(root, objects) if PASSES[name].preview is not None]
    names = collection_class_names((render_manifest(root) or {}).get("object_source"))
    for obj in chosen:
        views = [(Image.open(image_path(obj.folder, v)), read_latents(obj, v)) for v in obj.views[:max_views]]
        rows.append(SheetRow(f"{class_name(obj.synset, names)}\n{obj.synset}\n{obj.model_id[:10]}", views))
        for name in passes:  # a row per pass under the object's images
            images = [(preview_image(name, (obj.folder / PASSES[name].loose_name(v)).read_bytes()), None) for v in obj.views[:max_views]]
            rows.append(SheetRow(name, images))
    return contact_sheet(rows, schema(root, len(rows[0].views[0][1])).latent_names, tile)
