"""Reading a tar stream member by member, its headers parsed directly (ustar, GNU long names, pax), so that the
members a reader does not want are skipped (seeked over in a local file) instead of read."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

BLOCK = 512


def read_exact(stream: BinaryIO, size: int) -> bytes:
    """Exactly `size` bytes, or fewer only at the end of the stream."""
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def skip(stream: BinaryIO, size: int) -> None:
    """Pass over `size` bytes: a seek where the stream allows it, else read and drop them."""
    if size and getattr(stream, "seekable", lambda: False)():
        stream.seek(size, io.SEEK_CUR)
        return
    while size:
        chunk = stream.read(min(size, 1 << 20))
        if not chunk:
            raise EOFError("the stream ends inside a member")
        size -= len(chunk)


def _header(block: bytes) -> tuple[str, int, bytes]:
    """(name, size, type flag) of a tar header block, its checksum checked (ustar, GNU and pax headers)."""
    stored = block[148:156].split(b"\0", 1)[0].strip()
    if not stored or int(stored, 8) != sum(block[:148]) + 8 * 32 + sum(block[156:]):
        raise EOFError("a tar header fails its checksum")
    field = block[124:136]
    size = int.from_bytes(field[1:], "big") if field[0] & 0x80 else int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    name = block[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    prefix = block[345:500].split(b"\0", 1)[0] if block[257:262] == b"ustar" and block[257:263] != b"ustar " else b""
    if prefix:
        name = prefix.decode("utf-8", "surrogateescape") + "/" + name
    return name, size, block[156:157]


def _long_name(kind: bytes, data: bytes, current: str | None) -> str | None:
    """The name a GNU long-name record (L) or a pax header (x) gives the next member (g: global, no name)."""
    if kind == b"L":
        return data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    if kind == b"x":
        for line in data.split(b"\n"):
            if line.split(b" ", 1)[-1].startswith(b"path="):
                return line.split(b"=", 1)[1].decode("utf-8", "surrogateescape")
    return current


def members(stream: BinaryIO) -> Iterator[tuple[str, int]]:
    """(name, size) of each regular file of a tar stream; its data comes next, for the caller to read or skip."""
    long_name = None
    while True:
        block = read_exact(stream, BLOCK)
        if len(block) < BLOCK:
            if block:
                raise EOFError("the stream ends inside a header")
            return
        if block == bytes(BLOCK):  # the end-of-archive marker
            return
        name, size, kind = _header(block)
        padded = -(-size // BLOCK) * BLOCK
        if kind in (b"L", b"x", b"g"):
            long_name = _long_name(kind, read_exact(stream, padded)[:size], long_name)
            continue
        name, long_name = long_name or name, None
        if kind in (b"0", b"\0", b"7"):
            yield name, size
        else:  # not a regular file
            skip(stream, padded)
