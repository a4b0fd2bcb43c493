"""Shards at URLs that survive a bad network: every read has a timeout, and http(s) reads retry with back-off.

An http(s) shard is read with the standard library's HTTP client: a read that waits longer than the timeout
fails, and a failed connection, read or cut-short body is retried after a back-off that doubles, resuming
where the bytes stopped (a range request where the server accepts them, else the shard opened again and the
bytes already read skipped). A `pipe:` command's output has the same timeout (the command and its children are
stopped when its output stalls) but no retries: a command is not a source that can be resumed. webdataset's own http reader
(curl in a pipe) has a connect timeout and retries but no read timeout, and cannot resume; fsspec's http file
system needs aiohttp and has no retries of its own; so neither is used here.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import logging
import os
import select
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import BinaryIO

import webdataset as wds

log = logging.getLogger(__name__)

NO_ANSWER = "no answer within the timeout (is the host reachable, the server alive?)"

GIVE_UP_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 416})  # a retry cannot help: the request or the URL is wrong


@dataclass(frozen=True)
class RemoteOptions:
    """How shards at URLs are read: seconds a read may wait, retries after a failure, and the first back-off (doubling)."""

    timeout: float = 30.0
    retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")
        if self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError(f"retries, backoff and max_backoff must not be negative ({self})")

    def delay(self, failures: int) -> float:
        """Seconds to wait before the try that follows `failures` failures in a row."""
        return min(self.max_backoff, self.backoff * 2 ** (failures - 1))


class RemoteError(OSError):
    """A shard at a URL that could not be read; the message says what failed, where and after how many tries."""


class _NoRetry(RemoteError):
    """A failure that another try cannot mend."""


def is_http(url: str) -> bool:
    """Whether `url` is read by the retrying http reader."""
    return url.startswith(("http://", "https://"))


def open_url(url: str, options: RemoteOptions) -> BinaryIO:
    """A stream of the shard at `url`: http(s) with timeout and retries, a `pipe:` command with a timeout, else webdataset's opener."""
    if is_http(url):
        return io.BufferedReader(HTTPShard(url, options), buffer_size=1 << 16)
    if url.startswith("pipe:"):
        return CommandStream(url[len("pipe:") :], options.timeout)
    return wds.gopen(url)


class HTTPShard(io.RawIOBase):
    """The body of an http(s) URL, read with a timeout and resumed after failures (range requests where allowed)."""

    def __init__(self, url: str, options: RemoteOptions) -> None:
        self.url, self.options = url, options
        self.position = 0  # bytes of the body delivered so far
        self.size: int | None = None  # the body's length, when the server says it
        self.ranges = False  # whether the server accepts range requests
        self.validator: str | None = None  # ETag or Last-Modified of the first answer
        self.answered = False  # whether an answer came yet
        self.failures = 0  # failed tries in a row (reset when bytes arrive)
        self.tries = 0  # requests made in all
        self.response: http.client.HTTPResponse | None = None
        self._with_retries(self._connect)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        """Bytes into `buffer`; retried (and resumed) on a stall, a dropped connection or a body cut short."""
        return self._with_retries(lambda: self._read_into(buffer))

    def close(self) -> None:
        if self.response is not None:
            self.response.close()
            self.response = None
        super().close()

    def _read_into(self, buffer) -> int:
        if self.response is None:
            self._connect()
        data = self.response.read1(len(buffer))  # what has arrived (one receive), so a stall loses none of it
        count = len(data)
        buffer[:count] = data
        if count == 0 and len(buffer) and self.size is not None and self.position < self.size:
            raise RemoteError("the body ended early (connection closed by the server)")
        self.position += count
        if count:
            self.failures = 0
        return count

    def _with_retries(self, attempt):
        while True:
            try:
                return attempt()
            except (OSError, http.client.HTTPException) as error:
                self._drop()
                reason = describe(error)
                if isinstance(error, urllib.error.HTTPError) and error.code in GIVE_UP_STATUSES:
                    raise RemoteError(f"the server answered {reason}") from None
                if isinstance(error, _NoRetry) or isinstance(getattr(error, "reason", error), ssl.SSLCertVerificationError):
                    raise RemoteError(reason) from None
                self.failures += 1
                where = f"at byte {self.position:,} of {self.size:,}" if self.size else f"at byte {self.position:,}"
                if self.failures > self.options.retries:
                    raise RemoteError(f"{reason} {where} (gave up after {self.tries} tries)") from None
                delay = self.options.delay(self.failures)
                log.warning(
                    "%s: %s %s; trying again in %g s (retry %d of %d)", self.url, reason, where, delay, self.failures, self.options.retries
                )
                time.sleep(delay)

    def _drop(self) -> None:
        if self.response is not None:
            try:
                self.response.close()
            except (OSError, http.client.HTTPException):
                pass
            self.response = None

    def _connect(self) -> None:
        """Open the URL at the current position: a range request where the server accepts them, else from the start and skip."""
        headers = {"User-Agent": "iebench"}
        if self.position and self.ranges:
            headers["Range"] = f"bytes={self.position}-"
        self.tries += 1
        try:
            response = urllib.request.urlopen(urllib.request.Request(self.url, headers=headers), timeout=self.options.timeout)
        except TimeoutError:  # connected, but no answer came (a timeout while connecting comes as a URLError)
            raise RemoteError(NO_ANSWER) from None
        validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        if not self.answered:
            self.answered, self.validator = True, validator
            self.ranges = response.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
        elif self.validator and validator and validator != self.validator:
            response.close()
            raise _NoRetry(f"the shard changed on the server while it was read ({self.validator} became {validator})")
        if response.status == 206:
            start, total = content_range(response.headers.get("Content-Range", ""))
            if start != self.position:
                response.close()
                self.ranges = False  # it answered another range than asked: read from the start instead
                raise RemoteError(f"the server answered a range from byte {start}, not {self.position}")
            self.size = total
        else:
            length = response.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            if self.size is not None and size is not None and size != self.size:
                response.close()
                raise _NoRetry(f"the shard changed on the server while it was read ({self.size:,} bytes became {size:,})")
            self.size = size
            self._skip(response, self.position)
        self.response = response

    def _skip(self, response: http.client.HTTPResponse, count: int) -> None:
        """Read and drop the first `count` bytes of a response opened from the start again."""
        while count:
            chunk = response.read(min(count, 1 << 20))
            if not chunk:
                raise RemoteError(f"the body ended at byte {self.position - count:,} while skipping to byte {self.position:,}")
            count -= len(chunk)


