"""``vida-loader generate``: realistic documents at full speed, to a server or a file.

Every source draws document ``i`` from an RNG seeded with (seed, ``i`` // ``BLOCK``) and
advanced through the block's earlier documents, so document ``i`` is a function of
(seed, ``i``) only, whatever worker makes it; workers get whole blocks.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator

from bson import ObjectId

BLOCK = 1024  # documents drawn from one RNG seeding
BASE_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z: document i is made about i*STEP_MS later
STEP_MS = 2_500


def iter_blocks(
    seed: int, start: int, stop: int, one: Callable[[random.Random, int], bytes]
) -> Iterator[bytes]:
    """``one(rng, i)`` for ``i`` in ``start`` to ``stop - 1``, each block's RNG replayed
    from the block's first document."""
    i = start
    while i < stop:
        block = i // BLOCK
        first = block * BLOCK
        end = min(stop, first + BLOCK)
        rng = random.Random(f"{seed}:{block}")
        for j in range(first, end):
            doc = one(rng, j)
            if j >= i:
                yield doc
        i = end


def index_ms(i: int) -> int:
    """Milliseconds since the epoch that document ``i`` is dated from."""
    return BASE_MS + i * STEP_MS


def growing_id(tag: bytes, i: int, ms: int | None = None) -> ObjectId:
    """An ObjectId that grows with ``i``: time part (``ms``, default ``index_ms(i)``), the
    seed's 3-byte tag, then ``i`` in 5 bytes; unique per (seed, ``i``). A slice's
    documents then form one ``_id`` range."""
    secs = (index_ms(i) if ms is None else ms) // 1000
    return ObjectId(struct.pack(">I", secs) + tag + i.to_bytes(5, "big"))


class BlockSource:
    """Base of the document sources: ``_one(rng, i)`` makes document ``i``'s BSON."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.tag = struct.pack(">I", seed & 0xFFFFFFFF)[1:]  # 3 bytes of every _id

    def _one(self, rng: random.Random, i: int) -> bytes:
        raise NotImplementedError

    def iter_range(self, start: int, stop: int) -> Iterator[bytes]:
        """Documents ``start`` to ``stop - 1`` as BSON, each a function of (seed, index)."""
        return iter_blocks(self.seed, start, stop, self._one)

    def encode_range(self, start: int, stop: int) -> list[bytes]:
        return list(self.iter_range(start, stop))
