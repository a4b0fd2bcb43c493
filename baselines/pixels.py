"""The pixels reference: the same probes on 16 x 16 thumbnails of the images, the floor any learned representation should beat."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from iebench.baselines.eval_report import REPORT_NAME
from iebench.baselines.evaluate import RESULTS_VERSION, EvalSettings, class_count, colour_target, probe_regression
from iebench.baselines.features import SplitFeatures, data_digest, fingerprint
from iebench.baselines.probes import CachedViews, classification_scores, fit_classifier
from iebench.baselines.results import finite_or_null
from iebench.files import write_json_atomic
from iebench.loaders import ObjectViews
from iebench.loaders.actions import ActionComputer

THUMBNAIL = 16


def thumbnails(root: Path, split: str, size: int = THUMBNAIL) -> SplitFeatures:
    """Every view of a split as a (3 x size x size) thumbnail in [0, 1], flattened: the 'representation' of raw pixels."""
    data = ObjectViews(root, split)
    keys, labels, latents, reps = [], [], [], []
    for item in data:
        images = item["images"].float() / 255
        small = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        reps.append(small.flatten(1))
        keys.append(item["key"])
        labels.append(item["label"])
        latents.append(item["latents"].numpy())
    return SplitFeatures(keys, np.array(labels), np.stack(latents), torch.stack(reps), data.latent_names)


def pixels_report(data: Path, out_dir: Path, settings: EvalSettings) -> dict:
    """Classification, rotation and colour probes on thumbnails; OUT_DIR/eval.json, reused while data and settings match."""
    key = fingerprint("pixels", THUMBNAIL, data_digest(data), settings.key_fields(), RESULTS_VERSION)
    path = Path(out_dir) / REPORT_NAME
    if path.is_file() and json.loads(path.read_text()).get("key") == key:
        return json.loads(path.read_text())
    device, probe = torch.device("cpu"), settings.probe
    train, val = thumbnails(data, "train"), thumbnails(data, "val")
    names = train.latent_names
    classes = class_count(train, val)
    head = fit_classifier(CachedViews(train.representations), train.labels, classes, probe, device)
    results: dict = {
        "classification": {"all": classification_scores(head, CachedViews(val.representations), val.labels, classes, probe, device)}
    }
    for task, target in (("rotation", ActionComputer("rotation", names)), ("colour", colour_target(names))):
        seen = CachedViews(train.representations)
        out = probe_regression(seen, lambda: CachedViews(val.representations), seen, (train, val), target, probe, device)
        del out["target"], out["prediction"]  # every score, as an evaluation's result has them; not the arrays
        results[task] = {"part": "all", **out}
    results["mrr"] = {"not_applicable": "pixels have no predictor"}
    report = {
        "run": str(out_dir),
        "data": str(data),
        "method": "pixels",
        "random_init": False,
        "key": key,
        "data_digest": data_digest(data),
        "settings": {**settings.key_fields()},
        "results": finite_or_null(results),
    }
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, report, allow_nan=False)
    return report
