"""Contact sheets: a grid of views, one object per row, each captioned with its latents."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from iebench.files import atomic_path

# Short captions for latent names (the full names are in the manifest and the card).
_SHORT = {
    "rot_x": "rx",
    "rot_y": "ry",
    "rot_z": "rz",
    "floor_hue": "fh",
    "spot_theta": "st",
    "spot_phi": "sp",
    "spot_hue": "sh",
    "trans_x": "tx",
    "trans_y": "ty",
    "trans_z": "tz",
}


T = TypeVar("T")


def spread_over_classes(items: Iterable[T], synset: Callable[[T], str], limit: int) -> list[T]:
    """At most `limit` items taken round-robin over their classes, each class's in its given order."""
    by_class: dict[str, list[T]] = {}
    for item in items:
        by_class.setdefault(synset(item), []).append(item)
    chosen: list[T] = []
    while len(chosen) < limit and any(by_class.values()):
        for members in by_class.values():
            if members and len(chosen) < limit:
                chosen.append(members.pop(0))
    return chosen


@dataclass(frozen=True)
class SheetRow:
    """One object's row: a title and its views as (image, latents) pairs (latents None: no caption, as in pass rows)."""

    title: str
    views: Sequence[tuple[Image.Image, np.ndarray | None]]


def _caption(names: Sequence[str], latents: np.ndarray | None, per_line: int) -> list[str]:
    if latents is None:
        return []
    items = [f"{_SHORT.get(n, n)}{v:+.2f}" for n, v in zip(names, np.asarray(latents).tolist())]
    return [" ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]


def contact_sheet(rows: Sequence[SheetRow], latent_names: Sequence[str], tile: int = 128) -> Image.Image:
    """A PNG-ready grid: a title column, then one tile per view with its latents printed under it.

    Rows whose views have no latents (a pass's row) are only as tall as their tiles."""
    font = ImageFont.load_default(size=max(9, tile // 12))
    line_height = font.size + 2
    lines = math.ceil(len(latent_names) / 3)
    heights = [tile + (lines * line_height if any(v[1] is not None for v in r.views) else 0) + 4 for r in rows]
    title_w = tile
    columns = max(len(r.views) for r in rows)
    sheet = Image.new("RGB", (title_w + columns * (tile + 4), sum(heights) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        y = sum(heights[:r]) + 4
        for i, text in enumerate(row.title.split("\n")):
            draw.text((4, y + i * line_height), text, fill="black", font=font)
        for c, (image, latents) in enumerate(row.views):
            x = title_w + c * (tile + 4)
            sheet.paste(image.convert("RGB").resize((tile, tile), Image.Resampling.BILINEAR), (x, y))
            for i, text in enumerate(_caption(latent_names, latents, 3)):
                draw.text((x, y + tile + 2 + i * line_height), text, fill="black", font=font)
    return sheet


def save_png(image: Image.Image, path: Path) -> Path:
    """Save a picture as PNG, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
