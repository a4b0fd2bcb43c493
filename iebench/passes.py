"""Named passes: what a view may carry besides its JPEG, in one table.

Each pass has a name, a file extension, an encoder (the renderer's array -> the stored bytes), a
decoder (stored bytes -> numpy) and a check (for `iebench verify`). Everything else (loose files,
shard members, pack, verify, the card, the loaders) goes through this table, so a new pass means a
line here and its source in the renderer.

Conventions (documented in docs/format.md):
- camera frame: OpenCV's (x right, y down, z forward into the scene); pixel (0, 0)'s centre at (0, 0);
- `depth`: planar depth (along the camera's optical axis, as Cycles' Z pass) in metres (Blender units),
  16-bit greyscale PNG of millimetres; 0 means no surface;
- `normal`: unit surface normals in the camera frame, 8-bit RGB PNG, value = round((n + 1) * 127.5);
  surfaces facing the camera have z < 0;
- `mask`: 8-bit greyscale PNG, 255 where the object is seen, 0 elsewhere (floor), from the object index pass;
- `camera`: JSON with the intrinsics, the world-to-camera matrix and the object's world matrix.

Encoding is deterministic: PNG at a fixed compression level and no metadata; JSON with sorted keys.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

PNG_COMPRESS_LEVEL = 6
DEPTH_SCALE = 1000.0  # stored units per metre (millimetres)
DEPTH_MAX = 65535 / DEPTH_SCALE


class PassError(ValueError):
    """An unknown pass name, or pass bytes that do not decode as their pass; the message says which."""


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _read_png(data: bytes, modes: tuple[str, ...]) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or image.mode not in modes:
                raise PassError(f"expected a PNG of mode {' or '.join(modes)}, got {image.format} {image.mode}")
            image.load()
            return np.asarray(image)
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, PassError):
            raise
        raise PassError(f"not a readable PNG ({error})") from None


def encode_depth(depth: np.ndarray) -> bytes:
    """(H, W) depth in metres -> 16-bit PNG of millimetres (0: no surface; beyond 65.535 m: no surface)."""
    depth = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0) & (depth <= DEPTH_MAX)
    millimetres = np.where(valid, np.rint(np.where(valid, depth, 0) * DEPTH_SCALE), 0)
    return _png(millimetres.astype(np.uint16))


def decode_depth(data: bytes) -> np.ndarray:
    """(H, W) float32 depth in metres (0 where there is no surface)."""
    return _read_png(data, ("I;16", "I")).astype(np.float32) / DEPTH_SCALE


def encode_normal(normal: np.ndarray) -> bytes:
    """(H, W, 3) camera-frame normals -> 8-bit RGB PNG (made unit length first; zero vectors stay zero)."""
    normal = np.asarray(normal, dtype=np.float64)
    length = np.linalg.norm(normal, axis=-1, keepdims=True)
    unit = np.divide(normal, length, out=np.zeros_like(normal), where=length > 1e-6)
    return _png(normal_bytes(unit))


def normal_bytes(unit: np.ndarray) -> np.ndarray:
    """Unit normals in [-1, 1] -> uint8 in 0-255, as the PNG stores them (and previews show them)."""
    return np.clip(np.rint((unit + 1.0) * 127.5), 0, 255).astype(np.uint8)


def decode_normal(data: bytes) -> np.ndarray:
    """(H, W, 3) float32 camera-frame normals in [-1, 1] (OpenCV frame: facing the camera means z < 0)."""
    return _read_png(data, ("RGB",)).astype(np.float32) / 127.5 - 1.0


def encode_mask(mask: np.ndarray) -> bytes:
    """(H, W) bool object mask -> 8-bit greyscale PNG of 0 and 255."""
    return _png(np.where(np.asarray(mask, dtype=bool), 255, 0).astype(np.uint8))


def decode_mask(data: bytes) -> np.ndarray:
    """(H, W) bool: True where the object is seen."""
    return _read_png(data, ("L",)) >= 128


CAMERA_KEYS = ("intrinsics", "world_to_camera", "object_to_world")


def encode_camera(camera: dict) -> bytes:
    """The camera record (see `render.scene.camera_record`) as UTF-8 JSON, keys sorted."""
    return json.dumps({k: (np.asarray(v).tolist() if k in CAMERA_KEYS else v) for k, v in camera.items()}, sort_keys=True).encode()


def decode_camera(data: bytes) -> dict:
    """{"intrinsics": (3, 3), "world_to_camera": (4, 4), "object_to_world": (4, 4)} float64 arrays, plus the rest as stored."""
    try:
        record = json.loads(data)
        arrays = {k: np.asarray(record[k], dtype=np.float64) for k in CAMERA_KEYS}
    except (ValueError, KeyError, TypeError) as error:
        raise PassError(f"not a camera record ({error})") from None
    shapes = {"intrinsics": (3, 3), "world_to_camera": (4, 4), "object_to_world": (4, 4)}
    for key, shape in shapes.items():
        if arrays[key].shape != shape:
            raise PassError(f"camera record: {key} has shape {arrays[key].shape}, expected {shape}")
    return record | arrays


# Viridis at 9 evenly spaced points: depth previews in `iebench show` (near bright, far dark).
_VIRIDIS = np.array(
    [
        [68, 1, 84],
        [71, 44, 122],
        [59, 81, 139],
        [44, 113, 142],
        [33, 144, 141],
        [39, 173, 129],
        [92, 200, 99],
        [170, 220, 50],
        [253, 231, 37],
    ],
    dtype=np.float64,
)


def colour_map(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 viridis colours."""
    position = np.clip(np.asarray(values, dtype=np.float64), 0, 1) * (len(_VIRIDIS) - 1)
    low = np.minimum(np.floor(position).astype(int), len(_VIRIDIS) - 2)
    weight = (position - low)[..., None]
    return np.rint(_VIRIDIS[low] * (1 - weight) + _VIRIDIS[low + 1] * weight).astype(np.uint8)


