"""The embedded object set: everyday objects built from primitives, written in ShapeNet's layout.

Each class is one small builder that assembles parts (trimesh primitives with random proportions)
in a Z-up frame; every part gets its own colour, written as an MTL material (`Kd`), which Blender's
OBJ importer turns into the Principled BSDF base colour (vertex colours would render grey). Objects
are normalised as ShapeNet's are (bounding-box centre at the origin, unit bounding-box diagonal,
Y-up) and written as `<synset>/<model_id>/models/model_normalized.obj` + `.mtl`.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from iebench.files import write_atomic, write_json_atomic

MARKER = "_procedural.json"  # beside the class folders: marks generated (free) objects

Part = tuple[trimesh.Trimesh, tuple[float, float, float]]
Builder = Callable[[np.random.Generator], list[Part]]


def _colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A saturated, mid-bright random colour (reads well under the coloured spot light)."""
    return colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.35, 0.9), rng.uniform(0.45, 0.95))


def _box(centre: tuple[float, float, float], size: tuple[float, float, float]) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=size, transform=trimesh.transformations.translation_matrix(centre))


def _cylinder(centre, radius: float, height: float, axis: str = "z", sections: int = 24) -> trimesh.Trimesh:
    transform = trimesh.transformations.translation_matrix(centre)
    if axis == "x":
        transform = transform @ trimesh.transformations.rotation_matrix(math.pi / 2, (0, 1, 0))
    elif axis == "y":
        transform = transform @ trimesh.transformations.rotation_matrix(math.pi / 2, (1, 0, 0))
    return trimesh.creation.cylinder(radius=radius, height=height, sections=sections, transform=transform)


def _lathe(profile: list[tuple[float, float]], z0: float = 0.0) -> trimesh.Trimesh:
    """A solid of revolution about Z from (radius, height) points, bottom to top."""
    points = np.array([(r, z + z0) for r, z in profile], dtype=np.float64)
    return trimesh.creation.revolve(points, sections=32)


def _legs(half_x: float, half_y: float, height: float, thickness: float, round_legs: bool) -> list[trimesh.Trimesh]:
    legs = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            centre = (sx * (half_x - thickness), sy * (half_y - thickness), height / 2)
            if round_legs:
                legs.append(_cylinder(centre, thickness / 2, height, sections=12))
            else:
                legs.append(_box(centre, (thickness, thickness, height)))
    return legs


def build_chair(rng: np.random.Generator) -> list[Part]:
    """Seat on four legs with a backrest on one side."""
    w, d, leg_h = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6), rng.uniform(0.35, 0.5)
    seat_t, back_h, leg_t = rng.uniform(0.04, 0.08), rng.uniform(0.35, 0.6), rng.uniform(0.03, 0.06)
    wood, seat = _colour(rng), _colour(rng)
    parts: list[Part] = [(leg, wood) for leg in _legs(w / 2, d / 2, leg_h, leg_t, rng.random() < 0.5)]
    parts.append((_box((0, 0, leg_h + seat_t / 2), (w, d, seat_t)), seat))
    parts.append((_box((0, d / 2 - seat_t / 2, leg_h + seat_t + back_h / 2), (w, seat_t, back_h)), _colour(rng)))
    return parts


def build_table(rng: np.random.Generator) -> list[Part]:
    """A top on four legs, or on a pedestal with a drawer block on one side."""
    w, d, h = rng.uniform(0.8, 1.4), rng.uniform(0.5, 0.9), rng.uniform(0.5, 0.75)
    top_t, leg_t = rng.uniform(0.03, 0.07), rng.uniform(0.04, 0.08)
    top, wood = _colour(rng), _colour(rng)
    parts: list[Part] = [(_box((0, 0, h - top_t / 2), (w, d, top_t)), top)]
    if rng.random() < 0.5:
        parts += [(leg, wood) for leg in _legs(w / 2, d / 2, h - top_t, leg_t, rng.random() < 0.5)]
    else:
        parts.append((_box((-w / 4, 0, (h - top_t) / 2), (w / 3, d * 0.8, h - top_t)), wood))
        parts.append((_box((w / 2 - leg_t, 0, (h - top_t) / 2), (leg_t, d * 0.8, h - top_t)), wood))
    parts.append((_box((w / 4, -d / 2 + 0.01, h - top_t - 0.05), (w / 3, 0.02, 0.08)), _colour(rng)))
    return parts


