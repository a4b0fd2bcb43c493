"""The dataset card: a README.md in the Hugging Face convention, written from `_info.json` alone."""

from __future__ import annotations

import math

from iebench.dataset.format import HF_SPLIT_NAMES, SPLITS
from iebench.passes import PASSES
from iebench.scene_constants import scene_record

CITATION = """@inproceedings{garrido2023sie,
  title     = {Self-Supervised Learning of Split Invariant Equivariant Representations},
  author    = {Garrido, Quentin and Najman, Laurent and LeCun, Yann},
  booktitle = {International Conference on Machine Learning (ICML)},
  year      = {2023}
}
@techreport{chang2015shapenet,
  title       = {{ShapeNet}: An Information-Rich {3D} Model Repository},
  author      = {Chang, Angel X. and Funkhouser, Thomas and Guibas, Leonidas and others},
  institution = {Stanford University, Princeton University, Toyota Technological Institute at Chicago},
  number      = {arXiv:1512.03012},
  year        = {2015}
}"""

_MEANING = {
    "rot_x": "object rotation about X (extrinsic XYZ Euler, Blender's XYZ mode)",
    "rot_y": "object rotation about Y",
    "rot_z": "object rotation about Z",
    "floor_hue": "floor colour HSV(h, {floor[saturation]:g}, {floor[value]:g})",
    "spot_theta": "polar angle of the spot light (radius {spot[distance]:g})",
    "spot_phi": "azimuth of the spot light",
    "spot_hue": "spot light colour HSV(h, {spot[saturation]:g}, {spot[value]:g})",
    "trans_x": "object translation along X, world frame",
    "trans_y": "object translation along Y, world frame",
    "trans_z": "object translation along Z, world frame",
}


def _meaning(name: str, scene: dict) -> str:
    """What a latent means, with the scene's numbers."""
    return _MEANING.get(name, "").format(**scene)


def _angle(radians: float) -> str:
    """pi/4 rather than 0.785."""
    for divisor in (1, 2, 3, 4, 6, 8, 16):
        if math.isclose(radians, math.pi / divisor):
            return "pi" if divisor == 1 else f"pi/{divisor}"
    return f"{radians:.3f}"


def _scene_sentence(scene: dict) -> str:
    """The scene in one sentence."""
    camera, floor, sun, spot = scene["camera"], scene["floor"], scene["sun"], scene["spot"]
    return (
        f"Scene: camera at distance {camera['distance']:g} (polar angle {_angle(camera['theta'])}, azimuth {_angle(camera['phi'])}); "
        f"floor plane at z = {floor['z']:g}; sun ({sun['energy']:g}, angle {_angle(sun['angle'])}) straight down; "
        f"spot light {spot['energy_w']:g} W, cone {_angle(spot['cone'])}; {scene['view_transform']} view transform."
    )


def _scene(info: dict) -> dict:
    """The scene the render manifest recorded; else (the original release, or a render from before manifests recorded
    it) the original generator's, which this toolkit has always rendered."""
    return (info.get("render_manifest") or {}).get("scene") or scene_record()


