import numpy as np
import pytest

from iebench.render import procedural


def read_obj(path):
    vertices = [list(map(float, line.split()[1:4])) for line in path.read_text().splitlines() if line.startswith("v ")]
    return np.array(vertices)


def test_at_least_ten_everyday_classes_with_shapenet_ids():
    from iebench.classes import SHAPENET_SYNSETS

    assert len(procedural.BUILDERS) >= 10
    assert set(procedural.BUILDERS) <= set(SHAPENET_SYNSETS)


def test_objects_are_normalised_like_shapenet(tmp_path):
    made = procedural.generate(tmp_path, classes=len(procedural.BUILDERS), per_class=2, seed=1)
    assert len(made) == 2 * len(procedural.BUILDERS)
    for obj in made:
        assert obj.path == tmp_path / obj.synset / obj.model_id / "models" / "model_normalized.obj"
        v = read_obj(obj.path)
        lo, hi = v.min(0), v.max(0)
        assert np.allclose((lo + hi) / 2, 0, atol=1e-5)
        assert np.isclose(np.linalg.norm(hi - lo), 1, atol=1e-4)
        mtl = obj.path.with_suffix(".mtl").read_text()
        assert mtl.count("newmtl") >= 2 and mtl.count("Kd ") == mtl.count("newmtl")  # a colour per part


def test_y_is_up_in_the_written_files(tmp_path):
    # A table is wider than tall and its top is at the top: in Y-up files the top's vertices have max Y.
    obj = procedural.generate(tmp_path, classes=13, per_class=1)[-1]
    assert obj.synset == "04379243"
    text = obj.path.read_text().split("g part1")[0]  # part0 is the table top
    top = np.array([list(map(float, l.split()[1:4])) for l in text.splitlines() if l.startswith("v ")])
    assert np.isclose(top[:, 1].max(), read_obj(obj.path)[:, 1].max())


def test_generation_is_deterministic(tmp_path):
    a = procedural.generate(tmp_path / "a", classes=4, per_class=2, seed=5)
    b = procedural.generate(tmp_path / "b", classes=4, per_class=2, seed=5)
    c = procedural.generate(tmp_path / "c", classes=4, per_class=2, seed=6)
    assert [o.model_id for o in a] == [o.model_id for o in b]
    assert all(x.path.read_bytes() == y.path.read_bytes() for x, y in zip(a, b))
    assert all(x.path.read_bytes() != y.path.read_bytes() for x, y in zip(a, c))
    assert len({o.model_id for o in a}) == len(a)


def test_bad_counts_are_errors(tmp_path):
    with pytest.raises(ValueError, match="classes"):
        procedural.generate(tmp_path, classes=99, per_class=1)
    with pytest.raises(ValueError, match="per-class"):
        procedural.generate(tmp_path, classes=2, per_class=0)


def test_a_set_is_made_again_only_with_its_own_settings(tmp_path):
    made = procedural.generate(tmp_path, classes=2, per_class=2, seed=5)
    assert procedural.generate(tmp_path, classes=2, per_class=2, seed=5) == made  # the same set, written again
    for other in ({"seed": 6}, {"classes": 3}, {"per_class": 1}):
        with pytest.raises(ValueError, match="holds procedural objects made with seed 5, 2 classes and 2 per class"):
            procedural.generate(tmp_path, **({"classes": 2, "per_class": 2, "seed": 5} | other))
    assert len(list(tmp_path.glob("*/*/models/*.obj"))) == 4
    (tmp_path / procedural.MARKER).write_text("[]")
    with pytest.raises(ValueError, match="is not the record of a procedural set"):
        procedural.generate(tmp_path, classes=2, per_class=2, seed=5)