def build_mug(rng: np.random.Generator) -> list[Part]:
    """A hollow cylinder with a handle on one side."""
    r, h, wall = rng.uniform(0.3, 0.45), rng.uniform(0.6, 1.0), rng.uniform(0.03, 0.06)
    body = _lathe([(0, 0), (r, 0), (r, h), (r - wall, h), (r - wall, wall), (0, wall)])
    handle = trimesh.creation.torus(major_radius=h * 0.28, minor_radius=wall * 1.2, major_sections=24, minor_sections=10)
    handle.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, (1, 0, 0)))
    handle.apply_translation((r + h * 0.12, 0, h * 0.5))
    return [(body, _colour(rng)), (handle, _colour(rng))]


def build_bottle(rng: np.random.Generator) -> list[Part]:
    """Body, shoulder, neck and cap, with a label band."""
    r, h = rng.uniform(0.15, 0.3), rng.uniform(0.6, 1.1)
    neck_r, neck_h = r * rng.uniform(0.25, 0.45), rng.uniform(0.15, 0.3)
    shoulder = rng.uniform(0.1, 0.25)
    glass = _lathe([(0, 0), (r, 0), (r, h), (neck_r, h + shoulder), (neck_r, h + shoulder + neck_h), (0, h + shoulder + neck_h)])
    cap = _cylinder((0, 0, h + shoulder + neck_h + 0.03), neck_r * 1.15, 0.06)
    label = _cylinder((0, 0, h * 0.5), r * 1.01, h * 0.35, sections=32)
    return [(glass, _colour(rng)), (cap, _colour(rng)), (label, _colour(rng))]


def build_lamp(rng: np.random.Generator) -> list[Part]:
    """Base, pole, an arm leaning to one side and a conical shade."""
    base_r, pole_h = rng.uniform(0.15, 0.25), rng.uniform(0.6, 1.0)
    arm = rng.uniform(0.15, 0.35)
    metal = _colour(rng)
    shade_r, shade_h = rng.uniform(0.15, 0.25), rng.uniform(0.15, 0.3)
    shade = _lathe([(shade_r, 0), (shade_r * 0.4, shade_h), (0, shade_h), (0, 0)], z0=pole_h - shade_h * 0.6)
    shade.apply_translation((arm, 0, 0))
    return [
        (_cylinder((0, 0, 0.025), base_r, 0.05), _colour(rng)),
        (_cylinder((0, 0, pole_h / 2), 0.02, pole_h, sections=12), metal),
        (_box((arm / 2, 0, pole_h), (arm, 0.03, 0.03)), metal),
        (shade, _colour(rng)),
    ]


def build_sofa(rng: np.random.Generator) -> list[Part]:
    """A seat block, a back along one side and two arms."""
    w, d, h = rng.uniform(1.2, 2.0), rng.uniform(0.6, 0.9), rng.uniform(0.25, 0.4)
    back_h, arm_w = rng.uniform(0.3, 0.5), rng.uniform(0.1, 0.2)
    fabric = _colour(rng)
    return [
        (_box((0, 0, h / 2), (w, d, h)), fabric),
        (_box((0, d / 2 - 0.1, h + back_h / 2), (w, 0.2, back_h)), _colour(rng)),
        (_box((-w / 2 + arm_w / 2, 0, h + 0.1), (arm_w, d, 0.2)), fabric),
        (_box((w / 2 - arm_w / 2, 0, h + 0.1), (arm_w, d, 0.2)), fabric),
    ]


