"""Translation on 3DIEBench-T: the targets in both frames, the training actions, and `iebench eval --tasks translation`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from iebench.baselines.errors import EvalError
from iebench.baselines.evaluate import EvalSettings, check, evaluate, translation_target
from iebench.baselines.probes import ProbeSettings
from iebench.baselines.trainer import train
from iebench.cli import main
from iebench.loaders import PairDataset
from iebench.loaders.actions import ActionError, action_size, compute_action
from iebench.presets import LATENT_NAMES, TRANSLATION_NAMES

from .test_train import tiny_config

NAMES = LATENT_NAMES + TRANSLATION_NAMES


def _latents(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    l1, l2 = rng.uniform(-1.5, 1.5, (2, n, 10))
    return l1, l2


def test_targets_match_their_definitions():
    l1, l2 = _latents(0, 20)
    base = translation_target(NAMES, "base")(l1, l2)
    assert np.allclose(base, l2[:, 7:] - l1[:, 7:])
    obj = translation_target(NAMES, "object")(l1, l2)
    for i in range(20):  # R1^-1 (t2 - t1), with R1 the matrix of view 1's extrinsic XYZ angles
        r1 = Rotation.from_euler("xyz", l1[i, :3]).as_matrix()
        assert np.allclose(obj[i], np.linalg.solve(r1, l2[i, 7:] - l1[i, 7:]))
    # the object frame turns with view 1: rotating both views' positions and view 1's pose together changes nothing
    assert np.allclose(np.linalg.norm(obj, axis=1), np.linalg.norm(base, axis=1))
    with pytest.raises(EvalError, match="unknown translation frame"):
        translation_target(NAMES, "camera")


def test_translation_actions_are_the_relative_rigid_motion():
    l1, l2 = _latents(1, 30)
    moved = compute_action("translation", l1, l2, NAMES)
    both = compute_action("rotation-translation", l1, l2, NAMES)
    r1, r2 = Rotation.from_euler("xyz", l1[:, :3]), Rotation.from_euler("xyz", l2[:, :3])
    assert moved.shape == (30, 3) and both.shape == (30, 7)
    assert np.allclose(both[:, :4], (r1.inv() * r2).as_quat(), atol=1e-6) and np.allclose(both[:, 4:], moved)
    # (R1, t1)^-1 (R2, t2) applied to a point of the object: view 1's pose after it is view 2's
    point = np.array([0.3, -0.2, 0.5])
    in_view2 = r2.apply(point) + l2[:, 7:]
    relative = Rotation.from_quat(both[:, :4]).apply(point) + both[:, 4:]
    assert np.allclose(r1.apply(relative) + l1[:, 7:], in_view2, atol=1e-5)
    assert [action_size(a, NAMES) for a in ("translation", "rotation-translation")] == [3, 7]
    with pytest.raises(ActionError, match="trans_x"):
        compute_action("translation", np.zeros(7), np.zeros(7), LATENT_NAMES)


@pytest.fixture(scope="module")
def run_t(packed_t, tmp_path_factory):
    """SIE trained for two epochs on 3DIEBench-T with the rotation + translation action."""
    run = tmp_path_factory.mktemp("run-t")
    train(tiny_config(packed_t, run, epochs=2, action="rotation-translation"), progress=False)
    return run


def test_sie_trains_on_the_rotation_translation_action(run_t, packed_t):
    data = PairDataset(packed_t, "train", action="rotation-translation")
    item = data[0]
    latents = data.source.latent_rows(data.objects[0], list(item["views"]))
    assert np.allclose(item["action"].numpy(), compute_action("rotation-translation", latents[0], latents[1], NAMES))
    config = json.loads((run_t / "config.json").read_text())
    assert config["action"] == "rotation-translation"
    losses = [json.loads(line)["loss"] for line in (run_t / "metrics.jsonl").read_text().splitlines() if '"epoch"' in line]
    assert losses and all(np.isfinite(losses))


def test_eval_reports_translation_in_both_frames(run_t, packed_t):
    result = CliRunner().invoke(
        main, ["eval", str(run_t), "--data", str(packed_t), "--tasks", "rotation,translation", "--epochs", "3", "--batch-size", "64"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((run_t / "eval" / "eval.json").read_text())
    translation = report["results"]["translation"]
    assert set(translation) == {"object", "base"}
    for frame in translation.values():
        assert {"part", "r2_sie", "r2_per_output", "r2_by_output", "train_fit"} <= set(frame) and len(frame["r2_by_output"]) == 3
        assert frame["part"] == "all" and np.isfinite(frame["r2_sie"])
    assert translation["object"]["r2_sie"] != translation["base"]["r2_sie"]  # two different targets
    table = (run_t / "eval" / "eval.md").read_text()
    assert "translation R^2, object frame (SIE)" in table and "translation R^2, base frame (per output)" in table
    assert "translation R^2, object frame (SIE)" in result.output


def test_translation_needs_translation_latents(run_t, packed):
    with pytest.raises(EvalError, match="cannot be evaluated on these tasks.*trans_x"):
        check(EvalSettings(tasks=("translation",)), LATENT_NAMES, None)
    out, _ = packed  # a run trained on 3DIEBench-T, evaluated on 3DIEBench: refused with both schemas, before any feature
    with pytest.raises(EvalError, match="not those the run was trained on .*trans_x"):
        evaluate(run_t, out, EvalSettings(tasks=("rotation",), probe=ProbeSettings(epochs=1)), progress=False)
