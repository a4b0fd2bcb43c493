"""The item a pair loader yields, defined once: `PairDataset` and `StreamingPairs` give the same keys."""

from __future__ import annotations

import torch


def pair_item(
    key: str,
    label: int,
    views: tuple[int, int],
    images: tuple,
    action: torch.Tensor,
    passes: tuple[dict, dict] = ({}, {}),
) -> dict:
    """`view1`, `view2` (the two images), `action`, `label`, `key`, `views` (the two indices), and each view's passes
    as `view1_<pass>`, `view2_<pass>`."""
    item = {
        "view1": images[0],
        "view2": images[1],
        "action": action,
        "label": label,
        "key": key,
        "views": torch.tensor(views),
    }
    for prefix, by_name in zip(("view1_", "view2_"), passes):
        item.update({prefix + name: value for name, value in by_name.items()})
    return item
