"""Stable seed words from names: the same in every process (Python's `hash()` is not)."""

from __future__ import annotations

import hashlib


def name_words(text: str, count: int = 4) -> list[int]:
    """`count` (at most 8) 32-bit words of the SHA-256 of `text`, for a `numpy.random.SeedSequence`."""
    digest = hashlib.sha256(text.encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 4 * count, 4)]
