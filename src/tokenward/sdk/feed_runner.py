"""How a :class:`~tokenward.sdk.feed.RevocationFeed` runs: as a task of the caller's event
loop, or in a daemon thread with a loop of its own (for sync frameworks: Flask, Django).
A mixin: the feed owns the state; its ``run`` follows the issuer until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tokenward.sdk.feed_sources import HTTPSource

__all__ = ["FeedRunner"]


class FeedRunner:
    http_source: HTTPSource | None
    ready: threading.Event
    _task: asyncio.Task[None] | None
    _thread: threading.Thread | None
    _loop: asyncio.AbstractEventLoop | None

    async def run(self) -> None:
        raise NotImplementedError

    def start(self) -> asyncio.Task[None]:
        """Run as a task of the current event loop (stop with :meth:`aclose`)."""
        self._task = asyncio.get_running_loop().create_task(self.run(), name="tokenward-feed")
        return self._task

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.http_source is not None:
            await self.http_source.aclose()

    def start_thread(self, *, ready_timeout: float | None = 10.0) -> threading.Thread:
        """Run in a daemon thread with its own event loop (sync verifiers); waits up to
        ``ready_timeout`` seconds for the first contact (the staleness policy covers the
        rest). Stop with :meth:`stop`."""
        started = threading.Event()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            task = self.start()
            started.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if self.http_source is not None:
                await self.http_source.aclose()

        self._thread = threading.Thread(
            target=asyncio.run, args=(main(),), name="tokenward-revocation-feed", daemon=True
        )
        self._thread.start()
        started.wait(5.0)
        if ready_timeout:
            self.ready.wait(ready_timeout)
        return self._thread

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread started by :meth:`start_thread`."""
        if self._loop is not None and self._task is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already ended
                self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
