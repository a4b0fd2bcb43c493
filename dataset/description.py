"""One reader of a shard set's description, `_info.json`, held to what the set itself records.

Every command that reads a shard set opens it here (the loaders, `eval`, `train`, `mini`, `info`, `show`),
and `pack` and `finalize` use its render checks. `_info.json` must be whole and of a readable format,
match its own line in `SHA256SUMS` (finalize writes that file last, with `_info.json`'s sha256 in it),
describe a render that had finished, and agree with the offset indexes of the shards it lists: their
sizes and checksums, object keys and counts, labels, and the views each object holds (from the index
entries' member names). Nothing is hashed but `_info.json` itself: the loaders read the indexes anyway,
so the checks cost one pass over them. A set that disagrees with itself is refused with one line
naming the file and saying what to do.
"""

from __future__ import annotations

import errno
import json
import re
from dataclasses import dataclass
from pathlib import Path

from iebench.dataset import format as fmt
from iebench.dataset.finalize import SUMS_NAME, FinalizeError, load_info, sha256_bytes

FINISHED = ("complete", "incomplete")  # a render's manifest status once it ended ("incomplete": some objects failed)
_VIEW = re.compile(r"(\d{3,})\.jpg")  # a view's member field: 000.jpg, 001.jpg, ...
_SUMS_LINE = re.compile(r"[0-9a-f]{64}  \*?(\S.*)")
_REQUIRED = {"name": str, "views_per_object": int, "resolution": int, "latent_names": list, "classes": list, "splits": dict}


class SetDescriptionError(FinalizeError):
    """A shard set whose description disagrees with itself or with its shards; the message names the file and the fix."""


@dataclass(frozen=True)
class ShardSetDescription:
    """A shard set's `_info.json`, checked, and the offset indexes of the shards of the splits read (by shard name)."""

    root: Path
    info: dict
    indexes: dict[str, dict]


def _fix(root: Path) -> str:
    return f"run `iebench verify {root}` to see every problem, then `iebench finalize {root}` to write it again from the shards"


def read_description(
    root: Path, splits: tuple[str, ...] = fmt.SPLITS, check_sizes: bool = True, read_indexes: bool = True
) -> ShardSetDescription:
    """`_info.json` of a finalized shard set, held to `SHA256SUMS`, its render's status and the indexes of `splits`'s shards.

    Raises `FinalizeError` (a `SetDescriptionError` when the set disagrees with itself) with one line that
    names the file and says what to do. `check_sizes`: also compare each shard's size on disk with its record.
    Without `read_indexes` the shards are only checked to be files (of their recorded sizes) and no index is read:
    a reader that already holds the indexes' facts checked (the loaders' member table) calls `check_split` when
    it reads them again.
    """
    root = Path(root)
    info = load_info(root)
    path = root / fmt.INFO_NAME
    _check_fields(root, info)
    _check_own_sum(root, info)
    problem = unfinished_render(info.get("render_manifest"))
    if problem:
        raise SetDescriptionError(
            f"{path} records a render that had not finished ({problem}): nothing is read from an unfinished set; "
            "finish the render (run its command again: it resumes), then pack it again into a new folder"
        )
    indexes: dict[str, dict] = {}
    for split in splits:
        if read_indexes:
            indexes |= check_split(root, info, split, check_sizes)
        else:
            for shard in info["splits"][split]["shards"]:
                _check_shard_file(root, shard, check_sizes)
    return ShardSetDescription(root, info, indexes)


def _check_fields(root: Path, info: dict) -> None:
    """The fields every reader uses are there, with the right types."""
    path = root / fmt.INFO_NAME
    for key, kind in _REQUIRED.items():
        if not isinstance(info.get(key), kind) or isinstance(info.get(key), bool):
            raise SetDescriptionError(f"{path}: field {key!r} is missing or not a {kind.__name__}: {_fix(root)}")
    if info["views_per_object"] < 1 or info["resolution"] < 1:
        raise SetDescriptionError(f"{path}: views_per_object and resolution must be positive: {_fix(root)}")
    for split in fmt.SPLITS:
        record = info["splits"].get(split)
        if not isinstance(record, dict) or not isinstance(record.get("shards"), list) or not isinstance(record.get("objects"), int):
            raise SetDescriptionError(f"{path}: split {split!r} is missing or malformed: {_fix(root)}")


