"""Streaming SIE pairs from shards at local paths, http(s) URLs (read timeout, retries: `loaders.remote`) and `pipe:` commands.

Unlike WebDataset's own pipeline (SPEC 7), each epoch draws a fresh shard permutation; local shards with
their index are then split among ranks and workers object by object (shards at other URLs shard by shard);
the pair is chosen while a sample streams past, so only the two chosen views are kept and decoded; and
every rank yields exactly the same number of samples, so every rank has the same number of full batches and
DDP never hangs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from iebench.dataset import format as fmt
from iebench.dataset import tarstream
from iebench.dataset.description import read_description
from iebench.dataset.finalize import FinalizeError
from iebench.loaders.actions import ActionComputer
from iebench.loaders.decode import PassError, decode, decode_pass
from iebench.loaders.items import pair_item
from iebench.loaders.loader import rank_and_world
from iebench.loaders.remote import CommandStream, RemoteError, RemoteOptions, is_http, open_url
from iebench.loaders.sampling import choose_pair
from iebench.loaders.sources import SourceError, check_on_error, requested_passes

log = logging.getLogger(__name__)


class _Corrupt:
    """A member that failed its checksum, carried to where the item is built (and skipped or raised there)."""

    def __init__(self, message: str) -> None:
        self.message = message


DUPLICATE = "__duplicate__"  # the field under which a sample carries the note that a member or the object came twice


def iterate_samples(
    url: str, wanted: Callable[[str], set[str]] | None = None, remote: RemoteOptions | None = None
) -> Iterator[tuple[str, dict[str, bytes | _Corrupt]]]:
    """(key, {field: bytes}) for each sample of a tar stream, members grouped by key.

    `wanted(key)` gives the fields to keep for a sample (None: keep every field); the bytes of the other
    members are skipped (seeked over in a local file) rather than read into memory, so keeping 2 views of
    50 costs little more than reading the 2. Tar headers are read directly (ustar, GNU long names, pax).
    http(s) URLs are read with `remote`'s read timeout and retries (see `loaders.remote`). A sample is
    yielded only once its members are all read; a stream that fails raises `SourceError` naming the URL,
    what failed and the last whole object, after the whole objects before it were yielded. A member name
    that comes twice (or an object whose members are not together) gives the sample a `DUPLICATE` field.
    """
    stream, at, finished = None, _Place(), False
    try:
        stream = open_url(url, remote or RemoteOptions())
        for key, fields in _grouped_members(stream, url, wanted, at):
            yield key, fields
        finished = True
    except (RemoteError, TimeoutError) as error:
        hint = HTTP_HINT if is_http(url) else COMMAND_HINT
        raise SourceError(f"{url}: {error}{at}; {hint}") from None
    except (EOFError, ValueError) as error:
        note = stream.exit_note() if isinstance(stream, CommandStream) else ""
        raise SourceError(f"{url}: not a readable tar stream{at} ({error}{note}; truncated or corrupt?)") from None
    except OSError as error:
        raise SourceError(f"{url}: cannot be read{at} ({error})") from None
    finally:
        if stream is not None:
            _close(stream, url, finished)


HTTP_HINT = "check the server, or give a longer timeout or more retries (StreamingPairs(..., remote=RemoteOptions(...)))"
COMMAND_HINT = "check the command, or give a longer timeout (StreamingPairs(..., remote=RemoteOptions(timeout=...)))"


class _Place:
    """Where a tar stream is: the object being read and how many objects were read whole before it."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.whole = 0

    def __str__(self) -> str:
        if self.key is None:
            return " before its first object"
        return f" in object {self.key} ({self.whole} whole object{'' if self.whole == 1 else 's'} before it)"


def _close(stream, url: str, finished: bool) -> None:
    """Close a stream (a command left early is stopped); a failure to close (a command's exit status) is an error only
    for a stream read to its end."""
    try:
        if finished:
            stream.close()
        else:
            getattr(stream, "abort", stream.close)()
    except (OSError, ValueError) as error:
        if finished:
            raise SourceError(f"{url}: the stream did not end cleanly ({error})") from None
        log.debug("closing %s, which failed or was left early: %s", url, error)