def content_range(header: str) -> tuple[int, int | None]:
    """(first byte, total length or None) of a `Content-Range: bytes a-b/n` header."""
    try:
        unit, _, spec = header.partition(" ")
        span, _, total = spec.partition("/")
        if unit != "bytes":
            raise ValueError
        return int(span.split("-", 1)[0]), (int(total) if total.isdigit() else None)
    except ValueError:
        raise RemoteError(f"the server answered a range with an unreadable Content-Range {header!r}") from None


def describe(error: BaseException) -> str:
    """What failed, in a few words: a timeout, a refused connection, an HTTP status, a body cut short."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        if isinstance(error.reason, TimeoutError):  # while connecting, before any answer
            return NO_ANSWER
        error = error.reason if isinstance(error.reason, BaseException) else error
    if isinstance(error, TimeoutError):
        return "no data within the read timeout (the server stalled)"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(error, (ConnectionResetError, http.client.IncompleteRead, http.client.RemoteDisconnected)):
        return f"connection dropped ({type(error).__name__})"
    return str(error) or type(error).__name__


class CommandStream:
    """The output of a `pipe:` command; a read that waits longer than `timeout` seconds stops the command (its process group)."""

    def __init__(self, command: str, timeout: float) -> None:
        self.command, self.timeout = command, timeout
        self.proc = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, bufsize=0, start_new_session=True)
        self.fd = self.proc.stdout.fileno()
        self._buffer, self._at = b"", 0  # what the last read from the pipe gave, and how much of it was handed out

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (at least one, or none at the end); a TimeoutError once none came for `timeout` seconds."""
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        if self._at == len(self._buffer):
            ready, _, _ = select.select([self.fd], [], [], self.timeout)
            if not ready:
                self._stop()
                raise TimeoutError(f"no data for {self.timeout:g} s (the command was stopped)")
            self._buffer, self._at = os.read(self.fd, max(size, 1 << 16)), 0
        data = self._buffer[self._at : self._at + size]
        self._at += len(data)
        return data

    def exit_note(self) -> str:
        """' (the command exited with status N)' where it has ended with a failure, else ''."""
        try:
            status = self.proc.wait(min(self.timeout, 1.0))
        except subprocess.TimeoutExpired:
            return ""
        return f" (the command exited with status {status})" if status not in PIPE_CLOSED else ""

    def close(self) -> None:
        """Close the output and wait (at most the timeout) for the command; a failed exit is an OSError."""
        self.proc.stdout.close()
        try:
            status = self.proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self._stop()
            raise TimeoutError(f"the command did not end within {self.timeout:g} s of its output closing (stopped)") from None
        if status not in PIPE_CLOSED:
            raise OSError(f"the command exited with status {status}")

    def abort(self) -> None:
        """Stop the command and close its output: the rest is not wanted."""
        self._stop()
        self.proc.stdout.close()

    def _stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


PIPE_CLOSED = (0, -signal.SIGPIPE, 128 + signal.SIGPIPE)  # a success, or a command that found its reader gone
