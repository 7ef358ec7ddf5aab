"""Read ahead on a thread of its own: a deep verify's two sides, a follow's next change
batches. The consumer gets the items in order; an exception on the reading thread is
raised to it at that point; leaving the block stops the thread at its next hand-over
(bounded: every wait on the queue has a timeout)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_END = object()


class ReadAhead(Generic[T]):
    """Iterate ``items`` on a thread, at most ``depth`` hand-overs ahead of the consumer.

    A hand-over holds up to ``chunk`` items, and ends early once ``size`` of its items
    reaches ``chunk_bytes`` (bounding memory by bytes, not only by count).
    """

    def __init__(
        self,
        items: Iterable[T],
        depth: int,
        name: str,
        chunk: int = 1,
        chunk_bytes: int | None = None,
        size: Callable[[T], int] | None = None,
    ) -> None:
        self.items = items
        self.chunk, self.chunk_bytes, self.size = chunk, chunk_bytes, size
        self.q: queue.Queue[Any] = queue.Queue(depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._produce, name=name, daemon=True)

    def __enter__(self) -> Iterator[T]:
        self.thread.start()
        return self._consume()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        while self.thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self.q.get(timeout=0.1)  # unblock a full queue
            self.thread.join(timeout=0.1)

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            chunk: list[T] = []
            nbytes = 0
            for item in self.items:
                chunk.append(item)
                if self.size is not None:
                    nbytes += self.size(item)
                full = self.chunk_bytes is not None and nbytes >= self.chunk_bytes
                if len(chunk) >= self.chunk or full:
                    if not self._put(chunk):
                        return
                    chunk, nbytes = [], 0
            if chunk and not self._put(chunk):
                return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)

    def _consume(self) -> Iterator[T]:
        while True:
            try:
                item = self.q.get(timeout=1.0)
            except queue.Empty:
                if not self.thread.is_alive():
                    raise RuntimeError(f"{self.thread.name} stopped") from None
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
