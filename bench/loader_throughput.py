"""Loader throughput: SIE pairs per second in one process (what each DataLoader worker delivers).

Side by side on the same data, in one run: the indexed loader over shards (`PairDataset`), the
streaming loader (`StreamingPairs`), `PairDataset` over the original directory layout, a loader
written the way the original SIE dataset is (PIL, one file per view and per latent, CPU float
normalisation), and the decode floor of this machine (two torchvision JPEG decodes from memory).

The cost of integrity: the indexed loader checks every member it reads against its crc32 in the
index and decodes strictly (a libjpeg warning is an error); it is also timed with the crc32 dropped
from the index (as a format-1 index) and with torchvision's plain decode, on the same shards. Rows
are interleaved and repeated (`--repeats`), and each keeps its best rate, so that the shared
machine's noise does not land on one row.

Uses synthetic JPEGs of realistic size (about 6.5 KB at 256 px); the files are in the page cache.

    python bench/loader_throughput.py [--objects 200] [--views 50] [--pairs 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.spatial.transform import Rotation
from synthetic import write_loose  # bench/synthetic.py (scripts run from bench/)
from torchvision import transforms
from torchvision.io import ImageReadMode, decode_jpeg

from iebench.cores import available_cores
from iebench.dataset.pack import PackOptions, pack
from iebench.layout import image_path, latent_path
from iebench.loaders import PairDataset, StreamingPairs
from iebench.loaders import datasets as loader_datasets
from iebench.loaders.decode import SIE_MEAN, SIE_STD, decode


class OriginalStyleDataset(torch.utils.data.Dataset):
    """A pair loader as the released SIE code writes it: PIL, a file per view and per latent, float on the CPU."""

    def __init__(self, root: Path, views: int) -> None:
        self.folders = sorted(p for p in Path(root).glob("*/*") if p.is_dir())
        self.views, self.rng = views, np.random.default_rng(0)
        self.transform = transforms.Compose([transforms.Resize((256, 256)), transforms.ToTensor(), transforms.Normalize(SIE_MEAN, SIE_STD)])

    def __len__(self) -> int:
        return len(self.folders)

    def _image(self, path: Path) -> Image.Image:
        with open(path, "rb") as handle:
            return Image.open(handle).convert("RGB")

    def __getitem__(self, index: int):
        folder = self.folders[index]
        first, second = self.rng.choice(self.views, 2, replace=False)
        image1, image2 = self._image(image_path(folder, first)), self._image(image_path(folder, second))
        latent1, latent2 = np.load(latent_path(folder, first)), np.load(latent_path(folder, second))
        relative = Rotation.from_euler("xyz", latent1[:3]).inv() * Rotation.from_euler("xyz", latent2[:3])
        return self.transform(image1), self.transform(image2), torch.FloatTensor(relative.as_quat()), 0


def pairs_per_second(fetch, pairs: int) -> float:
    """Call fetch(i) for i in range(pairs) after a short warm-up; pairs per second."""
    for i in range(20):
        fetch(i)
    start = time.perf_counter()
    for i in range(pairs):
        fetch(i)
    return pairs / (time.perf_counter() - start)


def plain_decode(data: bytes) -> torch.Tensor:
    """torchvision's decode without the strict check (a libjpeg warning stays a line on stderr)."""
    return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)


def unchecked(data: PairDataset) -> PairDataset:
    """The same dataset with the crc32 dropped from its index entries: members are read unchecked, as a format-1 index."""
    for entry in data.objects:
        for field, span in entry.members.items():
            entry.members[field] = span[:2]
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--views", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="Rounds over every row; each row keeps its best rate.")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one worker process uses one core
    with tempfile.TemporaryDirectory() as tmp:
        loose, shards = Path(tmp) / "loose", Path(tmp) / "shards"
        size = write_loose(loose, args.objects, args.views)
        pack(loose, shards, PackOptions(name="bench", shard_size_mb=16, val_fraction=0.0))
        indexed, on_disk = PairDataset(shards, "train"), PairDataset(loose, "train")
        bare = unchecked(PairDataset(shards, "train"))
        original = OriginalStyleDataset(loose, args.views)
        n = len(indexed)

        def epoch_item(data):
            size = len(data)

            def fetch(i):
                data.set_epoch(i // size)
                return data[i % size]

            return fetch

        sample = [indexed.source.read_view(e, v) for e in indexed.objects[:50] for v in (0, 1)]

        def streaming_fetcher(urls=None):
            if urls is None:
                stream = StreamingPairs(shards, "train", shuffle_buffer=64, num_samples=10**9)
            else:
                stream = StreamingPairs(
                    urls, "train", shuffle_buffer=64, num_samples=10**9, latent_names=indexed.latent_names, views=args.views
                )
            iterator = iter(stream)
            return lambda i: next(iterator)

        def with_plain_decode(fetch):
            def run(i):
                loader_datasets.decode = plain_decode
                try:
                    return fetch(i)
                finally:
                    loader_datasets.decode = decode

            return run

        streaming = streaming_fetcher()
        piped = streaming_fetcher([f"pipe:cat {path}" for path in sorted(shards.glob("*.tar"))])
        fetchers = {
            "decode floor (2 torchvision decodes from memory)": lambda i: (
                plain_decode(sample[2 * (i % 50)]),
                plain_decode(sample[2 * (i % 50) + 1]),
            ),
            "PairDataset, shards (indexed)": epoch_item(indexed),
            "PairDataset, shards, members unchecked (no crc32)": epoch_item(bare),
            "PairDataset, shards, unchecked and plain decode": with_plain_decode(epoch_item(bare)),
            "StreamingPairs, local shards (read at the index's offsets)": streaming,
            "StreamingPairs, shards through a pipe (tar headers parsed, other members skipped)": piped,
            "PairDataset, original layout": epoch_item(on_disk),
            "original SIE-style (PIL, file per view, CPU float)": lambda i: original[i % n],
        }
        rows = {name: 0.0 for name in fetchers}
        for _ in range(args.repeats):
            for name, fetch in fetchers.items():
                rows[name] = max(rows[name], pairs_per_second(fetch, args.pairs))
    floor, baseline = rows["decode floor (2 torchvision decodes from memory)"], rows["original SIE-style (PIL, file per view, CPU float)"]
    print(
        f"\n{args.objects} objects x {args.views} synthetic views ({size / (args.objects * args.views) / 1024:.1f} KiB per view "
        f"with its latent), 256 px, one process, one thread, {platform.machine()} ({available_cores()} cores), page cache warm\n"
    )
    print("| loader | pairs/s | vs original-style | share of decode floor |")
    print("|---|---|---|---|")
    for name, rate in rows.items():
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.1f}x | {100 * rate / floor:.0f} % |")
    checked, bare_rate = rows["PairDataset, shards (indexed)"], rows["PairDataset, shards, unchecked and plain decode"]
    print(
        f"\nintegrity checks (crc32 of each member + strict decode): {checked:,.0f} against {bare_rate:,.0f} pairs/s unchecked, "
        f"ratio {checked / bare_rate:.3f} ({100 * (1 - checked / bare_rate):+.1f} % cost)"
    )


if __name__ == "__main__":
    main()
