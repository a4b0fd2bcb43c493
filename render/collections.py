"""Object collections in other layouts, linked into ShapeNet's: `<class>/<model_id>/models/model_normalized.<ext>`.

`iebench objects link SRC OUT --layout NAME` builds that layout out of symbolic links (nothing is
copied), so every other command reads any collection as it reads ShapeNetCore. The layouts:

| layout | SRC holds | class |
|---|---|---|
| `shapenet` | `<synset>/<model_id>/models/model_normalized.obj` (+ .mtl, images/) | the synset folder |
| `class-folders` | `<class>/<name>.<ext>`, one mesh per object (ShapeNetCore's GLB distribution, ABO) | the class folder |
| `gso` | `<name>/meshes/model.obj` + `model.mtl`, `materials/textures/texture.png` (Google Scanned Objects) | from --classes |
| `objaverse` | `<uid>.glb` files in any sub-folders | from --classes (a category file) |
| `flat` | mesh files, one per object, directly in SRC | from --classes |

A classes file (`--classes`) is a CSV with the header `mesh,class` (and optionally `licence`): each
mesh path relative to SRC and its class name; meshes it does not list are left out (and counted).
`_collection.json` in OUT records the layout, the licence, the class names and any per-object
licences; `iebench render` carries it into its manifest and the dataset card states it.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from iebench.render.objects import MESH_SUFFIXES

COLLECTION_FILE = "_collection.json"
COLLECTION_FORMAT = "iebench-collection/1"
LAYOUTS = ("shapenet", "class-folders", "gso", "objaverse", "flat")
UNCLASSIFIED = "objects"  # the one class of a layout without classes, when no --classes file is given
SELF_CONTAINED = (".glb", ".ply", ".stl", ".off")  # mesh files that reference no other file

# The terms each known collection comes under (the card states them; `other` is whatever --licence says).
LICENCES: dict[str, dict] = {
    "shapenet": {
        "id": "other",
        "name": "shapenet-terms-of-use",
        "link": "https://shapenet.org/terms",
        "text": "ShapeNetCore models; the images are subject to ShapeNet's terms of use (non-commercial research and education)",
    },
    "gso": {
        "id": "cc-by-4.0",
        "name": "CC BY 4.0",
        "link": "https://creativecommons.org/licenses/by/4.0/",
        "text": "Google Scanned Objects (Downs et al., ICRA 2022), licensed CC BY 4.0: credit Google LLC",
    },
    "abo": {
        "id": "cc-by-nc-4.0",
        "name": "CC BY-NC 4.0",
        "link": "https://creativecommons.org/licenses/by-nc/4.0/",
        "text": "Amazon Berkeley Objects (Collins et al., CVPR 2022), licensed CC BY-NC 4.0 (non-commercial): credit Amazon.com",
    },
    "objaverse": {
        "id": "other",
        "name": "per-object",
        "link": "https://objaverse.allenai.org",
        "text": "Objaverse (Deitke et al., CVPR 2023) objects, each under its own licence (mostly CC BY variants; some non-commercial)",
    },
}
DEFAULT_COLLECTION = {"shapenet": "shapenet", "gso": "gso", "objaverse": "objaverse", "class-folders": "other", "flat": "other"}


class LinkError(ValueError):
    """A collection that cannot be linked; the message names the file and says what to do."""


@dataclass(frozen=True)
class SourceObject:
    """One object found in SRC: its mesh, the folder that holds all its files, and its model id."""

    mesh: Path  # relative to SRC
    root: Path | None  # relative to SRC: a folder holding only this object (linked whole), or None (a file among others)
    model_id: str
    class_folder: str | None = None  # the class its layout gives (shapenet, class-folders)


@dataclass
class LinkReport:
    """What `link` did."""

    linked: int = 0
    classes: dict[str, str] = field(default_factory=dict)  # class id -> name
    left_out: list[str] = field(default_factory=list)  # meshes the classes file does not list
    not_found: list[str] = field(default_factory=list)  # classes file rows naming no mesh of SRC
    record: dict = field(default_factory=dict)  # what `_collection.json` says


def safe_id(name: str) -> str:
    """A class or model id that can name a folder and a WebDataset key: no '.', '/', '\\', spaces or control characters."""
    return re.sub(r"[^\w\-+,()']+", "_", name.strip()).strip("_")


def _meshes_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)


def find_objects(src: Path, layout: str) -> list[SourceObject]:
    """Every object of SRC in the layout, sorted by mesh path."""
    src = Path(src)
    found: list[SourceObject] = []
    if layout == "shapenet":
        from iebench.object_lists import object_folders
        from iebench.render.objects import find_mesh

        for synset, model_id, folder in object_folders(src):
            mesh = find_mesh(folder)
            if mesh.is_file():
                found.append(SourceObject(mesh.relative_to(src), folder.relative_to(src), model_id, synset))
    elif layout == "class-folders":
        for folder in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            found += [SourceObject(m.relative_to(src), None, m.stem, folder.name) for m in _meshes_in(folder)]
    elif layout == "gso":
        for folder in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            meshes = _meshes_in(folder / "meshes") if (folder / "meshes").is_dir() else []
            if len(meshes) == 1:
                found.append(SourceObject(meshes[0].relative_to(src), folder.relative_to(src), folder.name))
    elif layout == "objaverse":
        found = [SourceObject(p.relative_to(src), None, p.stem) for p in sorted(src.rglob("*")) if p.suffix.lower() in (".glb", ".gltf")]
    elif layout == "flat":
        found = [SourceObject(p.relative_to(src), None, p.stem) for p in _meshes_in(src)]
    else:
        raise LinkError(f"--layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    return sorted(found, key=lambda o: o.mesh.as_posix())


def read_classes(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(mesh path -> class name, mesh path -> licence) from a `mesh,class[,licence]` CSV."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            header = reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LinkError(f"classes file {path} cannot be read ({error})") from None
    if not rows or "mesh" not in header or "class" not in header:
        raise LinkError(f"classes file {path}: expected a CSV with the header mesh,class (and rows), got {','.join(header) or 'nothing'}")
    classes, licences = {}, {}
    for number, row in enumerate(rows, start=2):
        mesh, name = (row.get("mesh") or "").strip().replace("\\", "/"), (row.get("class") or "").strip()
        if not mesh or not name or not safe_id(name):
            raise LinkError(f"classes file {path}, line {number}: needs a mesh path and a class name with a letter or digit")
        if classes.setdefault(mesh, name) != name:
            raise LinkError(f"classes file {path}, line {number}: {mesh} is listed twice with different classes")
        if (row.get("licence") or "").strip():
            licences[mesh] = row["licence"].strip()
    return classes, licences


def _class_of(obj: SourceObject, listed: dict[str, str] | None) -> str | None:
    """The object's class name: from the classes file when given (None: not listed), else its layout's."""
    if listed is not None:
        return listed.get(obj.mesh.as_posix())
    return obj.class_folder or UNCLASSIFIED


def _link_object(src: Path, out: Path, obj: SourceObject) -> None:
    """Link one object into `out` (its `<class>/<model_id>/` folder, created): the mesh as models/model_normalized.<ext>,
    and what it may reference beside it."""
    mesh = src / obj.mesh
    if obj.root is not None and obj.mesh.parent == obj.root / "models" and mesh.stem == "model_normalized":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.symlink_to(src / obj.root, target_is_directory=True)  # ShapeNet's own layout: the whole folder
        return
    models = out / "models"
    models.mkdir(parents=True)
    (models / f"model_normalized{mesh.suffix.lower()}").symlink_to(mesh)
    if mesh.suffix.lower() not in SELF_CONTAINED:  # an OBJ's .mtl and textures, a .gltf's buffers and images, by relative path
        # In the object's own folder every other file may belong to it; among other objects' files only what it names.
        names = _own_files(mesh) if obj.root is not None else _referenced_files(mesh)
        for name in names:
            sibling = mesh.parent / name
            (models / name).symlink_to(sibling, target_is_directory=sibling.is_dir())
    if obj.root is not None:  # the object's other folders (GSO's materials/textures) one level up, as from the mesh's folder
        for entry in sorted((src / obj.root).iterdir()):
            if entry != mesh.parent and not (out / entry.name).exists():
                (out / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())


def _own_files(mesh: Path) -> list[str]:
    """Every entry beside a mesh in its object's own folder, other meshes and hidden files aside."""
    return sorted(p.name for p in mesh.parent.iterdir() if p.suffix.lower() not in MESH_SUFFIXES and not p.name.startswith("."))