def build_car(rng: np.random.Generator) -> list[Part]:
    """A body, a cabin set back towards the rear and four wheels."""
    length, width, body_h = rng.uniform(1.6, 2.2), rng.uniform(0.7, 0.9), rng.uniform(0.25, 0.4)
    cabin_l, wheel_r = length * rng.uniform(0.4, 0.55), rng.uniform(0.15, 0.22)
    paint, tyre = _colour(rng), (0.08, 0.08, 0.08)
    parts: list[Part] = [
        (_box((0, 0, wheel_r + body_h / 2), (length, width, body_h)), paint),
        (_box((-length * 0.12, 0, wheel_r + body_h + 0.12), (cabin_l, width * 0.85, 0.24)), _colour(rng)),
    ]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append((_cylinder((sx * length * 0.32, sy * width / 2, wheel_r), wheel_r, 0.12, axis="y"), tyre))
    return parts


def build_airplane(rng: np.random.Generator) -> list[Part]:
    """Fuselage with a nose cone, wings, and a tail fin at the back."""
    length, radius = rng.uniform(1.6, 2.4), rng.uniform(0.1, 0.16)
    span, chord = rng.uniform(1.4, 2.2), rng.uniform(0.25, 0.4)
    body, wing = _colour(rng), _colour(rng)
    nose = trimesh.creation.cone(radius=radius, height=radius * 2.5, sections=24)
    nose.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, (0, 1, 0)))
    nose.apply_translation((length / 2, 0, 0))
    return [
        (_cylinder((0, 0, 0), radius, length, axis="x"), body),
        (nose, _colour(rng)),
        (_box((length * 0.05, 0, 0), (chord, span, 0.04)), wing),
        (_box((-length / 2 + 0.12, 0, radius + 0.18), (0.22, 0.03, 0.36)), _colour(rng)),
        (_box((-length / 2 + 0.1, 0, 0.02), (0.16, span * 0.35, 0.03)), wing),
    ]


def build_guitar(rng: np.random.Generator) -> list[Part]:
    """Two-lobed body, a long neck and a head."""
    lower, upper = rng.uniform(0.3, 0.4), rng.uniform(0.22, 0.3)
    neck_l = rng.uniform(0.8, 1.1)
    body = _colour(rng)
    lobe1 = _cylinder((0, 0, 0), lower, 0.12, sections=32)
    lobe2 = _cylinder((0, lower + upper * 0.6, 0), upper, 0.12, sections=32)
    neck_y = lower + upper * 1.4 + neck_l / 2
    return [
        (lobe1, body),
        (lobe2, body),
        (_box((0, neck_y, 0.04), (0.08, neck_l, 0.05)), _colour(rng)),
        (_box((0.03, neck_y + neck_l / 2 + 0.1, 0.04), (0.12, 0.2, 0.04)), _colour(rng)),
        (_cylinder((0, lower * 0.3, 0.07), 0.08, 0.02), (0.05, 0.05, 0.05)),
    ]


def build_bookshelf(rng: np.random.Generator) -> list[Part]:
    """Two sides, a back panel and shelves, open at the front, with a few books."""
    w, d, h = rng.uniform(0.6, 1.0), rng.uniform(0.25, 0.4), rng.uniform(1.0, 1.8)
    t, shelves = 0.04, int(rng.integers(3, 6))
    wood = _colour(rng)
    parts: list[Part] = [
        (_box((-w / 2 + t / 2, 0, h / 2), (t, d, h)), wood),
        (_box((w / 2 - t / 2, 0, h / 2), (t, d, h)), wood),
        (_box((0, d / 2 - t / 4, h / 2), (w, t / 2, h)), _colour(rng)),
    ]
    for i in range(shelves + 1):
        z = t / 2 + i * (h - t) / shelves
        parts.append((_box((0, 0, z), (w - 2 * t, d, t)), wood))
    for i in range(shelves):
        book_h = (h - t) / shelves * rng.uniform(0.5, 0.85)
        book_w = (w - 2 * t) * rng.uniform(0.2, 0.5)
        x = -w / 2 + t + book_w / 2 + rng.uniform(0, w - 2 * t - book_w)
        parts.append((_box((x, 0.02, t + i * (h - t) / shelves + book_h / 2), (book_w, d * 0.8, book_h)), _colour(rng)))
    return parts


