"""The logs of the service as `screening serve` runs it: gunicorn's arbiter, two uvicorn workers, the logging
set-up of `log_config`. Every line on stderr is one JSON object, the request lines (written ready-made by
`RequestLog`) are whole, one per request, from both workers, and carry route templates, never paths."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
SCREEN_ID = "0b7e3f7e-secret-path-value"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_served_request_lines_are_whole_json_one_per_request(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {"SCREENING_DATA_DIR": str(tmp_path), "SCREENING_ENVIRONMENT": "test", "SCREENING_SECRET_KEY": TEST_SECRET,
            "SCREENING_PERSON_KEY": TEST_SECRET + "-person", "PYTHONPATH": str(ROOT)}
    errors = (tmp_path / "stderr.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "screening", "serve", "--port", str(port), "--workers", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=errors, cwd=ROOT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "stderr.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready in 60 s"
            time.sleep(0.05)
        # The first worker up answers the probe; wait for the second too, or it could miss the whole load.
        while (tmp_path / "stderr.log").read_text().count("Application startup complete") < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the second worker did not start in 60 s"
            time.sleep(0.05)

        def tablet(_: int) -> list[int]:
            # A new connection for every request: a keep-alive connection stays with the worker that accepted it,
            # and one worker could take all eight.
            with httpx.Client(base_url=base, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as c:
                return [c.get(f"/api/v1/screens/{SCREEN_ID}").status_code for _ in range(50)]

        with ThreadPoolExecutor(8) as pool:
            statuses = [s for batch in pool.map(tablet, range(8)) for s in batch]
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        errors.close()
    assert statuses == [401] * 400
    lines = [json.loads(line) for line in (tmp_path / "stderr.log").read_text().splitlines()]  # each whole JSON
    requests = [line for line in lines if line.get("logger") == "screening.request"]
    reads = [line for line in requests if line["route"] == "/api/v1/screens/{screen_id}"]
    assert len(reads) == 400  # one line per request
    assert {line["route"] for line in requests} == {"/api/v1/screens/{screen_id}", "/health/live"}  # and the probes
    assert {line["status"] for line in reads} == {401} and {line["method"] for line in reads} == {"GET"}
    assert len({line["worker_pid"] for line in reads}) == 2, "one worker served every connection"
    assert all(list(line)[:5] == ["ts", "level", "logger", "msg", "request_id"] for line in requests)
    assert len({line["request_id"] for line in requests}) == len(requests)
    assert SCREEN_ID not in (tmp_path / "stderr.log").read_text()
