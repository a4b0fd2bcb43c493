"""`iebench import` of checkpoints in the SIE authors' layout, and `iebench export` back to it."""

import json

import pytest
import torch
from click.testing import CliRunner

from iebench.baselines.authors import import_checkpoint
from iebench.baselines.checkpoint import CheckpointError
from iebench.baselines.config import TrainConfig
from iebench.baselines.methods import build_method
from iebench.cli import main

THEIR_NAMES = {"inv_projector.": "projector_inv.", "equi_projector.": "projector_equi.", "predictor.hyper.": "predictor.hypernet.net."}


def authors_model_pth(path, method="sie", action_dim=4, epochs=7, width=64):
    """A model.pth laid out as the authors' main.py saves it: DDP keys, their module names, an online evaluator, Adam's state."""
    torch.manual_seed(3)
    model = build_method(TrainConfig(method=method, projector=(width, width, width)), action_dim)
    state = {}
    for key, value in model.state_dict().items():
        prefix = next((p for p in THEIR_NAMES if key.startswith(p)), "")
        state["module." + (THEIR_NAMES[prefix] + key[len(prefix) :] if prefix else key)] = value
    state["module.evaluator.classifier_repr.weight"] = torch.zeros(55, 512)
    state["module.evaluator.classifier_repr.bias"] = torch.zeros(55)
    optimizer = torch.optim.Adam(model.parameters())
    torch.save({"epoch": epochs, "model": state, "optimizer": optimizer.state_dict()}, path)
    return model


def test_a_full_checkpoint_imports_and_evaluates_on_every_task(packed, tmp_path):
    out, _ = packed
    original = authors_model_pth(tmp_path / "model.pth")
    result = CliRunner().invoke(main, ["import", str(tmp_path / "model.pth"), str(tmp_path / "run"), "--image-size", "32"])
    assert result.exit_code == 0, result.output
    assert "imported sie (backbone, projectors and predictor, 7 epochs)" in result.output and "left out 2" in result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["backbone"] == "resnet18-sie" and config["projector"] == [64, 64, 64] and config["method"] == "sie"
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "run"), "--data", str(out), "--epochs", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run" / "eval" / "eval.json").read_text())
    assert set(report["results"]) == {"classification", "rotation", "colour", "mrr", "pre"}
    assert "not_applicable" not in report["results"]["mrr"] and report["imported"]["parts"] == ["backbone", "heads"]
    result = CliRunner().invoke(main, ["export", str(tmp_path / "run"), str(tmp_path / "backbone.pt")])
    assert result.exit_code == 0, result.output
    exported = torch.load(tmp_path / "backbone.pt", weights_only=True)
    expected = original.backbone.state_dict()
    assert list(exported) == list(expected) and all(torch.equal(exported[k], expected[k]) for k in expected)


def test_a_bare_backbone_imports_for_classification_and_r2_only(packed, tmp_path):
    out, _ = packed
    original = authors_model_pth(tmp_path / "model.pth")
    torch.save(original.backbone.state_dict(), tmp_path / "final_weights.pth")
    with pytest.raises(CheckpointError, match="is not empty: import into a new or empty folder"):
        import_checkpoint(tmp_path / "final_weights.pth", out, image_size=32)  # the shards: a run would be written among them
    done = import_checkpoint(tmp_path / "final_weights.pth", tmp_path / "run", image_size=32)
    assert done["parts"] == ["backbone"] and done["authors_epochs"] is None
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "run"), "--data", str(out), "--epochs", "2"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "eval" / "eval.json").read_text())["results"]
    assert "top1" in results["classification"]["all"] and "r2_sie" in results["rotation"]
    assert results["mrr"] == {"not_applicable": "imported backbone only (no projector or predictor)"}
    assert "- n/a for run (MRR, PRE): imported backbone only (no projector or predictor)" in result.output  # why, on the console
    result = CliRunner().invoke(
        main, ["train", "--data", str(out), "--out", str(tmp_path / "run"), "--resume", "--epochs", "2", "--image-size", "32"]
    )
    assert result.exit_code == 1 and "cannot be resumed: it was imported from" in result.output


def test_variants_are_read_from_the_shapes_and_mismatches_refused(tmp_path):
    authors_model_pth(tmp_path / "rotcolor.pth", method="sie-rotcolor", action_dim=6, width=32)
    assert import_checkpoint(tmp_path / "rotcolor.pth", tmp_path / "a")["method"] == "sie-rotcolor"
    authors_model_pth(tmp_path / "only.pth", method="sie-onlyequi", width=32)
    assert import_checkpoint(tmp_path / "only.pth", tmp_path / "b")["method"] == "sie-onlyequi"
    assert json.loads((tmp_path / "b" / "config.json").read_text())["projector"] == [32, 32, 32]
    assert import_checkpoint(tmp_path / "only.pth", tmp_path / "c", method="sie-onlyequi")["method"] == "sie-onlyequi"
    with pytest.raises(CheckpointError, match="--method sie-rotcolor does not match the checkpoint"):
        import_checkpoint(tmp_path / "only.pth", tmp_path / "d", method="sie-rotcolor")
    assert import_checkpoint(tmp_path / "rotcolor.pth", tmp_path / "e", method=None)["method"] == "sie-rotcolor"


def test_files_that_are_not_the_authors_checkpoints(tmp_path):
    (tmp_path / "random.pth").write_bytes(b"not a torch file at all")
    result = CliRunner().invoke(main, ["import", str(tmp_path / "random.pth"), str(tmp_path / "a")])
    assert result.exit_code == 1 and "is not a checkpoint of the SIE authors' code" in result.output
    assert "weights_only" not in result.output and "Traceback" not in result.output
    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="found something"):
        import_checkpoint(tmp_path / "other.pth", tmp_path / "b")
    authors_model_pth(tmp_path / "model.pth")
    state = torch.load(tmp_path / "model.pth", weights_only=True)
    state["model"]["module.backbone.conv1.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(CheckpointError, match="does not fit sie with the authors' ResNet-18 .*other shape: backbone.conv1.weight"):
        import_checkpoint(tmp_path / "cut.pth", tmp_path / "c")
    assert not (tmp_path / "c").exists()