def build_display(rng: np.random.Generator) -> list[Part]:
    """A thin screen on a neck and a foot that reach out behind it."""
    w, h = rng.uniform(0.9, 1.4), rng.uniform(0.5, 0.8)
    neck_h = rng.uniform(0.15, 0.3)
    frame = _colour(rng)
    return [
        (_box((0, 0, neck_h + h / 2), (w, 0.05, h)), frame),
        (_box((0, -0.026, neck_h + h / 2), (w * 0.92, 0.005, h * 0.88)), (0.03, 0.05, 0.12)),
        (_box((0, 0.08, neck_h / 2 + 0.05), (0.08, 0.05, neck_h + 0.1)), frame),
        (_box((0, 0.1, 0.015), (w * 0.4, 0.3, 0.03)), _colour(rng)),
    ]


def build_bench(rng: np.random.Generator) -> list[Part]:
    """A long slatted seat on two side frames, with a backrest."""
    w, d, h = rng.uniform(1.2, 2.0), rng.uniform(0.35, 0.5), rng.uniform(0.35, 0.5)
    slats, frame = int(rng.integers(3, 6)), _colour(rng)
    wood = _colour(rng)
    parts: list[Part] = []
    for sx in (-1, 1):
        parts.append((_box((sx * (w / 2 - 0.1), 0, h / 2), (0.06, d, h)), frame))
    for i in range(slats):
        y = -d / 2 + (i + 0.5) * d / slats
        parts.append((_box((0, y, h), (w, d / slats * 0.8, 0.04)), wood))
    parts.append((_box((0, d / 2, h + 0.3), (w, 0.04, 0.25)), wood))
    parts.append((_box((-(w / 2 - 0.1), d / 2, h + 0.15), (0.05, 0.05, 0.3)), frame))
    parts.append((_box((w / 2 - 0.1, d / 2, h + 0.15), (0.05, 0.05, 0.3)), frame))
    return parts


def build_bowl(rng: np.random.Generator) -> list[Part]:
    """A flared hollow bowl on a foot ring, with a spoon resting in it."""
    r, h, wall = rng.uniform(0.4, 0.6), rng.uniform(0.2, 0.35), 0.03
    body = _lathe([(0, 0), (r * 0.45, 0), (r, h), (r - wall, h), (r * 0.45 - wall, wall), (0, wall)])
    foot = _lathe([(r * 0.3, -0.04), (r * 0.4, -0.04), (r * 0.4, 0.0), (r * 0.3, 0.0)])
    spoon = _box((r * 0.3, 0, h * 0.8), (r * 1.3, 0.05, 0.02))
    spoon.apply_transform(trimesh.transformations.rotation_matrix(0.35, (0, 1, 0), point=(r * 0.3, 0, h * 0.8)))
    return [(body, _colour(rng)), (foot, _colour(rng)), (spoon, _colour(rng))]


# ShapeNet synset id of the same everyday class -> builder.
BUILDERS: dict[str, Builder] = {
    "02691156": build_airplane,
    "02828884": build_bench,
    "02871439": build_bookshelf,
    "02876657": build_bottle,
    "02880940": build_bowl,
    "02958343": build_car,
    "03001627": build_chair,
    "03211117": build_display,
    "03467517": build_guitar,
    "03636649": build_lamp,
    "03797390": build_mug,
    "04256520": build_sofa,
    "04379243": build_table,
}


@dataclass(frozen=True)
class ProceduralObject:
    """A generated object: where it was written and how it was made."""

    synset: str
    model_id: str
    path: Path


def model_id_for(seed: int, synset: str, index: int) -> str:
    """A 32-hex-digit id like ShapeNet's, fixed by (seed, class, index)."""
    return hashlib.sha256(f"iebench-procedural/{seed}/{synset}/{index}".encode()).hexdigest()[:32]


