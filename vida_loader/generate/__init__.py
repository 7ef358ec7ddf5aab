"""``vida-loader generate``: realistic documents at full speed, to a server or a file.

Every source draws document ``i`` from an RNG seeded with (seed, ``i`` // ``BLOCK``) and
advanced through the block's earlier documents, so document ``i`` is a function of
(seed, ``i``) only, whatever worker makes it; workers get whole blocks.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

BLOCK = 1024  # documents drawn from one RNG seeding


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