def _grouped_members(stream, url: str, wanted: Callable[[str], set[str]] | None, at: _Place) -> Iterator[tuple[str, dict]]:
    """(key, {field: bytes}) of each run of members sharing a key, the unwanted members skipped unread."""
    key, fields, names, keep, keys = None, {}, set(), None, set()
    for name, size in tarstream.members(stream):
        member_key, _, field = name.rsplit("/", 1)[-1].partition(".")
        if member_key != key:
            if key is not None:
                yield key, fields
                at.whole += 1
            key = at.key = member_key
            fields, names = {}, set()
            keep = None if wanted is None else wanted(key)
            if key in keys:
                fields[DUPLICATE] = _Corrupt(
                    f"{url}: object {key} comes twice in the stream (its members are not together): the shard is malformed (write it again)"
                )
            keys.add(key)
        padded = -(-size // tarstream.BLOCK) * tarstream.BLOCK
        if field in names:
            fields[DUPLICATE] = _Corrupt(
                f"{url}: object {key}: member {key}.{field} comes twice in the stream (which copy is right is unknown): the shard is malformed (write it again)"
            )
        elif keep is None or field in keep:
            fields[field] = tarstream.read_exact(stream, size)
            if len(fields[field]) < size:
                raise EOFError("the stream ends inside a member")
            padded -= size
        names.add(field)
        tarstream.skip(stream, padded)
    if key is not None:
        yield key, fields


def iterate_indexed(
    path: str, index: dict[str, dict[str, list[int]]], wanted: Callable[[str], set[str]]
) -> Iterator[tuple[str, dict[str, bytes | _Corrupt]]]:
    """(key, {field: bytes}) for each sample of a local shard, in tar order, reading only the wanted members at their offsets.

    A member cut short or failing its crc32 comes as `_Corrupt`, for the item to raise or skip.
    """
    with open(path, "rb") as handle:
        for key, members in index.items():
            fields: dict[str, bytes | _Corrupt] = {}
            for field in sorted(wanted(key)):
                span = members.get(field)
                if span is not None:
                    try:
                        fields[field] = fmt.read_member(Path(path), key, field, span, handle)
                    except fmt.MemberError as error:
                        fields[field] = _Corrupt(str(error))
            yield key, fields


def local_index(url: str) -> dict[str, dict[str, list[int]]] | None:
    """{key: members} of a shard's offset index when the shard is a local file with its index beside it, else None."""
    path = Path(url)
    if not path.is_file() or not fmt.index_path(path).is_file():
        return None
    try:
        return {e["key"]: e["members"] for e in fmt.read_index(path)["samples"]}
    except fmt.ShardFormatError as error:
        raise SourceError(str(error)) from None


class StreamingPairs(IterableDataset):
    """Pairs streamed from shards: `root` is a shard folder (its `_info.json` lists the split) or a list of URLs.

    A shard at another URL is read as a tar stream whose headers are parsed directly, the members not
    needed for the pair skipped unread; a local shard with its offset index is read member by member
    at the index's offsets (in tar order), so only the two views, the latents and the label are read,
    and each is checked against its crc32 (shards at other URLs have no index at hand: only the decoder
    checks them). With URLs, give `num_samples` (objects
    per epoch, all ranks together), `latent_names` and `views` (or keep the folder form). Items are the same dicts as `PairDataset`'s
    (with `passes`, `view1_<pass>` and `view2_<pass>` too). Create it after
    the process group is initialised (or pass `rank` and `world_size`). `remote` sets how shards at http(s)
    URLs are read (read timeout, retries, back-off; `pipe:` commands get the timeout); under on_error="skip"
    a shard whose stream fails keeps the objects read whole before the failure.
    """

    def __init__(
        self,
        root: Path | list[str],
        split: str = "train",
        action: str = "rotation",
        seed: int = 0,
        shuffle_buffer: int = 256,
        num_samples: int | None = None,
        latent_names: tuple[str, ...] | None = None,
        views: int | None = None,
        canonical: bool = False,
        on_error: str = "raise",
        rank: int | None = None,
        world_size: int | None = None,
        passes: tuple[str, ...] = (),
        remote: RemoteOptions | None = None,
    ) -> None:
        check_on_error(on_error)
        if isinstance(root, (str, Path)):
            if not Path(root).is_dir():
                raise SourceError(f"{root} is not a folder of shards (give a folder, or a list of shard URLs)")
            if split not in fmt.SPLITS:
                raise SourceError(f"{root}: unknown split {split!r}; splits are {', '.join(fmt.SPLITS)}")
            try:  # `_info.json` held to SHA256SUMS and to the split's indexes: its object count is the shards'
                info = read_description(Path(root), (split,)).info
            except FinalizeError as error:
                raise SourceError(str(error)) from None
            self.urls = [str(Path(root) / s["name"]) for s in info["splits"][split]["shards"]]
            num_samples = num_samples or info["splits"][split]["objects"]
            latent_names, views = tuple(info["latent_names"]), info["views_per_object"]
            self.passes = requested_passes(passes, tuple(info.get("passes", ())), root)
        else:
            self.urls = list(root)
            self.passes = (passes,) if isinstance(passes, str) else tuple(passes)  # the shards at the URLs are trusted to hold them
            if num_samples is None or latent_names is None or views is None:
                raise ValueError("with a list of URLs, give num_samples, latent_names and views")
        if not self.urls:
            raise ValueError("no shards to stream")
        self.latent_names, self.views_per_object = tuple(latent_names), views
        self.action, self.seed, self.canonical, self.on_error = action, seed, canonical, on_error
        self.remote = remote or RemoteOptions()
        self.compute_action = ActionComputer(action, self.latent_names, canonical)
        self.action_dim = self.compute_action.size
        self.shuffle_buffer, self.num_samples = shuffle_buffer, num_samples
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._indexes: dict[str, dict | None] = {}  # url -> {key: members} of a local index, loaded on first use
        # Taken now, in the rank's own process: DataLoader workers have no process group of their own.
        default_rank, default_world = rank_and_world()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch: shard order, pairs and shuffling all follow it (seen by every worker)."""
        self._epoch[0] = epoch

    def samples_per_rank(self) -> int:
        """Samples each rank yields per epoch: the same on every rank."""
        return self.num_samples // self.world_size

    def __len__(self) -> int:
        return self.samples_per_rank()

    def _my_shards_and_quota(self, epoch: int) -> tuple[list[str], int, int, int]:
        """This worker's shards, its quota, its stream id, and how many workers split those shards by sample.

        Local shards with their index are split by sample: every worker of every rank walks all of the epoch's
        shards and keeps every n-th object (the others are not read), so each object comes once an epoch.
        Shards at other URLs are split by shard, as WebDataset does: a worker with fewer objects wraps around.
        """
        rank, world = self.rank, self.world_size
        worker = get_worker_info()
        index, workers = (worker.id, worker.num_workers) if worker else (0, 1)
        order = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, 11])).permutation(len(self.urls))
        shards = [self.urls[i] for i in order]
        per_rank = self.samples_per_rank()
        quota = per_rank // workers + (1 if index < per_rank % workers else 0)
        stream_id = rank * workers + index
        if all(self._index(url) is not None for url in shards):
            return shards, quota, stream_id, world * workers
        rank_shards = shards[rank::world] or [shards[rank % len(shards)]]
        mine = rank_shards[index::workers] or [rank_shards[index % len(rank_shards)]]
        return mine, quota, stream_id, 1

    def _index(self, url: str) -> dict | None:
        """{key: members} of a local shard's offset index (loaded once), or None."""
        if url not in self._indexes:
            self._indexes[url] = local_index(url)
        return self._indexes[url]

    def _stream(
        self, shards: list[str], epoch: int, part: int = 0, parts: int = 1
    ) -> Iterator[tuple[str, str, dict[str, bytes], int, int, int]]:
        """Endless (key, url, kept fields, first, second, lap) over the worker's shards, pair chosen on the fly (a lap
        counts the worker's rounds of its shards);
        with `parts` > 1 (indexed shards), only the objects at positions `part` mod `parts` of the shards' order.
        Under on_error="skip" a shard whose stream fails gives the whole objects read before the failure (on each lap:
        a worker that wraps around opens it again)."""
        failed: dict[str, str] = {}  # url -> why its stream failed
        for lap in range(1 << 30):
            seen, position = 0, 0
            for url in shards:
                index = self._index(url)
                if parts > 1:
                    keys = list(index)
                    index = {k: index[k] for i, k in enumerate(keys, position) if i % parts == part}
                    position += len(keys)
                pairs: dict[str, tuple[int, int]] = {}

                def wanted(key: str, lap: int = lap, pairs: dict = pairs) -> set[str]:
                    # A worker that wraps around its shards draws new pairs on each pass.
                    first, second = pairs[key] = choose_pair(self.seed, epoch + lap * 1_000_003, key, self.views_per_object)
                    return set(self._fields(first, second))

                for key, fields in self._shard_samples(url, index, wanted, failed):
                    first, second = pairs.pop(key)
                    kept = {f: fields.get(f) for f in self._fields(first, second)}
                    if DUPLICATE in fields:
                        kept[DUPLICATE] = fields[DUPLICATE]
                    seen += 1
                    yield key, url, kept, first, second, lap
            if not seen and parts > 1 and position:  # fewer objects than workers: this one repeats another's
                part %= position
                continue
            if not seen:
                if failed:
                    first = next(iter(failed.values()))
                    raise SourceError(f"no shard of {shards[:3]} gave a whole object ({len(failed)} failed; the first: {first})")
                raise SourceError(f"shards {shards[:3]} hold no samples")

    def _shard_samples(self, url: str, index: dict | None, wanted: Callable, failed: dict[str, str]) -> Iterator[tuple[str, dict]]:
        """The samples of one shard; under on_error="skip" a failing stream ends them (noted in `failed`) instead of raising."""
        samples = iterate_indexed(url, index, wanted) if index is not None else iterate_samples(url, wanted, self.remote)
        try:
            yield from samples
        except SourceError as error:
            if self.on_error == "raise":
                raise
            log.warning("skipping the rest of a shard (its whole objects before the failure are kept): %s", error)
            failed[url] = str(error)

    def _fields(self, first: int, second: int) -> list[str]:
        """The members an item of the pair (first, second) needs: its two views, latents, label, and the views' passes."""
        fields = [fmt.view_field(first), fmt.view_field(second), "latents.npy", "cls"]
        return fields + [fmt.pass_field(v, name) for v in (first, second) for name in self.passes]

    def _item(self, key: str, url: str, fields: dict[str, bytes | None], first: int, second: int) -> dict:
        if any(v is None for v in fields.values()):
            raise SourceError(f"{url}: object {key} lacks {[f for f, v in fields.items() if v is None]}")
        corrupt = [v for v in fields.values() if isinstance(v, _Corrupt)]
        if corrupt:
            raise SourceError(corrupt[0].message)
        views = []
        for view in (first, second):
            try:
                views.append(decode(fields[fmt.view_field(view)]))
            except (ValueError, RuntimeError) as error:
                raise SourceError(
                    f"{url}: object {key}: member {key}.{fmt.view_field(view)}: view {view} does not decode cleanly ({error})"
                ) from None
        try:
            latents = fmt.decode_latents(fields["latents.npy"], key, url)
        except fmt.ShardFormatError as error:
            raise SourceError(str(error)) from None
        passes = ({}, {})
        for by_name, view in zip(passes, (first, second)):
            for name in self.passes:
                try:
                    by_name[name] = decode_pass(name, fields[fmt.pass_field(view, name)])
                except PassError as error:
                    raise SourceError(f"{url}: object {key}: member {key}.{fmt.pass_field(view, name)} does not decode ({error})") from None
        action = torch.from_numpy(self.compute_action(latents[first], latents[second]))
        return pair_item(key, int(fields["cls"]), (first, second), tuple(views), action, passes)

    def __iter__(self) -> Iterator[dict]:
        epoch = int(self._epoch[0])
        shards, quota, stream_id, parts = self._my_shards_and_quota(epoch)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, 13, stream_id]))
        buffer: list = []
        produced = 0
        source = self._stream(shards, epoch, stream_id, parts)
        while produced < quota:
            # Fill only as far as this epoch still needs, so a small epoch is not mixed with the next pass.
            while len(buffer) < max(1, min(self.shuffle_buffer, quota - produced)):
                buffer.append(next(source))
            key, url, fields, first, second, _ = buffer.pop(int(rng.integers(len(buffer))))
            try:
                item = self._item(key, url, fields, first, second)
            except SourceError as error:
                if self.on_error == "raise":
                    raise
                log.warning("skipping a bad sample: %s", error)
                continue
            produced += 1
            yield item