def preview_depth(depth: np.ndarray) -> np.ndarray:
    """Colour-mapped depth, scaled to the view's own range: near bright, far dark, no surface black."""
    valid = depth > 0
    if not valid.any():
        return np.zeros((*depth.shape, 3), np.uint8)
    near, far = float(depth[valid].min()), float(depth[valid].max())
    rgb = colour_map((far - depth) / max(far - near, 1e-6))
    rgb[~valid] = 0
    return rgb


def _check_image(decoded: np.ndarray, resolution: int) -> list[str]:
    size = (decoded.shape[1], decoded.shape[0])
    return [] if size == (resolution, resolution) else [f"is {size[0]}x{size[1]}, expected {resolution}x{resolution}"]


def _check_normal(normal: np.ndarray, resolution: int) -> list[str]:
    problems = _check_image(normal, resolution)
    length = np.linalg.norm(normal, axis=-1)
    if np.any((length > 1e-6) & (np.abs(length - 1) > 0.02)):  # 8-bit rounding moves a unit vector by < 0.01
        problems.append("holds normals that are not unit vectors")
    return problems


def _check_camera(camera: dict, resolution: int) -> list[str]:
    k = camera["intrinsics"]
    problems = []
    if not (np.isclose(k[0, 2], (resolution - 1) / 2) and np.isclose(k[1, 2], (resolution - 1) / 2) and k[0, 0] > 0):
        problems.append(f"intrinsics do not describe a centred {resolution}x{resolution} camera")
    for key in ("world_to_camera", "object_to_world"):
        rotation = camera[key][:3, :3]
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or not np.allclose(camera[key][3], [0, 0, 0, 1]):
            problems.append(f"{key} is not a rigid transform")
    return problems


@dataclass(frozen=True)
class PassSpec:
    """One named pass: how it is stored and checked."""

    name: str
    extension: str
    description: str
    encode: Callable
    decode: Callable[[bytes], object]
    check: Callable[[object, int], list[str]]  # problems of a decoded pass at a resolution
    rendered: bool = True  # needs a Cycles pass (the camera record does not)
    preview: Callable[[object], np.ndarray] | None = None  # decoded pass -> (H, W, 3) uint8 for `iebench show`

    def loose_name(self, view: int) -> str:
        """File name in the original layout: `depth_<i>.png`."""
        return f"{self.name}_{view}.{self.extension}"

    def field(self, view: int) -> str:
        """Member field in a shard sample: `000.depth.png`."""
        return f"{view:03d}.{self.name}.{self.extension}"


PASSES: dict[str, PassSpec] = {
    spec.name: spec
    for spec in (
        PassSpec(
            "camera",
            "json",
            "intrinsics (3x3), world-to-camera (4x4, OpenCV frame) and the object's world matrix (4x4)",
            encode_camera,
            decode_camera,
            _check_camera,
            rendered=False,
        ),
        PassSpec(
            "depth",
            "png",
            "planar depth in metres, 16-bit PNG of millimetres (0: no surface)",
            encode_depth,
            decode_depth,
            _check_image,
            preview=preview_depth,
        ),
        PassSpec(
            "mask",
            "png",
            "object mask, 8-bit PNG: 255 object, 0 floor (object index pass)",
            encode_mask,
            decode_mask,
            _check_image,
            preview=lambda mask: np.repeat(mask[..., None] * np.uint8(255), 3, -1),
        ),
        PassSpec(
            "normal",
            "png",
            "camera-frame unit normals (OpenCV frame), 8-bit RGB PNG: round((n + 1) * 127.5)",
            encode_normal,
            decode_normal,
            _check_normal,
            preview=normal_bytes,
        ),
    )
}


def parse_passes(names: str | Iterable[str]) -> tuple[str, ...]:
    """Pass names from a flag ("depth,normal,mask") in table order; the camera record comes with any pass."""
    if isinstance(names, str):
        given, names = names, [n.strip() for n in names.split(",") if n.strip()]
        if given.strip() and not names:
            raise PassError(f"no pass named in {given!r}: passes are {', '.join(PASSES)}")
    names = set(names)
    unknown = sorted(names - set(PASSES))
    if unknown:
        raise PassError(f"unknown pass {', '.join(unknown)}: passes are {', '.join(PASSES)}")
    if names:
        names.add("camera")
    return tuple(n for n in PASSES if n in names)


def preview_image(name: str, data: bytes) -> Image.Image | None:
    """A PIL image of a stored pass for contact sheets, or None for a pass that is not a picture (the camera)."""
    from PIL import Image

    spec = PASSES[name]
    return None if spec.preview is None else Image.fromarray(spec.preview(spec.decode(data)))


def check_passes(name_to_bytes: dict[str, bytes], resolution: int) -> list[tuple[str, str]]:
    """(pass, problem) of one view's passes: each decodes and passes its check; depth is positive where the mask is set."""
    problems, decoded = [], {}
    for name, data in sorted(name_to_bytes.items()):
        spec = PASSES[name]
        try:
            decoded[name] = spec.decode(data)
        except PassError as error:
            problems.append((name, str(error)))
            continue
        problems += [(name, p) for p in spec.check(decoded[name], resolution)]
    if "depth" in decoded and "mask" in decoded and decoded["depth"].shape == decoded["mask"].shape:
        if np.any(decoded["mask"] & (decoded["depth"] <= 0)):
            problems.append(("depth", "is not positive everywhere the mask is set"))
    return problems