def normalise_parts(parts: list[Part]) -> list[Part]:
    """Centre on the bounding box, scale to unit diagonal and turn Z-up into ShapeNet's Y-up."""
    vertices = np.concatenate([mesh.vertices for mesh, _ in parts])
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    centre, diagonal = (lo + hi) / 2, float(np.linalg.norm(hi - lo))
    z_up_to_y_up = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=np.float64)
    out = []
    for mesh, colour in parts:
        moved = (mesh.vertices - centre) / diagonal
        out.append((trimesh.Trimesh(moved @ z_up_to_y_up.T, mesh.faces, process=False), colour))
    return out


def obj_text(parts: list[Part], mtl_name: str) -> tuple[str, str]:
    """OBJ and MTL text for coloured parts: one group and one material per part."""
    obj = [f"# iebench procedural object\nmtllib {mtl_name}\n"]
    mtl = ["# iebench procedural materials\n"]
    offset = 1
    for index, (mesh, colour) in enumerate(parts):
        mtl.append(
            f"newmtl part{index}\nKd {colour[0]:.6f} {colour[1]:.6f} {colour[2]:.6f}\nKa 0 0 0\nKs 0.1 0.1 0.1\nNs 20\nd 1\nillum 2\n\n"
        )
        obj.append(f"g part{index}\nusemtl part{index}\n")
        obj.extend(f"v {x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in mesh.vertices)
        obj.extend(f"f {a + offset} {b + offset} {c + offset}\n" for a, b, c in mesh.faces)
        offset += len(mesh.vertices)
    return "".join(obj), "".join(mtl)


def write_object(root: Path, synset: str, model_id: str, parts: list[Part]) -> Path:
    """Write one object in ShapeNet's layout; the OBJ is renamed into place last, so it marks completion."""
    folder = Path(root) / synset / model_id / "models"
    folder.mkdir(parents=True, exist_ok=True)
    obj, mtl = obj_text(normalise_parts(parts), "model_normalized.mtl")
    write_atomic(folder / "model_normalized.mtl", mtl.encode())
    write_atomic(folder / "model_normalized.obj", obj.encode())
    return folder / "model_normalized.obj"


def generate(root: Path, classes: int, per_class: int, seed: int = 0) -> list[ProceduralObject]:
    """Write `per_class` objects of each of the first `classes` classes (sorted by synset) under `root`."""
    if not 1 <= classes <= len(BUILDERS):
        raise ValueError(f"--classes must be between 1 and {len(BUILDERS)}, got {classes}")
    if per_class < 1:
        raise ValueError(f"--per-class must be at least 1, got {per_class}")
    settings = {"seed": seed, "classes": classes, "per_class": per_class}
    marker = Path(root) / MARKER
    if marker.is_file():
        try:
            made = json.loads(marker.read_text())
        except ValueError:
            made = None
        if not isinstance(made, dict):
            raise ValueError(f"{marker} is not the record of a procedural set: choose a new folder")
        if {k: made.get(k) for k in settings} != settings:
            raise ValueError(
                f"{root} holds procedural objects made with seed {made.get('seed')}, {made.get('classes')} classes and "
                f"{made.get('per_class')} per class: choose a new folder (the two sets would mix)"
            )
    objects = []
    for class_index, synset in enumerate(sorted(BUILDERS)[:classes]):
        for index in range(per_class):
            rng = np.random.default_rng(np.random.SeedSequence([seed, class_index, index]))
            model_id = model_id_for(seed, synset, index)
            path = write_object(root, synset, model_id, BUILDERS[synset](rng))
            objects.append(ProceduralObject(synset, model_id, path))
    write_json_atomic(
        Path(root) / MARKER,
        {"generator": "iebench procedural", **settings, "license": "free to use (generated objects)"},
    )
    return objects


def is_procedural(root: Path) -> bool:
    """Whether an object root was written by this generator (its marker file is there)."""
    return (Path(root) / MARKER).is_file()
