"""screening.ops.protocol: each response handed to the socket in one write, and nothing lost or reordered on
the way: on real sockets under uvloop, and through `screening serve` as deployed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import h11
import httpx
import uvloop

from screening.ops.protocol import _FLUSH_AT, _OneWritePerTurn
from tests.conftest import run_on_a_loop_of_its_own
from tests.live import served_process

Check = Callable[[_OneWritePerTurn, asyncio.StreamReader], Awaitable[None]]


def _over_a_real_connection(check: Check) -> None:
    """Run `check` on uvloop with a `_OneWritePerTurn` over a real loopback TCP connection, and the reader of
    the connection's other end; then that nothing went wrong in a callback (a held write among them), where
    the loop would only have logged it."""

    async def main() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        accepted: asyncio.Future[asyncio.StreamReader] = loop.create_future()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(reader)

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        try:
            await check(_OneWritePerTurn(transport, loop), await accepted)  # type: ignore[arg-type]
            await asyncio.sleep(0)  # the turn's held writes, if any, run
        finally:
            transport.close()
            server.close()
        return errors

    assert run_on_a_loop_of_its_own(main(), uvloop.new_event_loop) == []


def test_writes_in_one_turn_reach_the_socket_together_at_its_end() -> None:
    async def check(out: _OneWritePerTurn, peer: asyncio.StreamReader) -> None:
        out.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        out.write(b"")  # nothing to hold, nor to schedule
        out.write(b"hello")
        # Held, not yet in the socket: the real transport has nothing buffered either.
        assert out.get_write_buffer_size() == 43
        assert out._transport.get_write_buffer_size() == 0
        await asyncio.sleep(0)  # the turn ends
        assert out.get_write_buffer_size() == 0
        assert await asyncio.wait_for(peer.readexactly(43), 5) == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"

    _over_a_real_connection(check)


def test_a_big_body_goes_out_at_once_and_close_sends_what_is_held() -> None:
    async def check(out: _OneWritePerTurn, peer: asyncio.StreamReader) -> None:
        out.write(b"head ")
        out.write(b"x" * _FLUSH_AT)  # past the limit: handed over now, not at the end of the turn
        assert out.get_write_buffer_size() == out._transport.get_write_buffer_size()
        assert await asyncio.wait_for(peer.readexactly(5 + _FLUSH_AT), 5) == b"head " + b"x" * _FLUSH_AT
        out.write(b"last words")
        out.close()  # in the same turn: what is held is written before the connection closes
        assert await asyncio.wait_for(peer.read(), 5) == b"last words"  # then the end of the stream
        # The write scheduled with "last words" finds nothing left: no error (checked after every test's turn).

    _over_a_real_connection(check)


def test_the_end_of_the_stream_comes_after_what_is_held_and_an_abort_drops_it() -> None:
    async def check(out: _OneWritePerTurn, peer: asyncio.StreamReader) -> None:
        out.writelines([b"one ", b"two"])
        out.write_eof()  # in the same turn: what is held goes first
        assert await asyncio.wait_for(peer.read(), 5) == b"one two"

    _over_a_real_connection(check)

    async def aborted(out: _OneWritePerTurn, peer: asyncio.StreamReader) -> None:
        out.write(b"never sent")
        out.abort()
        assert out.get_write_buffer_size() == 0
        await asyncio.sleep(0)
        assert await asyncio.wait_for(peer.read(), 5) == b""

    _over_a_real_connection(aborted)


def test_writes_after_the_connection_closed_are_dropped_quietly() -> None:
    async def check(out: _OneWritePerTurn, peer: asyncio.StreamReader) -> None:
        out.write(b"never sent")
        out._transport.close()  # the connection went within the turn
        await asyncio.sleep(0)
        assert out.get_write_buffer_size() == 0
        assert await asyncio.wait_for(peer.read(), 5) == b""
        # And once it is gone altogether (uvloop's transport then raises on a write, in the flush's callback):
        while out._transport.get_extra_info("socket") is not None:
            await asyncio.sleep(0.01)
        out.write(b"never sent either")
        await asyncio.sleep(0)
        assert out.get_write_buffer_size() == 0

    _over_a_real_connection(check)


def _responses(raw: bytes, count: int) -> list[tuple[int, bytes]]:
    """The first `count` responses in `raw`, as a client reads them from one keep-alive connection."""
    conn, out = h11.Connection(h11.CLIENT), []
    conn.receive_data(raw)
    for _ in range(count):
        conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
        conn.send(h11.EndOfMessage())
        status, body = 0, b""
        while True:
            event = conn.next_event()
            assert event is not h11.NEED_DATA, f"response {len(out) + 1} of {count} is incomplete"
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        out.append((status, body))
        conn.start_next_cycle()
    return out


def test_served_responses_are_whole_and_in_order_pipelined_small_and_big(tmp_path: Path) -> None:
    with served_process(tmp_path, 1) as (base, _log, _process):
        openapi = httpx.get(f"{base}/openapi.json", timeout=10)
        assert openapi.status_code == 200 and len(openapi.content) > _FLUSH_AT  # more than is held before a write
        host, port = base.removeprefix("http://").split(":")
        paths = ["/health/live", "/api/v1/screens/not-a-screen", "/openapi.json", "/health/live"]
        requests = b"".join(f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in paths)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(requests)  # all four at once: their responses are written in the same turns
            raw = b""
            while True:
                chunk = sock.recv(1 << 16)
                assert chunk, "the server closed the connection before answering all four"
                raw += chunk
                try:
                    got = _responses(raw, len(paths))
                    break
                except AssertionError:
                    continue  # not all there yet
    assert [status for status, _ in got] == [200, 401, 200, 200]
    assert got[0][1] == got[3][1] and b"status" in got[0][1]
    assert b'"status":401' in got[1][1]  # the problem body, whole
    assert got[2][1] == openapi.content
