"""A service that cannot start says why and ends, with one worker or several.

An orchestrator restarts a process that has ended and shows its last lines; compose's restart policy acts on an
ended container only. A service left running without serving is restarted by nothing, and its health check only
says that it does not answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from gunicorn.arbiter import Arbiter
from uvicorn.config import STARTUP_FAILURE

from screening.model.promotion import SHIPPED_MODEL_DIR
from tests.live import ROOT, free_port, served_env


def _refused_model(tmp_path: Path) -> tuple[dict[str, str], str]:
    changed = tmp_path / "changed-model"
    shutil.copytree(SHIPPED_MODEL_DIR, changed)
    with (changed / "mental_health.onnx").open("ab") as f:
        f.write(b"\0")
    return {"model_dir": str(changed)}, "refusing to start with the configured model"


def _schema_behind(tmp_path: Path) -> tuple[dict[str, str], str]:
    # A new SQLite database, not migrated, as an instance started before the release's migration step has run.
    return {"migrate_on_start": "false"}, "run `screening migrate` first"


def _database_away(tmp_path: Path, migrate_on_start: str) -> tuple[dict[str, str], str]:
    # A loopback port nothing listens on: the connection is refused at once.
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/screening"
    return {"database_url": url, "migrate_on_start": migrate_on_start}, "OperationalError"


def _database_away_at_migration(tmp_path: Path) -> tuple[dict[str, str], str]:
    return _database_away(tmp_path, "true")  # `serve`'s own migration step meets it (the default)


def _database_away_at_start_up(tmp_path: Path) -> tuple[dict[str, str], str]:
    return _database_away(tmp_path, "false")  # the app's start-up meets it (the image's setting)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("fault", [_refused_model, _schema_behind, _database_away_at_migration,
                                   _database_away_at_start_up],
                         ids=["model refused", "schema behind", "database away at migration",
                              "database away at start-up"])
def test_a_service_that_cannot_start_ends_saying_why(tmp_path: Path, workers: int, fault: object) -> None:
    settings, reason = fault(tmp_path)  # type: ignore[operator]
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "screening", "serve", "--port", str(free_port()), "--workers",
                                 str(workers)], env=served_env(tmp_path, **settings), stdout=log, stderr=log, cwd=ROOT,
                                start_new_session=True)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 30 s after a start-up that could not succeed:\n{log_path.read_text()[-3000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the workers too, should the arbiter have gone without them
    text = log_path.read_text()
    # uvicorn's status for a failed start-up, and the arbiter's when a worker's boot failed: the same number.
    assert code == STARTUP_FAILURE == Arbiter.WORKER_BOOT_ERROR, text[-3000:]
    lines = [json.loads(line) for line in text.splitlines()]  # the reason too is logged as every line is
    assert any(reason in json.dumps(line) for line in lines if line["level"] == "error"), text[-3000:]
    # The service's own reasons are logged whole; a failed lifespan's other exceptions, which uvicorn logs as the
    # traceback's text, by type and frames, without their messages (here the address and "Connection refused").
    # Before, that text whole.
    assert "Traceback" not in text and "Connection refused" not in text, text[-3000:]
