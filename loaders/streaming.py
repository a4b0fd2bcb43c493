"""Streaming SIE pairs from shards at any URL webdataset opens (local paths, `pipe:`, http, s3 via pipe).

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
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from iebench.dataset import format as fmt
from iebench.dataset import tarstream
from iebench.dataset.description import read_description
from iebench.dataset.finalize import FinalizeError
from iebench.loaders.actions import ActionComputer
from iebench.loaders.decode import PassError, decode, decode_pass
from iebench.loaders.items import pair_item
from iebench.loaders.loader import rank_and_world
from iebench.loaders.sampling import choose_pair
from iebench.loaders.sources import SourceError, check_on_error, requested_passes

log = logging.getLogger(__name__)


class _Corrupt:
    """A member that failed its checksum, carried to where the item is built (and skipped or raised there)."""

    def __init__(self, message: str) -> None:
        self.message = message


def iterate_samples(url: str, wanted: Callable[[str], set[str]] | None = None) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {field: bytes}) for each sample of a tar stream, members grouped by key.

    `wanted(key)` gives the fields to keep for a sample (None: keep every field); the bytes of the other
    members are skipped (seeked over in a local file) rather than read into memory, so keeping 2 views of
    50 costs little more than reading the 2. Tar headers are read directly (ustar, GNU long names, pax).
    """
    stream = wds.gopen(url)
    key, fields, keep = None, {}, None
    try:
        for name, size in tarstream.members(stream):
            member_key, _, field = name.rsplit("/", 1)[-1].partition(".")
            if member_key != key:
                if key is not None:
                    yield key, fields
                key, fields = member_key, {}
                keep = None if wanted is None else wanted(key)
            padded = -(-size // tarstream.BLOCK) * tarstream.BLOCK
            if keep is None or field in keep:
                data = tarstream.read_exact(stream, size)
                if len(data) < size:
                    raise EOFError("the stream ends inside a member")
                fields[field] = data
                tarstream.skip(stream, padded - size)
            else:
                tarstream.skip(stream, padded)
        if key is not None:
            yield key, fields
    except (EOFError, ValueError, OSError) as error:
        where = f" after object {key}" if key is not None else ""
        raise SourceError(f"{url}: not a readable tar stream{where} ({error}; truncated or corrupt?)") from None
    finally:
        stream.close()


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
    the process group is initialised (or pass `rank` and `world_size`).
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
        with `parts` > 1 (indexed shards), only the objects at positions `part` mod `parts` of the shards' order."""
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

                samples = iterate_indexed(url, index, wanted) if index is not None else iterate_samples(url, wanted)
                for key, fields in samples:
                    first, second = pairs.pop(key)
                    kept = {f: fields.get(f) for f in self._fields(first, second)}
                    seen += 1
                    yield key, url, kept, first, second, lap
            if not seen and parts > 1 and position:  # fewer objects than workers: this one repeats another's
                part %= position
                continue
            if not seen:
                raise SourceError(f"shards {shards[:3]} hold no samples")

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
