"""Object collections beyond ShapeNet's OBJ folders: native glTF/PLY/STL import, `objects link`, classes from a file.

The models are the vendored third-party ones (tests/data/thirdparty/SOURCES.md), turned into the other
formats here with trimesh: the duck keeps its texture in its GLB (embedded) and as vertex colours in its PLY.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from iebench.render.collections import LinkError, link, safe_id
from iebench.render.job import RenderJob, run
from iebench.render.objects import scan_root
from iebench.render.settings import RenderSettings

from ..conftest import THIRD_PARTY

pytest.importorskip("bpy", reason="the render extra (bpy) is part of the dev set-up")

DUCK = THIRD_PARTY / "toys" / "duck"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "iebench.cli", *args]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def magenta(image: np.ndarray) -> int:
    rgb = image.astype(int)
    return int(((rgb[..., 0] > 200) & (rgb[..., 2] > 200) & (rgb[..., 1] < 80)).sum())


def duck_mesh() -> trimesh.Trimesh:
    """The duck with its texture as a glTF material that means what the OBJ's does: no metal, the MTL's roughness
    (Blender reads Ns 96 as roughness 0.69), the texture as the whole base colour (the MTL's map_Kd replaces its Kd)."""
    mesh = trimesh.load(DUCK / "models" / "duck.obj", force="mesh")
    mesh.visual.material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=Image.open(DUCK / "images" / "duckCM.png"),
        baseColorFactor=[255, 255, 255, 255],
        metallicFactor=0.0,
        roughnessFactor=0.69,
    )
    return mesh


@pytest.fixture(scope="module")
def collection_src(tmp_path_factory) -> Path:
    """A flat folder of real third-party models as GLB, PLY and STL files."""
    src = tmp_path_factory.mktemp("flat")
    duck = duck_mesh()
    duck.export(src / "duck.glb")
    coloured = duck.copy()
    coloured.visual = duck.visual.to_color()  # the texture sampled at the vertices: a PLY carries colours, not images
    coloured.export(src / "duck-colours.ply")
    jenga = trimesh.load(THIRD_PARTY / "toys" / "jenga" / "jenga.obj", force="mesh")
    jenga.visual = jenga.visual.to_color() if hasattr(jenga.visual, "to_color") else jenga.visual
    jenga.export(src / "jenga.glb")
    trimesh.load(THIRD_PARTY / "toys" / "block000" / "models" / "000.obj", force="mesh").export(src / "block000.stl")
    shutil.copy(src / "jenga.glb", src / "not-listed.glb")
    return src


def test_a_textured_glb_renders_as_its_obj_twin(tmp_path):
    obj_root, glb_root = tmp_path / "obj", tmp_path / "glb"
    shutil.copytree(DUCK, obj_root / "toys" / "duck")  # the OBJ, its stale texture path found by name
    (glb_root / "toys" / "duck" / "models").mkdir(parents=True)
    duck_mesh().export(glb_root / "toys" / "duck" / "models" / "model_normalized.glb")
    images = []
    for root in (obj_root, glb_root):  # the same ids: the same latents, so the same views
        job = RenderJob(
            objects=tuple(scan_root(root)),
            out=root / "out",
            preset=__import__("iebench.presets", fromlist=["get_preset"]).get_preset("3diebench"),
            views=2,
            settings=RenderSettings(resolution=96, samples=8, denoiser="fast"),
            workers=1,
        )
        summary = run(job)
        assert summary.failures == {} and summary.warnings == {}
        images.append([np.asarray(Image.open(job.out / "toys" / "duck" / f"image_{v}.jpg")) for v in range(2)])
    for obj_view, glb_view in zip(*images):
        assert magenta(glb_view) == 0 and magenta(obj_view) == 0
        assert psnr(obj_view, glb_view) >= 24
        yellow = (glb_view[..., 0].astype(int) > 150) & (glb_view[..., 2].astype(int) < 90)  # the texture's yellow, not grey
        assert yellow.sum() > 100


