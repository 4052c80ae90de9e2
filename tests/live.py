"""Real servers on loopback ports: uvicorn in a background thread (`live_server`), for tests that need real
concurrency, and `screening serve` in a process of its own (`served_process`), for tests of the service as it
is deployed."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
import uvicorn

from screening.app import create_app
from screening.config import Settings
from screening.ops.protocol import UVICORN_OPTIONS
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    # As screening serve runs uvicorn: the browser sees responses as a deployed service writes them.
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning", **UVICORN_OPTIONS)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    _running[url] = server
    try:
        yield url
    finally:
        del _running[url]
        server.should_exit = True
        thread.join(timeout=10)


_running: dict[str, uvicorn.Server] = {}


def requests_in_hand(url: str) -> int:
    """The requests the `live_server` at `url` has begun and not yet finished (uvicorn's tasks for them)."""
    return len(_running[url].server_state.tasks)


_pause = time.sleep  # between readings of `wait_until_idle` (a test stretches it, as a busy machine does)


def wait_until_idle(url: str, timeout: float = 15.0) -> None:
    """Return once the `live_server` at `url` has had no request in hand for 50 ms.

    A browser closed at the end of a test may leave a request it sent still running on a server that outlives
    the test; emptying the tables under it could deadlock with its transaction on PostgreSQL, or let its writes
    land in the next test's database. A closed browser sends nothing more, so a short quiet spell is the end.
    """
    deadline = time.monotonic() + timeout
    quiet_since = None  # the first of the readings in a row that found nothing in hand
    while True:
        now = time.monotonic()
        if requests_in_hand(url):
            quiet_since = None
            assert now < deadline, f"the test server still had a request in hand after {timeout} s"
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 0.05:
            # Returned on a reading, not on time alone: on a busy machine a pause can outlast the quiet spell,
            # and a request seen before it may still be in hand after it.
            return
        _pause(0.01)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served(NamedTuple):
    base: str  # the base URL
    log: Path  # the file its stdout and stderr go to
    process: subprocess.Popen[bytes]  # the main process: the service itself, or gunicorn's arbiter


def wait_until_ready(base: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 60) -> None:
    """Return once the service at `base` answers /health/ready; fail with its log's end should its process `proc`
    end first, or `timeout` pass."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the server did not become ready in {timeout:.0f} s"
        time.sleep(0.05)


def served_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment `served_process` runs `screening serve` with (see there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {"SCREENING_DATA_DIR": str(tmp_path), "SCREENING_ENVIRONMENT": "test", "SCREENING_SECRET_KEY": TEST_SECRET,
            "SCREENING_PERSON_KEY": TEST_SECRET + "-person", "PYTHONPATH": str(ROOT)}
    return env | {f"SCREENING_{name.upper()}": value for name, value in settings.items()}


@contextmanager
def served_process(tmp_path: Path, workers: int, **settings: str) -> Iterator[Served]:
    """`screening serve --workers N` on a free loopback port, in a process group of its own, with a data directory
    under `tmp_path` and `settings` (SCREENING_* variables, without the prefix: `database_url="..."`); none of the
    caller's own SCREENING_* variables. Yields once it answers /health/ready. Stopped on the way out with SIGTERM to
    the group (SIGKILL after 20 s), unless the test has stopped it already."""
    env = served_env(tmp_path, **settings)
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "screening", "serve", "--port", str(port), "--workers",
                                 str(workers)], env=env, stdout=log, stderr=log, cwd=ROOT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, proc, log_path)
        yield Served(base, log_path, proc)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group has gone: a test stopped it
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
