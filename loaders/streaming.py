"""Streaming SIE pairs from shards at any URL webdataset opens (local paths, `pipe:`, http, s3 via pipe).

Unlike WebDataset's own pipeline (SPEC 7), each epoch draws a fresh shard permutation before the
shards are split by rank and worker; the pair is chosen while a sample streams past, so only the
two chosen views are kept and decoded; and every rank yields exactly the same number of samples,
so every rank has the same number of full batches and DDP never hangs.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from iebench.dataset import format as fmt
from iebench.dataset.finalize import FinalizeError, load_info
from iebench.loaders.actions import ActionComputer
from iebench.loaders.decode import PassError, decode, decode_pass
from iebench.loaders.sampling import choose_pair
from iebench.loaders.sources import SourceError
from torch.utils.data import IterableDataset, get_worker_info


class _Corrupt:
    """A member that failed its checksum, carried to where the item is built (and skipped or raised there)."""

    def __init__(self, message: str) -> None:
        self.message = message


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def iterate_samples(url: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {field: bytes}) for each sample of a tar stream, members grouped by key."""
    stream = wds.gopen(url)
    key = None
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            key, fields = None, {}
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.rsplit("/", 1)[-1]
                member_key, _, field = name.partition(".")
                if member_key != key and key is not None:
                    yield key, fields
                    fields = {}
                key = member_key
                fields[field] = tar.extractfile(member).read()
            if key is not None:
                yield key, fields
    except tarfile.TarError as error:
        where = f" after object {key}" if key is not None else ""
        raise SourceError(f"{url}: not a readable tar stream{where} ({error}; truncated or corrupt?)") from None
    finally:
        stream.close()


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

    Members of local shards are checked against the crc32 of their offset index (shards at other
    URLs have no index at hand: only the decoder checks them). With URLs, give `num_samples` (objects
    per epoch, all ranks together), `latent_names` and `views` (or keep the folder form). Items are the same dicts as `PairDataset`'s
    (with `passes`, `view1_<pass>` and `view2_<pass>` too). Create it after
    the process group is initialised (or pass `rank` and `world_size`).
    """

    def __init__(self, root: Path | list[str], split: str = "train", action: str = "rotation", seed: int = 0,
                 shuffle_buffer: int = 256, num_samples: int | None = None, latent_names: tuple[str, ...] | None = None,
                 views: int | None = None, canonical: bool = False, on_error: str = "raise",
                 rank: int | None = None, world_size: int | None = None, passes: tuple[str, ...] = ()) -> None:
        self.passes = tuple(passes)
        if isinstance(root, (str, Path)) and Path(root).is_dir():
            try:
                info = load_info(Path(root))
            except FinalizeError as error:
                raise SourceError(str(error)) from None
            self.urls = [str(Path(root) / s["name"]) for s in info["splits"][split]["shards"]]
            num_samples = num_samples or info["splits"][split]["objects"]
            latent_names, views = tuple(info["latent_names"]), info["views_per_object"]
            missing = [name for name in self.passes if name not in info.get("passes", ())]
            if missing:
                raise SourceError(f"{root} has no {', '.join(missing)} pass (it holds {', '.join(info.get('passes', ())) or 'none'})")
        else:
            self.urls = list(root)
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
        default_rank, default_world = _rank_and_world()
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

    def _my_shards_and_quota(self, epoch: int) -> tuple[list[str], int, int]:
        rank, world = self.rank, self.world_size
        worker = get_worker_info()
        index, workers = (worker.id, worker.num_workers) if worker else (0, 1)
        order = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, 11])).permutation(len(self.urls))
        shards = [self.urls[i] for i in order]
        rank_shards = shards[rank::world] or [shards[rank % len(shards)]]
        mine = rank_shards[index::workers] or [rank_shards[index % len(rank_shards)]]
        per_rank = self.samples_per_rank()
        quota = per_rank // workers + (1 if index < per_rank % workers else 0)
        return mine, quota, rank * workers + index

    def _stream(self, shards: list[str], epoch: int) -> Iterator[tuple[str, str, dict[str, bytes], int, int, int]]:
        """Endless (key, url, kept fields, first, second, pass) over the worker's shards, pair chosen on the fly."""
        for passes in range(1 << 30):
            seen = 0
            for url in shards:
                if url not in self._indexes:
                    self._indexes[url] = local_index(url)
                for key, fields in iterate_samples(url):
                    # A worker that wraps around its shards draws new pairs on each pass.
                    first, second = choose_pair(self.seed, epoch + passes * 1_000_003, key, self.views_per_object)
                    wanted = [f"{first:03d}.jpg", f"{second:03d}.jpg", "latents.npy", "cls"]
                    wanted += [fmt.pass_field(v, name) for v in (first, second) for name in self.passes]
                    kept = {f: fields.get(f) for f in wanted}
                    self._check_members(url, key, kept)
                    seen += 1
                    yield key, url, kept, first, second, passes
            if not seen:
                raise SourceError(f"shards {shards[:3]} hold no samples")

    def _check_members(self, url: str, key: str, kept: dict[str, bytes | None]) -> None:
        """Mark kept members whose crc32 differs from the local index's (None: no index to check against)."""
        index = self._indexes.get(url)
        members = index.get(key) if index else None
        if members is None:
            return
        for field, data in kept.items():
            span = members.get(field)
            if data is not None and span is not None and len(span) > 2 and (len(data) != span[1] or zlib.crc32(data) != span[2]):
                kept[field] = _Corrupt(f"{url}: object {key}: member {key}.{field} does not match its checksum in the index "
                                       "(the shard is corrupt or was changed): re-pack it or restore it from a copy")

    def _item(self, key: str, url: str, fields: dict[str, bytes | None], first: int, second: int) -> dict:
        if any(v is None for v in fields.values()):
            raise SourceError(f"{url}: object {key} lacks {[f for f, v in fields.items() if v is None]}")
        corrupt = [v for v in fields.values() if isinstance(v, _Corrupt)]
        if corrupt:
            raise SourceError(corrupt[0].message)
        views = []
        for view in (first, second):
            try:
                views.append(decode(fields[f"{view:03d}.jpg"]))
            except (ValueError, RuntimeError) as error:
                raise SourceError(f"{url}: object {key}: member {key}.{view:03d}.jpg: view {view} does not decode cleanly ({error})") from None
        view1, view2 = views
        try:
            latents = np.load(io.BytesIO(fields["latents.npy"]), allow_pickle=False)
        except ValueError as error:
            raise SourceError(f"{url}: object {key}: member {key}.latents.npy unreadable ({error})") from None
        item = {"view1": view1, "view2": view2,
                "action": torch.from_numpy(self.compute_action(latents[first], latents[second])),
                "label": int(fields["cls"]), "key": key, "views": torch.tensor([first, second])}
        for prefix, view in (("view1_", first), ("view2_", second)):
            for name in self.passes:
                try:
                    item[prefix + name] = decode_pass(name, fields[fmt.pass_field(view, name)])
                except PassError as error:
                    raise SourceError(f"{url}: object {key}: member {key}.{fmt.pass_field(view, name)} does not decode ({error})") from None
        return item

    def __iter__(self) -> Iterator[dict]:
        epoch = int(self._epoch[0])
        shards, quota, stream_id = self._my_shards_and_quota(epoch)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, 13, stream_id]))
        buffer: list = []
        produced = 0
        source = self._stream(shards, epoch)
        while produced < quota:
            # Fill only as far as this epoch still needs, so a small epoch is not mixed with the next pass.
            while len(buffer) < max(1, min(self.shuffle_buffer, quota - produced)):
                buffer.append(next(source))
            key, url, fields, first, second, _ = buffer.pop(int(rng.integers(len(buffer))))
            try:
                item = self._item(key, url, fields, first, second)
            except SourceError:
                if self.on_error == "raise":
                    raise
                continue
            produced += 1
            yield item