def _size_category(views: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if views < limit:
            return name
    return "10M<n<100M"


def _range(factor: dict) -> str:
    def num(x: float) -> str:
        for multiple, text in ((1, "pi"), (0.5, "pi/2"), (0.25, "pi/4"), (0.125, "pi/8"), (2, "2 pi")):
            if math.isclose(abs(x), multiple * math.pi, rel_tol=1e-9):
                return ("-" if x < 0 else "") + text
        return f"{x:g}"

    if "fixed" in factor:
        return f"fixed {num(factor['fixed'])}"
    return " U ".join(f"[{num(lo)}, {num(hi)}]" for lo, hi in factor["intervals"])


def _passes_note(passes: list[str]) -> list[str]:
    """What the passes are and the camera convention (nothing for an RGB-only set)."""
    if not passes:
        return []
    return [
        f"Each view also carries the passes {', '.join(f'`{p}`' for p in passes)}, from the same Cycles render as its image. "
        "The camera frame is OpenCV's (x right, y down, z forward; the centre of pixel (0, 0) at (0, 0)): `camera` holds "
        "`intrinsics` (3x3), `world_to_camera` (4x4) and the object's `object_to_world` (4x4), in Blender units (metres), "
        "Z up. Depth is planar (along the optical axis) and, with the mask, comes from each pixel's first sample "
        "(not anti-aliased); normals are averaged over samples and stored as unit vectors.",
        "",
    ]


def _licence_lines(source: dict) -> list[str]:
    """The header's licence: generated objects are free; a linked collection's own terms; else ShapeNet's."""
    collection = source.get("collection")
    if source.get("procedural", False):
        return ["license: cc0-1.0"]
    if not collection:
        return ["license: other", "license_name: shapenet-terms-of-use", "license_link: https://shapenet.org/terms"]
    terms = collection["licence"]
    if terms["id"] != "other":
        return [f"license: {terms['id']}"]
    return ["license: other", f"license_name: {terms['name']}", *([f"license_link: {terms['link']}"] if terms.get("link") else [])]


def _objects_sentence(source: dict) -> str:
    """Where the objects come from and the terms they come under."""
    collection = source.get("collection")
    if source.get("procedural", False):
        return (
            "**Objects**: procedurally generated everyday objects (free to use; no ShapeNet data). Each class carries the "
            "ShapeNet synset id of the same everyday class."
        )
    if not collection:
        return "**Objects**: ShapeNetCore v2 models; the images are subject to ShapeNet's terms of use (non-commercial research and education)."
    terms = collection["licence"]
    text = terms.get("text") or f"meshes under the licence {terms['name']} (as recorded when they were linked: check their source's terms)"
    sentence = f"**Objects**: {text}; linked from the `{collection['layout']}` layout ({collection['objects']} objects)."
    per_object = collection.get("object_licences") or {}
    if per_object:
        counts: dict[str, int] = {}
        for name in per_object.values():
            counts[name] = counts.get(name, 0) + 1
        listed = ", ".join(f"{count} {name}" for name, count in sorted(counts.items(), key=lambda x: (-x[1], x[0])))
        sentence += (
            f" Licences of the objects: {listed}; each object's is listed under `source.collection.object_licences` in `_info.json`."
        )
    return sentence


def _yaml_header(info: dict) -> list[str]:
    """The Hugging Face header: licence, tags, size, and one config with a split per data split."""
    name = info["name"]
    total_views = sum(info["splits"][s]["views"] for s in SPLITS)
    return [
        "---",
        *_licence_lines(info["source"]),
        f"pretty_name: {name}",
        "task_categories:",
        "- image-classification",
        "- image-feature-extraction",
        "tags:",
        "- self-supervised-learning",
        "- equivariance",
        "- 3d",
        "- webdataset",
        "- 3diebench",
        "size_categories:",
        f"- {_size_category(total_views)}",
        "configs:",
        "- config_name: default",
        "  data_files:",
        *[
            line
            for s in SPLITS
            if info["splits"][s]["shards"]
            for line in (f"  - split: {HF_SPLIT_NAMES[s]}", f'    path: "{name}-{s}-*.tar"')
        ],
        "---",
    ]


def _introduction(info: dict) -> list[str]:
    """What the data is, and the terms its objects come under."""
    views, resolution = info["views_per_object"], info["resolution"]
    return [
        f"# {info['name']}",
        "",
        f"Renderings in the style of 3DIEBench (Garrido et al., ICML 2023): {views} views per object, each with a known "
        f"3D rotation, floor colour and spot light, {resolution}x{resolution} JPEG. Written by {info['generator']}.",
        "",
        _objects_sentence(info["source"]),
    ]


def _format_section(info: dict) -> list[str]:
    """The members of a sample, and the files beside the shards."""
    views, passes = info["views_per_object"], info.get("passes", ())
    return [
        "## Format",
        "",
        "WebDataset shards, one sample per object, key `<synset>_<model_id>`:",
        "",
        "| field | content |",
        "|---|---|",
        f"| `000.jpg` ... `{views - 1:03d}.jpg` | the views, JPEG bytes as rendered |",
        f"| `latents.npy` | float64 array ({views}, {len(info['latent_names'])}), one row per view, columns below |",
        "| `cls` | label: index of the synset among the sorted class ids present |",
        "| `json` | synset, model id, class name, label, view count, latent names, preset |",
        *[
            f"| `000.{name}.{PASSES[name].extension}` ... `{views - 1:03d}.{name}.{PASSES[name].extension}` | {PASSES[name].description} |"
            for name in passes
        ],
        "",
        *_passes_note(passes),
        "Beside each shard, `<shard>.index.json` gives every member's byte offset, size and crc32. `_info.json` lists shards, "
        "objects, sizes and sha256 per split, and the sha256 of every other file but the writers' plans and manifests; "
        "`SHA256SUMS` (the same files and `_info.json`) works with `sha256sum -c`. The original SIE split files "
        "(`train_images.npy`, `train_labels.npy`, `val_images.npy`, `val_labels.npy`, `all_latents_train.npy`, "
        "`all_latents_val.npy`) are included, so the original SIE code can be pointed at this data.",
    ]


def _latents_section(info: dict, scene: dict) -> list[str]:
    """Each latent's index, range and meaning, the preset, and the relative rotation's convention."""
    preset = info["preset"]
    return [
        "## Latents",
        "",
        "| index | name | range | meaning |",
        "|---|---|---|---|",
        *[f"| {i} | `{f['name']}` | {_range(f)} | {_meaning(f['name'], scene)} |" for i, f in enumerate(preset["factors"])],
        "",
        f"Preset `{preset['name']}`: {preset['description']}" + (f" {preset['notes']}" if preset.get("notes") else ""),
        "",
        "Relative rotation between two views: R1^-1 R2 with R = from_euler('xyz', angles), as a quaternion (x, y, z, w).",
    ]


def _splits_section(info: dict) -> list[str]:
    """How the objects were split, and the size of each split and class."""
    split = info["split"]
    if split["method"] == "stratified":
        how = (
            f"Split by object, stratified per class: validation fraction {split['val_fraction']}, seed {split['seed']}. "
            f"Objects are spread over shards in a seeded random order (seed {info['shard_seed']})."
        )
    else:
        how = f"Split by object as in the original SIE split files ({split['path']})."
    lines = ["## Splits", "", how, "", "| split | objects | views | shards | size |", "|---|---|---|---|---|"]
    for s in SPLITS:
        data = info["splits"][s]
        lines.append(
            f"| {HF_SPLIT_NAMES[s]} | {data['objects']:,} | {data['views']:,} | {len(data['shards'])} | {data['bytes'] / 2**20:.1f} MiB |"
        )
    lines += ["", "| label | synset | class | train | validation |", "|---|---|---|---|---|"]
    return lines + [f"| {c['label']} | {c['synset']} | {c['name']} | {c['train']} | {c['val']} |" for c in info["classes"]]


def _generation_section(info: dict) -> list[str]:
    """The renderer, seed, recipe and scene, from the render manifest (none for the original release)."""
    manifest = info.get("render_manifest") or {}
    settings = manifest.get("render_settings")
    if not settings:
        return [
            "## Generation",
            "",
            "Packed from the original 3DIEBench release layout (no render manifest). " + _scene_sentence(_scene(info)),
        ]
    return [
        "## Generation",
        "",
        f"Rendered with Blender {manifest['renderer']['blender']} (Cycles), seed {manifest['seed']}: "
        f"{settings['samples']} samples per pixel"
        + (", adaptive sampling" if settings["adaptive_sampling"] else "")
        + (f", Intel OIDN denoiser ({settings['denoiser']})" if settings["denoiser"] != "off" else ", no denoiser")
        + f", JPEG quality {settings['jpeg_quality']}"
        + (", red and blue swapped as in the published files" if settings["legacy_bgr"] else ", correct RGB")
        + ". "
        + _scene_sentence(_scene(info)),
    ]


def render_card(info: dict) -> str:
    """Markdown text of the card: the YAML header, then the facts, section by section."""
    sections = [
        _introduction(info),
        _format_section(info),
        _latents_section(info, _scene(info)),
        _splits_section(info),
        _generation_section(info),
        ["## Citation", "", "```bibtex", CITATION, "```", ""],
    ]
    return "\n".join(_yaml_header(info) + [""] + [line for section in sections for line in (*section, "")][:-1])
