"""Shards over HTTP from a local server that stalls, cuts the body short, dies between epochs or refuses the connection.

Every failure ends in a `SourceError` naming the URL and what failed, within a bounded time (short timeouts
here); a server that recovers gives the full epoch, resumed where the bytes stopped (range requests, or a
reopen and skip where the server has none); under on_error="skip" the objects that arrived whole are kept.
"""

from __future__ import annotations

import socket
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from iebench.dataset import format as fmt
from iebench.loaders import StreamingPairs
from iebench.loaders.remote import RemoteOptions
from iebench.loaders.sources import SourceError

FAST = RemoteOptions(timeout=0.3, retries=2, backoff=0.02)  # a failure is given up within about a second


class ShardServer:
    """A folder served on 127.0.0.1; the first `faulty` requests (-1: all) stop at byte `limit` of the file (stall or cut)."""

    def __init__(self, root: Path, ranges: bool = True) -> None:
        self.root, self.ranges = root, ranges
        self.fault, self.limit, self.faulty, self.planned = None, 0, 0, []
        self.requests: list[str | None] = []  # the Range header of each request (None: the whole file)
        self.etags: list[str] = []  # the ETag of the n-th request (the last one for the later ones), none if empty
        self.release = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, server=self))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def break_(self, fault: str, limit: int, faulty: int = -1) -> None:
        """From now on the first `faulty` requests `fault` ("stall" or "cut" at byte `limit`, "503": unavailable, "silent": no answer at all)."""
        self.fault, self.limit, self.faulty = fault, limit, faulty

    def plan(self, *faults: str, limit: int = 0) -> None:
        """The next requests get these faults, one each, then none."""
        self.fault, self.limit, self.faulty, self.planned = None, limit, 0, list(faults)

    def take_fault(self) -> str | None:
        if self.planned:
            return self.planned.pop(0)
        if self.faulty == 0:
            return None
        self.faulty -= 1 if self.faulty > 0 else 0
        return self.fault

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, *args, server: ShardServer, **kwargs) -> None:
        self.shards = server
        super().__init__(*args, **kwargs)

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path, wanted = self.shards.root / self.path.lstrip("/"), self.headers.get("Range")
        self.shards.requests.append(wanted)
        if not path.is_file():
            self.send_error(404)
            return
        data, fault = path.read_bytes(), self.shards.take_fault()
        if fault == "503":
            self.send_error(503)
            return
        if fault == "silent":  # accepts the connection, never answers
            self.shards.release.wait(10)
            return
        start = int(wanted.split("=")[1].split("-")[0]) if wanted and self.shards.ranges else 0
        self.send_response(206 if start else 200)
        if self.shards.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        if self.shards.etags:
            self.send_header("ETag", self.shards.etags[min(len(self.shards.requests), len(self.shards.etags)) - 1])
        self.end_headers()
        try:
            if fault is None:
                self.wfile.write(data[start:])
                return
            self.wfile.write(data[start : max(start, self.shards.limit)])
            self.wfile.flush()
            if fault == "stall":
                self.shards.release.wait(10)
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: what it should do
            self.close_connection = True


@pytest.fixture(scope="module")
def one_shard(tiny_render, tmp_path_factory):
    """The tiny render packed with one shard per split: (folder, _info.json, the train shard's index)."""
    from iebench.dataset.pack import PackOptions, pack

    out = tmp_path_factory.mktemp("served")
    info, _ = pack(tiny_render[0].out, out, PackOptions(name="served", shard_size_mb=100, workers=1))
    (shard,) = info["splits"]["train"]["shards"]
    return out, info, fmt.read_index(out / shard["name"])


@pytest.fixture
def server(one_shard):
    served = ShardServer(one_shard[0])
    yield served
    served.stop()


def remote_pairs(urls: list[str], info: dict, **options) -> StreamingPairs:
    """StreamingPairs over URLs, told the train split's size, latents and views, with short timeouts."""
    options = {"seed": 3, "shuffle_buffer": 1, "remote": FAST} | options
    objects = info["splits"]["train"]["objects"]
    return StreamingPairs(urls, num_samples=objects, latent_names=tuple(info["latent_names"]), views=info["views_per_object"], **options)


def by_key(items) -> dict:
    return {item["key"]: (tuple(item["views"].tolist()), item["action"]) for item in items}


def local_epoch(one_shard) -> dict:
    return by_key(StreamingPairs(one_shard[0], "train", seed=3, shuffle_buffer=1))


def assert_same_epoch(items, one_shard) -> None:
    got, expected = by_key(items), local_epoch(one_shard)
    assert len(items) == len(expected) and got.keys() == expected.keys()
    for key, (views, action) in expected.items():
        assert got[key][0] == views and torch.equal(got[key][1], action)


def middle_object(index: dict) -> tuple[int, set[str]]:
    """A byte inside the middle object's first member, and the keys of the objects wholly before it."""
    samples = index["samples"]
    middle = len(samples) // 2
    assert middle >= 1, "the tiny split needs at least two objects in its shard"
    first = min(span[0] for span in samples[middle]["members"].values())
    return first + 10, {s["key"] for s in samples[:middle]}


def timed(call):
    start = time.monotonic()
    try:
        call()
    finally:
        timed.seconds = time.monotonic() - start


