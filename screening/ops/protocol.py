"""uvicorn's httptools protocol, handing each response to its socket in one write rather than two.

uvicorn writes a response's status line and headers to the connection's transport as soon as the app sends
them, and its body when the app sends that. On uvloop each write is a `send` system call on the socket there
and then, so every response, however small, cost two; in a py-spy profile of the served assessment the two
took about a tenth of the worker's samples (the first, which wakes the client, most of it).

`OneWriteProtocol` wraps each connection's transport in `_OneWritePerTurn`, which holds what is written
during one turn of the event loop and hands it to the real transport as one `writelines` at the end of that
turn (`loop.call_soon`). Held bytes never wait for anything but the rest of the turn: they are written at
once when the connection is closed, and as soon as `_FLUSH_AT` bytes are held, so that a big or streamed body
goes out as the app sends it and the real transport's flow control (pausing the app's writes while the
client is slow to read) still sees it. Everything else about the transport is the real one's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Held bytes past which a write goes out at once: a response bigger than this is mostly body, for which one
# more system call is nothing, and a streamed one must not pile up in memory unsent.
_FLUSH_AT = 64 * 1024


class _OneWritePerTurn:
    """A transport whose writes wait for the end of the event loop's turn, or a close; the rest is the real one's."""

    __slots__ = ("_held", "_loop", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)
        self._size += len(data)
        if self._size >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Hand what is held to the real transport (a no-op when nothing is: the scheduled call after an early
        flush, or after the client has gone, when there is no one to write to)."""
        held = self._held
        if not held:
            return
        self._held, self._size = [], 0
        if not self._transport.is_closing():
            self._transport.writelines(held)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def writelines(self, data: Iterable[bytes]) -> None:
        for chunk in data:
            self.write(chunk)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held, self._size = [], 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over `_OneWritePerTurn` (`http=` of uvicorn's configuration)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's own
        super().connection_made(cast(asyncio.Transport, _OneWritePerTurn(transport, self.loop)))


# A stop (SIGTERM: docker stop, Kubernetes, a rolling restart): each worker stops taking connections, answers the
# requests it has read, then ends its lifespan (the hot routes' last group commit, the pools closed). It waits at
# most REQUESTS_GRACE seconds for those requests, then cancels them (none of them is acknowledged) and still ends
# its lifespan. With several workers gunicorn's arbiter kills a worker still running GRACEFUL_TIMEOUT seconds after
# the stop, which leaves it that long for its lifespan's end; an orchestrator must wait longer than that before it
# kills the instance (compose.yaml's stop_grace_period).
GRACEFUL_TIMEOUT = 20
REQUESTS_GRACE = GRACEFUL_TIMEOUT - 5  # the other 5 s for the lifespan's end

# How the service runs uvicorn, with one worker (`screening serve`), in gunicorn's workers (`ops.server.Worker`)
# and in the tests' live server: on uvloop, with this protocol, and with no access log (request lines can carry
# query strings; the service writes its own request log without them, screening.ops.middleware).
UVICORN_OPTIONS: dict[str, Any] = {"loop": "uvloop", "http": OneWriteProtocol, "access_log": False,
                                   "timeout_graceful_shutdown": REQUESTS_GRACE}
