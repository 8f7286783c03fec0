"""A TCP proxy on loopback that tests can pause (a black hole) and close (a stopped server).

Why: an outage of the database or the object store is rarely a clean "connection refused"; more often
packets stop arriving and every call waits. The proxy sits between Fovea and a real PostgreSQL or moto
server. `pause()` keeps accepting connections and reading what is sent, but forwards nothing in either
direction (and drops it, as a broken network would); `refuse()` closes every connection and closes new
ones at once; `resume()` forwards again for new connections.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from enum import StrEnum
from typing import Any, TypeVar

_CHUNK = 64 * 1024
_T = TypeVar("_T")


class Mode(StrEnum):
    FORWARD = "forward"
    PAUSED = "paused"
    REFUSING = "refusing"


class PausableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = Mode.FORWARD
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="pausable-proxy", daemon=True)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def start(self) -> PausableProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        return self

    def stop(self) -> None:
        async def shut() -> None:
            assert self._server is not None
            self._server.close()
            self._close_all()
            current = asyncio.current_task()
            for task in asyncio.all_tasks():  # connections still piping: end them before the loop stops
                if task is not current:
                    task.cancel()

        self._call(shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def pause(self) -> None:
        self.mode = Mode.PAUSED

    def refuse(self) -> None:
        self.mode = Mode.REFUSING

        async def close() -> None:
            self._close_all()

        self._call(close())

    def resume(self) -> None:
        self.mode = Mode.FORWARD

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.add(client_writer)
        if self.mode is Mode.REFUSING:
            client_writer.close()
            return
        if self.mode is Mode.PAUSED:  # accepted, then nothing: read and drop until the client gives up
            await self._drain_into_nothing(client_reader)
            client_writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers.add(upstream_writer)
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer),
            self._pipe(upstream_reader, client_writer),
            return_exceptions=True,
        )
        for writer in (client_writer, upstream_writer):
            writer.close()
            self._writers.discard(writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(_CHUNK):
                if self.mode is not Mode.FORWARD:
                    continue  # a black hole: what was sent is lost
                writer.write(data)
                await writer.drain()
        with suppress(OSError):
            writer.close()

    @staticmethod
    async def _drain_into_nothing(reader: asyncio.StreamReader) -> None:
        with suppress(OSError):
            while await reader.read(_CHUNK):
                pass


@contextmanager
def running_proxy(target_host: str, target_port: int) -> Iterator[PausableProxy]:
    proxy = PausableProxy(target_host, target_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
