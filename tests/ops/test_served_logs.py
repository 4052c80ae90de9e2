"""The logs of the service as `screening serve` runs it: gunicorn's arbiter, two uvicorn workers, the logging
set-up of `log_config`. Every line it writes is one JSON object, the request lines (written ready-made by
`RequestLog`) are whole, one per request, from both workers, and carry route templates, never paths."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.live import served_process

SCREEN_ID = "0b7e3f7e-secret-path-value"


def test_served_request_lines_are_whole_json_one_per_request(tmp_path: Path) -> None:
    with served_process(tmp_path, 2) as (base, log, _process):
        # The first worker up answers the probe; wait for the second too, or it could miss the whole load.
        deadline = time.monotonic() + 60
        while log.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, "the second worker did not start in 60 s"
            time.sleep(0.05)

        def tablet(_: int) -> list[int]:
            # A new connection for every request: a keep-alive connection stays with the worker that accepted it,
            # and one worker could take all eight.
            with httpx.Client(base_url=base, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as c:
                return [c.get(f"/api/v1/screens/{SCREEN_ID}").status_code for _ in range(50)]

        with ThreadPoolExecutor(8) as pool:
            statuses = [s for batch in pool.map(tablet, range(8)) for s in batch]
    assert statuses == [401] * 400
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # each whole JSON, stdout's and stderr's alike
    requests = [line for line in lines if line.get("logger") == "screening.request"]
    reads = [line for line in requests if line["route"] == "/api/v1/screens/{screen_id}"]
    assert len(reads) == 400  # one line per request
    assert {line["route"] for line in requests} == {"/api/v1/screens/{screen_id}", "/health/ready"}  # and the probes
    assert {line["status"] for line in reads} == {401} and {line["method"] for line in reads} == {"GET"}
    assert len({line["worker_pid"] for line in reads}) == 2, "one worker served every connection"
    assert all(list(line)[:5] == ["ts", "level", "logger", "msg", "request_id"] for line in requests)
    assert len({line["request_id"] for line in requests}) == len(requests)
    assert SCREEN_ID not in text
