"""Server shutdown, told to the open streams so each can end with a clean `abort`."""

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ShutdownNotice:
    """Tells open streams that the server is shutting down; `begin()` is safe from any thread.

    Servers call it when they stop accepting connections, before they wait for open ones, so a
    client gets a clean `abort` instead of a connection cut in the middle of an answer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[asyncio.Future] = set()
        self._started = False

    @property
    def open_streams(self) -> int:
        return len(self._waiters)

    def begin(self) -> None:
        with self._lock:
            self._started = True
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.get_loop().call_soon_threadsafe(_resolve, waiter)

    @contextmanager
    def watch(self) -> Iterator[asyncio.Future]:
        """A future resolved when shutdown begins, for as long as one stream is open."""
        waiter = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters.add(waiter)
            if self._started:
                _resolve(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                self._waiters.discard(waiter)


def _resolve(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


shutdown = ShutdownNotice()