def test_a_stalled_server_is_a_clear_error_within_the_timeout(one_shard, server):
    out, info, index = one_shard
    url = server.url(index["shard"])
    server.break_("stall", middle_object(index)[0])
    with pytest.raises(
        SourceError,
        match=rf"{url}: no data within the read timeout \(the server stalled\) at byte [\d,]+ of [\d,]+ \(gave up after 3 tries\)",
    ):
        timed(lambda: list(remote_pairs([url], info)))
    assert timed.seconds < 5  # 3 tries of 0.3 s and two short back-offs, not forever
    assert server.requests[0] is None and all(r and r.startswith("bytes=") for r in server.requests[1:])
    server.break_("silent", 0)
    with pytest.raises(SourceError, match=rf"{url}: no answer within the timeout .* \(gave up after 3 tries\) before its first object"):
        timed(lambda: list(remote_pairs([url], info)))
    assert timed.seconds < 5


@pytest.mark.parametrize("fault", ["stall", "cut"])
def test_a_server_that_recovers_gives_the_full_epoch_resumed_by_range(one_shard, server, fault, caplog):
    out, info, index = one_shard
    limit, _ = middle_object(index)
    server.break_(fault, limit, faulty=1)
    url = server.url(index["shard"])
    items = list(remote_pairs([url], info))
    assert_same_epoch(items, one_shard)
    assert server.requests == [None, f"bytes={limit}-"]  # the second request starts where the bytes stopped
    assert f"{url}: " in caplog.text and f"at byte {limit:,} of" in caplog.text and "trying again in 0.02 s (retry 1 of 2)" in caplog.text


def test_an_unavailable_server_is_retried_and_a_changed_shard_is_not(one_shard, server):
    out, info, index = one_shard
    url = server.url(index["shard"])
    limit, _ = middle_object(index)
    server.plan("503", "503", "cut", limit=limit)
    assert_same_epoch(list(remote_pairs([url], info)), one_shard)
    assert server.requests == [None, None, None, f"bytes={limit}-"]  # two 503 answers, the shard cut short, its rest
    server.requests.clear()
    server.etags = ['"first"', '"second"']
    server.break_("cut", middle_object(index)[0], faulty=1)
    with pytest.raises(SourceError, match=rf'{url}: the shard changed on the server while it was read \("first" became "second"\)'):
        list(remote_pairs([url], info))
    assert len(server.requests) == 2  # not tried again: its bytes would not fit together


def test_a_server_without_ranges_is_reopened_and_skipped(one_shard):
    out, info, index = one_shard
    server = ShardServer(out, ranges=False)
    try:
        server.break_("cut", middle_object(index)[0], faulty=1)
        items = list(remote_pairs([server.url(index["shard"])], info))
        assert_same_epoch(items, one_shard)
        assert server.requests == [None, None]  # read again from the start, the bytes already had skipped
    finally:
        server.stop()


def test_a_cut_body_is_named_and_skip_keeps_the_whole_objects(one_shard, server, caplog):
    out, info, index = one_shard
    url = server.url(index["shard"])
    limit, whole = middle_object(index)
    server.break_("cut", limit)
    with pytest.raises(
        SourceError,
        match=rf"{url}: the body ended early .* \(gave up after 3 tries\) in object \S+ \({len(whole)} whole objects? before it\)",
    ):
        list(remote_pairs([url], info))
    items = list(remote_pairs([url], info, on_error="skip"))
    assert {item["key"] for item in items} == whole  # the objects that arrived whole, no other
    assert len(items) == info["splits"]["train"]["objects"]  # the epoch's length holds: they come again with new pairs
    assert "skipping the rest of a shard" in caplog.text and url in caplog.text


def test_a_server_that_dies_between_epochs(one_shard, server):
    out, info, index = one_shard
    url = server.url(index["shard"])
    stream = remote_pairs([url], info)
    assert_same_epoch(list(stream), one_shard)
    server.stop()
    stream.set_epoch(1)
    with pytest.raises(SourceError, match=rf"{url}: connection refused \(is the server running\?\) at byte 0 \(gave up after 3 tries\)"):
        timed(lambda: list(stream))
    assert timed.seconds < 5
    skipping = remote_pairs([url], info, on_error="skip")
    with pytest.raises(SourceError, match=r"no shard of .* gave a whole object \(1 failed; the first: .*connection refused"):
        list(skipping)


def test_a_refused_connection_and_a_missing_shard(one_shard, server):
    out, info, index = one_shard
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{index['shard']}"
    with pytest.raises(
        SourceError, match=rf"{url}: connection refused .* \(gave up after 3 tries\) before its first object; check the server"
    ):
        list(remote_pairs([url], info))
    missing = server.url("nowhere.tar")
    with pytest.raises(SourceError, match=rf"{missing}: the server answered HTTP 404"):
        list(remote_pairs([missing], info))
    assert server.requests == [None]  # a 404 is not retried


def test_remote_options_are_checked():
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        RemoteOptions(timeout=0)
    with pytest.raises(ValueError, match="must not be negative"):
        RemoteOptions(retries=-1)
    assert [RemoteOptions(backoff=1, max_backoff=5).delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