def test_flat_glbs_with_a_classes_file_become_a_labelled_packed_set(collection_src, tmp_path):
    classes = tmp_path / "classes.csv"
    classes.write_text(
        "mesh,class,licence\n"
        "duck.glb,rubber duck,SCEA-1.0\n"
        "duck-colours.ply,rubber duck,SCEA-1.0\n"
        "jenga.glb,toy.block,Zlib\n"
        "block000.stl,toy.block,Zlib\n"
        "gone.glb,toy.block,Zlib\n"
    )
    objs, renders, shards = tmp_path / "objs", tmp_path / "renders", tmp_path / "shards"
    done = subprocess.run(
        cli("objects", "link", str(collection_src), str(objs), "--layout", "flat", "--classes", str(classes), "--licence", "mixed"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "linked 4 objects of 2 classes" in done.stdout and "1 meshes left out" in done.stdout and "not-listed.glb" in done.stdout
    assert "1 rows of" in done.stderr and "gone.glb" in done.stderr
    link_target = objs / "rubber_duck" / "duck" / "models" / "model_normalized.glb"
    assert link_target.is_symlink() and link_target.resolve() == (collection_src / "duck.glb").resolve()  # a link, not a copy
    assert {ref.key for ref in scan_root(objs)} == {"rubber_duck/duck", "rubber_duck/duck-colours", "toy_block/jenga", "toy_block/block000"}

    render = subprocess.run(
        cli("render", str(objs), "--out", str(renders), "--views", "2", "--resolution", "32", "--samples", "2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert render.returncode == 0, render.stderr
    assert not (renders / "_failures.jsonl").exists()  # no missing texture: the GLB's embedded image was used
    manifest = json.loads((renders / "_manifest.json").read_text())
    assert manifest["object_source"]["collection"]["classes"] == {"rubber_duck": "rubber duck", "toy_block": "toy.block"}
    duck = np.asarray(Image.open(renders / "rubber_duck" / "duck" / "image_0.jpg"))
    assert magenta(duck) == 0

    packed = subprocess.run(cli("pack", str(renders), str(shards), "--val-fraction", "0.5"), capture_output=True, text=True, timeout=300)
    assert packed.returncode == 0, packed.stderr
    info = subprocess.run(cli("info", str(shards)), capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    rows = {line.split()[0]: line for line in info.stdout.splitlines() if line.strip()[:1].isdigit()}
    assert "rubber_duck" in rows["0"] and "rubber duck" in rows["0"] and "toy_block" in rows["1"] and "toy.block" in rows["1"]
    assert "licence mixed" in info.stdout and "4 objects with their own" in info.stdout
    card = (shards / "README.md").read_text()
    assert "license: mixed" in card and "| 0 | rubber_duck | rubber duck |" in card and "2 SCEA-1.0, 2 Zlib" in card

    from iebench.loaders import ViewDataset

    labels = {item["key"]: int(item["label"]) for split in ("train", "val") for item in ViewDataset(shards, split=split)}
    assert labels == {"rubber_duck_duck": 0, "rubber_duck_duck-colours": 0, "toy_block_jenga": 1, "toy_block_block000": 1}


def test_gso_layout_links_its_materials_folder(tmp_path):
    src = tmp_path / "gso"
    jenga = THIRD_PARTY / "toys" / "jenga"
    (src / "Jenga_Tower" / "meshes").mkdir(parents=True)
    (src / "Jenga_Tower" / "materials" / "textures").mkdir(parents=True)
    shutil.copy(jenga / "jenga.obj", src / "Jenga_Tower" / "meshes" / "model.obj")
    mtl = (jenga / "jenga.mtl").read_text().replace("jenga.obj", "model.obj")
    (src / "Jenga_Tower" / "meshes" / "model.mtl").write_text(mtl)  # GSO's MTL names the texture, which lives two folders away
    shutil.copy(jenga / "jenga.png", src / "Jenga_Tower" / "materials" / "textures" / "jenga.png")
    (src / "Jenga_Tower" / "metadata.pbtxt").write_text('name: "Jenga_Tower"\n')
    obj = (src / "Jenga_Tower" / "meshes" / "model.obj").read_text().replace("mtllib jenga.mtl", "mtllib model.mtl")
    (src / "Jenga_Tower" / "meshes" / "model.obj").write_text(obj)
    report = link(src, tmp_path / "objs", "gso")
    assert report.linked == 1 and report.record["licence"]["id"] == "cc-by-4.0" and report.classes == {"objects": "objects"}
    folder = tmp_path / "objs" / "objects" / "Jenga_Tower"
    assert (folder / "models" / "model.mtl").is_symlink() and (folder / "materials").is_symlink()
    out = tmp_path / "out"
    summary = run(
        RenderJob(
            objects=tuple(scan_root(tmp_path / "objs")),
            out=out,
            preset=__import__("iebench.presets", fromlist=["get_preset"]).get_preset("3diebench"),
            views=1,
            settings=RenderSettings(resolution=32, samples=2, denoiser="fast"),
            workers=1,
            source_root=tmp_path / "objs",
        )
    )
    assert summary.failures == {} and summary.warnings == {}, summary.warnings  # the texture resolved through the links
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["object_source"]["collection"]["collection"] == "gso"


def test_objaverse_and_class_folder_layouts(collection_src, tmp_path):
    src = tmp_path / "objaverse"
    (src / "glbs" / "000-001").mkdir(parents=True)
    (src / "glbs" / "000-002").mkdir(parents=True)
    shutil.copy(collection_src / "duck.glb", src / "glbs" / "000-001" / "8476c4170df24cf5bbe6967222d1a42d.glb")
    shutil.copy(collection_src / "jenga.glb", src / "glbs" / "000-002" / "5a5d5f4f9c6a4d23b1a1e9b3b0f6a1c2.glb")
    classes = tmp_path / "lvis.csv"
    classes.write_text("mesh,class,licence\nglbs/000-001/8476c4170df24cf5bbe6967222d1a42d.glb,duck,by\n")
    report = link(src, tmp_path / "objs", "objaverse", classes)
    assert report.linked == 1 and report.left_out == ["glbs/000-002/5a5d5f4f9c6a4d23b1a1e9b3b0f6a1c2.glb"]
    assert report.record["object_licences"] == {"duck/8476c4170df24cf5bbe6967222d1a42d": "by"}

    folders = tmp_path / "abo"
    (folders / "chair").mkdir(parents=True)
    shutil.copy(collection_src / "duck.glb", folders / "chair" / "B07B4DBBVX.glb")
    report = link(folders, tmp_path / "abo-objs", "class-folders", collection="abo")
    assert report.record["licence"]["id"] == "cc-by-nc-4.0" and (tmp_path / "abo-objs" / "chair" / "B07B4DBBVX").is_dir()


def test_link_refuses_what_it_cannot_do(collection_src, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    with pytest.raises(LinkError, match="already exists"):
        link(collection_src, tmp_path / "taken", "flat")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nduck.glb,duck\n")
    with pytest.raises(LinkError, match="header mesh,class"):
        link(collection_src, tmp_path / "o1", "flat", bad)
    clash = tmp_path / "clash.csv"
    clash.write_text("mesh,class\nduck.glb,a b\njenga.glb,a.b\n")
    with pytest.raises(LinkError, match="would share the folder a_b"):
        link(collection_src, tmp_path / "o2", "flat", clash)
    assert not (tmp_path / "o2").exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # nothing half-built
    assert safe_id("teddy bear (toy)") == "teddy_bear_(toy)" and safe_id("a.b/c") == "a_b_c"
    assert os.listdir(collection_src)  # the source is untouched


def test_missing_mtllib_and_texture_paths_are_reported_as_written(tmp_path):
    root = tmp_path / "objects"
    jenga = THIRD_PARTY / "toys" / "jenga"
    shutil.copytree(jenga, root / "toys" / "nomtl")
    (root / "toys" / "nomtl" / "jenga.mtl").unlink()
    shutil.copytree(jenga, root / "toys" / "abspath")
    mtl = root / "toys" / "abspath" / "jenga.mtl"
    mtl.write_text(mtl.read_text().replace("map_Kd jenga.png", "map_Kd /nonexistent/textures/wood.png"))
    summary = run(
        RenderJob(
            objects=tuple(scan_root(root)),
            out=tmp_path / "out",
            preset=__import__("iebench.presets", fromlist=["get_preset"]).get_preset("3diebench"),
            views=1,
            settings=RenderSettings(resolution=32, samples=2, denoiser="fast"),
            workers=1,
        )
    )
    assert summary.failures == {}
    assert summary.warnings["toys/nomtl"] == ["missing material library 'jenga.mtl' (mtllib of jenga.obj): rendered with default materials"]
    (warning,) = summary.warnings["toys/abspath"]
    assert warning.startswith("missing texture '/nonexistent/textures/wood.png' (material"), warning


def test_gltf_textures_that_cannot_be_found_or_read_are_reported(tmp_path):
    root = tmp_path / "objects"
    folder = root / "toys" / "gltf" / "models"
    folder.mkdir(parents=True)
    files = trimesh.Scene(duck_mesh()).export(file_type="gltf")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    gltf = json.loads((folder / "model.gltf").read_text())
    gltf["images"] = [{"uri": "textures/duckCM.png"}]  # an external texture, never copied
    (folder / "model.gltf").write_text(json.dumps(gltf))
    (folder / "model.gltf").rename(folder / "model_normalized.gltf")
    broken = root / "toys" / "glb" / "models"
    broken.mkdir(parents=True)
    data = bytearray(duck_mesh().export(file_type="glb"))
    start = data.index(b"\x89PNG")
    data[start : start + 64] = bytes(64)  # the embedded image's header destroyed: not a PNG any more
    (broken / "model_normalized.glb").write_bytes(bytes(data))
    out = tmp_path / "out"
    summary = run(
        RenderJob(
            objects=tuple(scan_root(root)),
            out=out,
            preset=__import__("iebench.presets", fromlist=["get_preset"]).get_preset("3diebench"),
            views=1,
            settings=RenderSettings(resolution=48, samples=2, denoiser="fast"),
            workers=1,
        )
    )
    assert summary.failures == {}
    assert summary.warnings["toys/gltf"] == ["missing texture 'textures/duckCM.png' (material 'Material_0'): rendered with its base colour"]
    (warning,) = summary.warnings["toys/glb"]
    assert warning.startswith("unreadable texture") and "embedded image" in warning
    for key in ("toys/gltf", "toys/glb"):
        assert magenta(np.asarray(Image.open(out / key / "image_0.jpg"))) == 0


def test_render_straight_to_shards_carries_the_collection(collection_src, tmp_path):
    classes = tmp_path / "classes.csv"
    classes.write_text("mesh,class\nduck.glb,rubber duck\njenga.glb,wooden toy\nblock000.stl,wooden toy\nduck-colours.ply,rubber duck\n")
    report = link(collection_src, tmp_path / "objs", "flat", classes, collection="gso")
    assert report.linked == 4
    out = tmp_path / "shards"
    args = ("render", str(tmp_path / "objs"), "--out", str(out), "--views", "1", "--resolution", "32", "--samples", "2")
    done = subprocess.run(cli(*args, "--format", "shards", "--val-fraction", "0.5"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    info = json.loads((out / "_info.json").read_text())
    assert [(c["synset"], c["name"], c["label"]) for c in info["classes"]] == [
        ("rubber_duck", "rubber duck", 0),
        ("wooden_toy", "wooden toy", 1),
    ]
    card = (out / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "Google Scanned Objects" in card
    names = set()
    for shard in out.glob("*.tar"):  # each sample's own metadata names its class too
        with tarfile.open(shard) as tar:
            names |= {json.loads(tar.extractfile(m).read())["class_name"] for m in tar.getmembers() if m.name.endswith(".json")}
    assert names == {"rubber duck", "wooden toy"}


def test_a_flat_folder_of_objs_links_each_only_the_files_it_names(tmp_path):
    src = tmp_path / "flat"
    src.mkdir()
    for name in ("jenga.obj", "jenga.mtl", "jenga.png"):
        shutil.copy(THIRD_PARTY / "toys" / "jenga" / name, src / name)
    shutil.copy(DUCK / "models" / "duck.obj", src / "duck.obj")
    shutil.copy(DUCK / "models" / "duck.mtl", src / "duck.mtl")
    shutil.copy(DUCK / "images" / "duckCM.png", src / "duckCM.png")
    files = trimesh.Scene(duck_mesh()).export(file_type="gltf")
    gltf = json.loads(files.pop("model.gltf"))
    gltf["images"] = [{"uri": "textures/duck%20CM.png"}]  # an external texture in a folder, its name URL-encoded
    (src / "textures").mkdir()
    shutil.copy(DUCK / "images" / "duckCM.png", src / "textures" / "duck CM.png")
    (src / "duck-twin.gltf").write_text(json.dumps(gltf))
    for name, data in files.items():
        (src / name).write_bytes(data)
    link(src, tmp_path / "objs", "flat")
    linked = {
        p.parent.parent.name: sorted(q.name for q in p.parent.iterdir()) for p in (tmp_path / "objs").glob("*/*/models/model_normalized.*")
    }
    assert linked["jenga"] == ["jenga.mtl", "jenga.png", "model_normalized.obj"]  # jenga.tga, named but absent, is not linked
    assert linked["duck"] == ["duck.mtl", "duckCM.png", "model_normalized.obj"]
    assert linked["duck-twin"] == sorted([*files, "model_normalized.gltf", "textures"])
    summary = run(
        RenderJob(
            objects=tuple(scan_root(tmp_path / "objs")),
            out=tmp_path / "out",
            preset=__import__("iebench.presets", fromlist=["get_preset"]).get_preset("3diebench"),
            views=1,
            settings=RenderSettings(resolution=32, samples=2, denoiser="fast"),
            workers=1,
        )
    )
    assert summary.failures == {} and summary.warnings == {}  # every texture found through the links


def test_shapenet_layout_links_whole_object_folders_and_renames_classes(procedural_root, tmp_path):
    refs = scan_root(procedural_root)
    report = link(procedural_root, tmp_path / "objs", "shapenet")
    assert report.linked == len(refs) and report.record["licence"]["name"] == "shapenet-terms-of-use"
    first = tmp_path / "objs" / refs[0].synset / refs[0].model_id
    assert first.is_symlink() and first.resolve() == (procedural_root / refs[0].synset / refs[0].model_id).resolve()
    assert [(r.synset, r.model_id) for r in scan_root(tmp_path / "objs")] == [(r.synset, r.model_id) for r in refs]
    classes = tmp_path / "classes.csv"
    mesh = refs[0].mesh.relative_to(procedural_root).as_posix()
    classes.write_text(f"mesh,class\n{mesh},my chairs\n")
    report = link(procedural_root, tmp_path / "renamed", "shapenet", classes)
    assert report.linked == 1 and len(report.left_out) == len(refs) - 1
    assert [(r.synset, r.model_id) for r in scan_root(tmp_path / "renamed")] == [("my_chairs", refs[0].model_id)]