_TEXTURE_STATEMENTS = (b"map_", b"bump", b"disp", b"decal", b"refl", b"norm")


def _names_in(path: Path) -> list[str]:
    """The files an OBJ (its mtllib), an MTL (its maps, the file name last on the line) or a glTF (buffer and image uris)
    names, as written."""
    if path.suffix.lower() == ".gltf":
        from urllib.parse import unquote

        try:
            gltf = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return []
        items = [*gltf.get("buffers", []), *gltf.get("images", [])] if isinstance(gltf, dict) else []
        return [
            unquote(i["uri"]) for i in items if isinstance(i, dict) and isinstance(i.get("uri"), str) and not i["uri"].startswith("data:")
        ]
    names = []
    with open(path, "rb") as file:
        for line in file:
            words = line.split()
            if len(words) >= 2 and (words[0] == b"mtllib" or words[0].lower().startswith(_TEXTURE_STATEMENTS)):
                names += [w.decode("utf-8", "replace") for w in (words[1:] if words[0] == b"mtllib" else words[-1:])]
    return names


def _referenced_files(mesh: Path) -> list[str]:
    """The entries of the mesh's folder that it (and its MTL files) name: a path's first folder, or a stale path's file
    name when a file of that name is there; so that a folder of many OBJs does not give each object every other's files."""
    folder, found = mesh.parent, set()
    queue = [mesh]
    while queue:
        for written in _names_in(queue.pop()):
            parts = [p for p in written.replace("\\", "/").split("/") if p not in ("", ".")]
            relative = parts and not written.startswith(("/", "\\")) and ".." not in parts and ":" not in parts[0]
            name = parts[0] if relative and (folder / parts[0]).exists() else (parts[-1] if parts else "")
            if not name or name in found or not (folder / name).exists() or (folder / name).suffix.lower() in MESH_SUFFIXES:
                continue
            found.add(name)
            if name.lower().endswith(".mtl") and (folder / name).is_file():
                queue.append(folder / name)
    return sorted(found)


