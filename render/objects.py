"""Object sources: ShapeNetCore v2 layout scans and object selection.

Layout: `<root>/<synset>/<model_id>/models/model_normalized.obj` (+ .mtl, textures under images/).
A folder of other meshes in the same `<class>/<id>/` layout works too: the mesh is the folder's
`models/model_normalized.obj` or else its single mesh file (OBJ, glTF/GLB, PLY and STL through Blender's importers; OFF via trimesh).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from iebench.object_lists import object_folders

MESH_SUFFIXES = (".obj", ".off", ".ply", ".stl", ".glb", ".gltf")
NATIVE_SUFFIXES = (".obj", ".ply", ".stl", ".glb", ".gltf")  # what Blender's own importers read; the rest goes through trimesh


class ObjectSourceError(ValueError):
    """An object root that cannot be used; the message names the path."""


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One object to render: its class (synset) id, model id and mesh file."""

    synset: str
    model_id: str
    mesh: Path

    @property
    def key(self) -> str:
        """`<synset>/<model_id>`, the object's id in messages, manifests and failure files."""
        return f"{self.synset}/{self.model_id}"


def find_mesh(folder: Path) -> Path:
    """The mesh of an object folder: ShapeNet's normalised OBJ, else its single mesh file, else where ShapeNet's would
    be (the render then reports the object as having no mesh file)."""
    shapenet = folder / "models" / "model_normalized.obj"
    if shapenet.is_file():
        return shapenet
    for place in (folder / "models", folder):
        if place.is_dir():
            meshes = sorted(p for p in place.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
            if len(meshes) == 1:
                return meshes[0]
    return shapenet


def scan_root(root: Path) -> list[ObjectRef]:
    """Every object under a ShapeNet-layout root, sorted; a clear error if there is none."""
    root = Path(root)
    if not root.is_dir():
        raise ObjectSourceError(f"object root {root} does not exist or is not a folder")
    # A folder without a mesh is still listed: the renderer reports it as a failure.
    objects = [ObjectRef(synset, model_id, find_mesh(folder)) for synset, model_id, folder in object_folders(root)]
    if not objects:
        raise ObjectSourceError(f"no objects in {root}: expected ShapeNetCore's layout <synset>/<model_id>/models/model_normalized.obj")
    if not any(ref.mesh.is_file() for ref in objects):
        raise ObjectSourceError(
            f"no meshes in {root}: none of its {len(objects)} object folders holds a mesh file (a render output is not an object set)"
        )
    return objects


def select_objects(root: Path, listed: list[tuple[str, str]] | None = None) -> list[ObjectRef]:
    """The objects to render: all of `root`, or those of a list (looked up under `root`)."""
    if listed is None:
        return scan_root(root)
    root = Path(root)
    if not root.is_dir():
        raise ObjectSourceError(f"object root {root} does not exist or is not a folder")
    objects = []
    for synset, model_id in sorted(set(listed)):
        folder = root / synset / model_id
        objects.append(ObjectRef(synset, model_id, find_mesh(folder)))
    return objects


def partition(objects: list[ObjectRef], job_index: int, num_jobs: int) -> list[ObjectRef]:
    """The objects of job `job_index` out of `num_jobs`: every num_jobs-th of the sorted list."""
    if num_jobs < 1 or not 0 <= job_index < num_jobs:
        raise ObjectSourceError(f"--job-index must be in [0, {num_jobs}) and --num-jobs at least 1")
    return sorted(objects)[job_index::num_jobs]