def parse_sums(text: str) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """A SHA256SUMS file: name -> sha256 of its well-formed lines, and (line number, line) of every other non-empty line."""
    listed, malformed = {}, []
    for number, line in enumerate(text.splitlines(), 1):
        match = _SUMS_LINE.fullmatch(line)
        if match:
            listed[match.group(1)] = line[:64]
        elif line.strip():
            malformed.append((number, line))
    return listed, malformed


def _check_own_sum(root: Path, info: dict) -> None:
    """`_info.json` is the one finalize wrote: its sha256 is SHA256SUMS's line for it (sets with recorded checksums)."""
    sums = root / SUMS_NAME
    if info.get("format") != fmt.FORMAT:
        return  # format 1: its SHA256SUMS listed the shards alone
    path = root / fmt.INFO_NAME
    if not sums.is_file():
        raise SetDescriptionError(f"{sums}: missing, so {path} cannot be checked: {_fix(root)}")
    listed, _ = parse_sums(sums.read_text(errors="replace"))
    if fmt.INFO_NAME not in listed:
        raise SetDescriptionError(f"{sums} has no line for {fmt.INFO_NAME}, so {path} cannot be checked: {_fix(root)}")
    if sha256_bytes(path.read_bytes()) != listed[fmt.INFO_NAME]:
        raise SetDescriptionError(f"{path} does not match its sha256 in {SUMS_NAME} (edited or corrupt after finalize): {_fix(root)}")


def unfinished_render(manifest: dict | None) -> str | None:
    """What says a render manifest's render had not finished ("status 'running'"), or None when it had
    (or there is no manifest: a set packed from the original release)."""
    if not isinstance(manifest, dict):
        return None
    status = manifest.get("status", "complete")  # manifests older than the status field were written at the end
    if status in FINISHED:
        return None
    return f"status {status!r}"


# What every job of one render array shares (a manifest's fingerprint but its job index).
SAME_IN_EVERY_JOB = ("preset", "seed", "views_per_object", "render", "num_jobs", "latents_source", "passes")


def check_render_finished(src: Path) -> None:
    """Refuse to pack a render folder whose manifests (every job's) say the render had not finished, or whose jobs were
    planned otherwise than each other (another job count, resolution, seed...)."""
    first = None
    for path in sorted(Path(src).glob("_manifest*.json")):
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise SetDescriptionError(f"{path}: unreadable render manifest ({error}): run the render command again to write it") from None
        problem = unfinished_render(manifest)
        if problem:
            raise SetDescriptionError(
                f"{path}: the render has not finished ({problem}; stopped, or still running): run the same `iebench render` "
                f"command again to finish it (it resumes), then pack (nothing was written)"
            )
        first = first or (path, manifest)
        differing = [k for k in SAME_IN_EVERY_JOB if manifest.get(k) != first[1].get(k)]
        if differing:
            raise SetDescriptionError(
                f"{path} and {first[0].name} are jobs of renders planned otherwise ({', '.join(differing)} differ): not one render; "
                "render the odd jobs again with their siblings' options, or pack each render from its own folder (nothing was written)"
            )


def check_parts_finished(out: Path, parts: list[dict]) -> None:
    """Refuse to finalize writers' plans that record an unfinished render (a packed render still running, or a render job
    stopped before its end)."""
    for part in parts:
        problem = unfinished_render(part.get("render_manifest"))
        if part.get("source", {}).get("kind") == "render" and part.get("render_manifest") is None:
            problem = "the job has not recorded its end"
        if problem:
            job = part.get("plan", {}).get("job_index", 0)
            raise SetDescriptionError(
                f"{out}: a writer's plan (job {job}) records a render that has not finished ({problem}): "
                "run that job's command again to finish it (it resumes), then finalize"
            )


def shard_file_problem(path: Path) -> str | None:
    """Why a shard cannot be opened as a file ("<path>: a folder, not a shard file"; missing, a link loop), or None."""
    path = Path(path)
    try:
        if path.is_dir():
            return f"{path}: a folder, not a shard file"
        path.stat()
    except OSError as error:
        if error.errno == errno.ENOENT:
            return f"{path}: missing" + (" (a link to nothing)" if path.is_symlink() else "")
        if error.errno == errno.ELOOP:
            return f"{path}: a symbolic link that loops, not a shard file"
        return f"{path}: cannot be opened ({error.strerror or error})"
    return None