def _record(src: Path, layout: str, collection: str, licence: str | None, report: LinkReport, licences: dict[str, str]) -> dict:
    """The `_collection.json` of a linked collection."""
    terms = dict(LICENCES.get(collection) or {"id": licence or "unknown", "name": licence or "not recorded", "link": None, "text": None})
    if licence and collection in LICENCES:
        terms |= {"id": licence, "name": licence}
    return {
        "format": COLLECTION_FORMAT,
        "layout": layout,
        "collection": collection,
        "source": str(src),
        "licence": terms,
        "classes": dict(sorted(report.classes.items())),
        "object_licences": dict(sorted(licences.items())),
        "objects": report.linked,
        "left_out": len(report.left_out),
    }


def link(src: Path, out: Path, layout: str, classes_file: Path | None = None, collection: str | None = None, licence: str | None = None):
    """Link SRC's objects into OUT in ShapeNet's layout; OUT must not exist (it is built under a temporary name and
    renamed). Returns a `LinkReport`."""
    src, out = Path(src).absolute(), Path(out)
    if layout not in LAYOUTS:
        raise LinkError(f"--layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if not src.is_dir():
        raise LinkError(f"{src} does not exist or is not a folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LinkError(f"{out} already exists: link into a new folder")
    collection = collection or DEFAULT_COLLECTION[layout]
    listed, per_object = read_classes(classes_file) if classes_file else (None, {})
    objects = find_objects(src, layout)
    if not objects:
        raise LinkError(f"no objects in {src} for --layout {layout}: {_expected(layout)}")
    report = LinkReport()
    work = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    work.mkdir(parents=True)
    try:
        licences = _link_all(src, work, objects, listed, per_object, report)
        if listed is not None:
            present = {o.mesh.as_posix() for o in objects}
            report.not_found = sorted(m for m in listed if m not in present)
        if not report.linked:
            raise LinkError(f"{classes_file} lists none of the {len(objects)} meshes of {src} (mesh paths are relative to SRC)")
        report.record = _record(src, layout, collection, licence, report, licences)
        (work / COLLECTION_FILE).write_text(json.dumps(report.record, indent=1) + "\n")
        if out.exists():
            out.rmdir()
        work.rename(out)
    except BaseException:
        _remove_links(work)
        raise
    return report


def _link_all(
    src: Path, work: Path, objects: list[SourceObject], listed: dict[str, str] | None, per_object: dict[str, str], report: LinkReport
) -> dict[str, str]:
    """Link each object its class is known for into `work`; returns the per-object licences by `<class>/<model_id>`."""
    placed: dict[tuple[str, str], Path] = {}
    licences = {}
    for obj in objects:
        name = _class_of(obj, listed)
        if name is None:
            report.left_out.append(obj.mesh.as_posix())
            continue
        class_id, model_id = safe_id(name), safe_id(obj.model_id)
        if report.classes.setdefault(class_id, name) != name:
            raise LinkError(f"classes {report.classes[class_id]!r} and {name!r} would share the folder {class_id}: rename one")
        other = placed.setdefault((class_id, model_id), obj.mesh)
        if other != obj.mesh:
            raise LinkError(f"{other} and {obj.mesh} would both be {class_id}/{model_id}: give them different classes or names")
        _link_object(src, work / class_id / model_id, obj)
        if obj.mesh.as_posix() in per_object:
            licences[f"{class_id}/{model_id}"] = per_object[obj.mesh.as_posix()]
        report.linked += 1
    return licences


def _remove_links(folder: Path) -> None:
    """Delete a half-built link tree (links and the folders made for them; never what they point at)."""
    if not folder.exists():
        return
    for current, dirs, files in os.walk(folder, topdown=False):
        for name in files + dirs:
            path = Path(current) / name
            if path.is_symlink() or path.is_file():
                path.unlink()
            else:
                path.rmdir()
    folder.rmdir()


def _expected(layout: str) -> str:
    return {
        "shapenet": "expected <synset>/<model_id>/models/model_normalized.obj",
        "class-folders": "expected <class>/<name>.glb (or another mesh file), one per object",
        "gso": "expected <name>/meshes/model.obj",
        "objaverse": "expected <uid>.glb files (in any sub-folders)",
        "flat": f"expected mesh files ({', '.join(MESH_SUFFIXES)}) directly in it",
    }[layout]


def read_collection(root: Path | None) -> dict | None:
    """The `_collection.json` of a linked object folder, or None (ShapeNetCore itself, procedural objects)."""
    path = Path(root) / COLLECTION_FILE if root is not None else None
    if path is None or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise LinkError(f"{path} is not valid JSON ({error}): link the collection again") from None
    return record if isinstance(record, dict) and record.get("format") == COLLECTION_FORMAT else None
