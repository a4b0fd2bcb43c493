import numpy as np
import pytest

from iebench.object_lists import read_object_list
from iebench.render.objects import (
    ObjectSourceError,
    partition,
    scan_root,
    select_objects,
)


def test_scan_finds_shapenet_layout(procedural_root):
    found = scan_root(procedural_root)
    assert len(found) == 6 and found == sorted(found)
    assert all(o.mesh.name == "model_normalized.obj" and o.mesh.is_file() for o in found)


def test_sie_and_text_lists(procedural_root, tmp_path):
    found = scan_root(procedural_root)
    entries = np.array([f"/{o.synset}/{o.model_id}/" for o in found[:3]])
    np.save(tmp_path / "train_images.npy", entries)
    assert read_object_list(tmp_path / "train_images.npy") == [(o.synset, o.model_id) for o in found[:3]]
    (tmp_path / "list.txt").write_text("# objects\n" + "\n".join(f"{o.synset}/{o.model_id}" for o in found[3:]) + "\n")
    listed = select_objects(procedural_root, read_object_list(tmp_path / "list.txt"))
    assert listed == found[3:]


def test_partition_is_disjoint_and_complete(procedural_root):
    found = scan_root(procedural_root)
    parts = [partition(found, i, 4) for i in range(4)]
    assert sorted(o for p in parts for o in p) == found
    assert len({o.key for p in parts for o in p}) == len(found)


def test_missing_root_and_wrong_layout_are_clear_errors(tmp_path):
    with pytest.raises(ObjectSourceError, match="does not exist"):
        scan_root(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "model.obj").write_text("v 0 0 0\n")
    with pytest.raises(ObjectSourceError, match="expected ShapeNetCore's layout"):
        scan_root(tmp_path / "flat")
    with pytest.raises(ObjectSourceError, match="job-index"):
        partition([], 3, 2)


def test_a_render_output_is_not_an_object_set(tiny_render):
    job, _ = tiny_render
    with pytest.raises(ObjectSourceError, match=f"no meshes in {job.out}: none of its {len(job.objects)} object folders"):
        scan_root(job.out)