def _check_shard_file(root: Path, shard: dict, check_sizes: bool) -> Path:
    """A listed shard is a file (of its recorded size, with `check_sizes`); returns its path."""
    shard_path = root / shard["name"]
    problem = shard_file_problem(shard_path)
    if problem:
        raise SetDescriptionError(
            f"{problem}; _info.json lists it as a shard: put the shard file back (restore it from a copy), or re-pack the set"
        )
    size = shard_path.stat().st_size
    if check_sizes and size != shard.get("bytes"):
        raise SetDescriptionError(
            f"{shard_path}: {size} bytes, _info.json says {shard.get('bytes')} (truncated or changed): "
            f"run `iebench verify {root}` to see which objects, then re-pack or restore it"
        )
    return shard_path


def check_split(root: Path, info: dict, split: str, check_sizes: bool = True) -> dict[str, dict]:
    """The indexes of a split's shards (by shard name), each held to its record in `_info.json`; the split's totals held
    to them."""
    root = Path(root)
    path = root / fmt.INFO_NAME
    record = info["splits"][split]
    labels = {c.get("synset"): c.get("label") for c in info["classes"] if isinstance(c, dict)}
    views = info["views_per_object"]
    indexes, objects = {}, 0
    for shard in record["shards"]:
        shard_path = _check_shard_file(root, shard, check_sizes)
        try:
            index = fmt.read_index(shard_path)
        except fmt.ShardFormatError as error:
            raise SetDescriptionError(str(error)) from None
        _check_index(root, shard, index, info, labels)
        indexes[shard["name"]] = index
        objects += len(index["samples"])
    counts = {
        "objects": (record["objects"], objects),
        "views": (record.get("views", objects * views), objects * views),
        "classes' objects": (sum(c.get(split, 0) for c in info["classes"] if isinstance(c, dict)), objects),
    }
    for what, (said, found) in counts.items():
        if said != found:
            raise SetDescriptionError(
                f"{path}: split {split} has {said} {what} by its record, {found} in its shards' indexes: {_fix(root)}"
            )
    return indexes


def _check_index(root: Path, shard: dict, index: dict, info: dict, labels: dict) -> None:
    """One shard's index against its record in `_info.json`: bytes, sha256, keys, and every object's label and members."""
    where = f"{root / fmt.INFO_NAME} and {fmt.index_path(root / shard['name']).name}"
    for field in ("bytes", "sha256"):
        if field in index and shard.get(field) != index[field]:
            raise SetDescriptionError(f"{where} record other {field} for the shard: {_fix(root)}")
    keys = [entry.get("key") for entry in index["samples"]]
    if keys != shard.get("keys", keys) or shard.get("objects", len(keys)) != len(keys):
        raise SetDescriptionError(f"{where} list other objects ({len(keys)} in the index): {_fix(root)}")
    views, passes = info["views_per_object"], info.get("passes", ())
    wanted = {fmt.view_field(v) for v in range(views)}
    count = views * (1 + len(passes)) + 3  # the views, their passes, and cls, json, latents.npy
    for entry in index["samples"]:
        if "synset" in entry and labels.get(entry["synset"]) != entry.get("label"):
            raise SetDescriptionError(
                f"{root / fmt.INFO_NAME} gives class {entry['synset']} label {labels.get(entry['synset'])}, and object "
                f"{entry.get('key')} in {shard['name']} has label {entry.get('label')}: {_fix(root)}"
            )
        held = entry.get("members", {})
        if len(held) != count or not wanted <= held.keys():  # set operations: quick over every object
            _members_problem(root, shard["name"], entry.get("key"), held, views, passes)


def _members_problem(root: Path, shard: str, key: str, held: dict, views: int, passes: tuple[str, ...]) -> None:
    """Raise the error for an object whose members do not fit the set's views and passes."""
    found = sorted(int(m.group(1)) for m in map(_VIEW.fullmatch, held) if m)
    if found != list(range(views)):
        raise SetDescriptionError(
            f"{root / fmt.INFO_NAME} says {views} views per object, and object {key} in {shard} has {len(found)} "
            f"(views {found[:3]}...{found[-1:]}): the description does not fit the shards; {_fix(root)}"
        )
    raise SetDescriptionError(
        f"{root / fmt.INFO_NAME} gives the set passes {list(passes)}, and object {key} in {shard} has {len(held)} members, "
        f"not {views * (1 + len(passes)) + 3}: {_fix(root)}"
    )
