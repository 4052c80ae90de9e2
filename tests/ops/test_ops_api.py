from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from screening.app import create_app
from screening.config import Settings
from screening.ops.logging import (
    HANDLER_FILTERS,
    JsonFormatter,
    JsonLines,
    RequestLog,
    TextFormatter,
    TracebackText,
    request_id_var,
)
from tests.factories import answer, create_screen, give_consent, headers_for, make_user

METRICS_TOKEN = "metrics-token-0123456789abcdefghijklmnop"


@pytest.fixture
def metrics_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)}))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


class TestLive:
    def test_answers_without_token(self, client: TestClient) -> None:
        r = client.get("/health/live")
        assert r.status_code == 200
        assert r.json()["status"] == "ok"


class TestReady:
    def test_ready_when_the_database_answers(self, client: TestClient) -> None:
        r = client.get("/health/ready")
        assert r.status_code == 200
        assert r.json()["status"] == "ready"
        assert r.json()["checks"]["database"] == "ok"
        assert r.json()["checks"]["model"] == "ok"

    def test_not_ready_without_a_model(self, client: TestClient) -> None:
        client.app.state.model = None  # type: ignore[attr-defined]
        r = client.get("/health/ready")
        assert r.status_code == 503
        assert r.json()["checks"]["model"] == "not loaded"

    def test_not_ready_when_the_database_is_gone(self, client: TestClient) -> None:
        client.app.state.engine.dispose()  # type: ignore[attr-defined]
        client.app.state.engine = Engine.__new__(Engine)  # type: ignore[attr-defined]  # an engine that cannot connect
        r = client.get("/health/ready")
        assert r.status_code == 503
        assert r.json()["status"] == "not_ready"
        assert r.json()["checks"]["database"].startswith("unreachable")


class TestMetrics:
    def test_refused_to_a_remote_client_without_token(self, metrics_client: TestClient) -> None:
        # TestClient's peer address is "testclient", not loopback.
        r = metrics_client.get("/metrics")
        assert r.status_code == 403
        assert r.headers["content-type"] == "application/problem+json"

    def test_refused_with_a_wrong_token(self, metrics_client: TestClient) -> None:
        r = metrics_client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert r.status_code == 403

    def test_route_templates_screens_by_status_and_model(self, metrics_client: TestClient, session: Session) -> None:
        h = headers_for(metrics_client, make_user(session))
        s = create_screen(metrics_client, h)
        give_consent(metrics_client, h, s["id"])
        answer(metrics_client, h, s["id"], {"phq9_1": 2})
        metrics_client.get(f"/api/v1/screens/{s['id']}?custody_record=CR123", headers=h)
        r = metrics_client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert r.status_code == 200
        text = r.text
        assert 'route="/api/v1/screens/{screen_id}/answers"' in text
        assert 'screening_http_request_duration_seconds_bucket{le="0.025",method="PATCH"' in text
        # Raw paths (screen ids, query strings) never become labels.
        assert s["id"] not in text
        assert "CR123" not in text
        assert 'screening_screens{status="draft"} 1.0' in text
        version = metrics_client.app.state.model.version  # type: ignore[attr-defined]
        assert f'screening_model_info{{version="{version}"}} 1.0' in text


class TestRequestId:
    def test_a_request_id_is_returned(self, client: TestClient) -> None:
        r = client.get("/health/live")
        assert len(r.headers["x-request-id"]) == 32

    def test_a_plain_caller_id_is_kept_and_an_odd_one_replaced(self, client: TestClient) -> None:
        assert client.get("/health/live", headers={"X-Request-ID": "lb-42.a"}).headers["x-request-id"] == "lb-42.a"
        odd = client.get("/health/live", headers={"X-Request-ID": "x" * 65}).headers["x-request-id"]
        assert odd != "x" * 65


def _logged_by_a_process_of_its_own(set_up: str, then: str) -> str:
    """What a Python process writes to stderr after `set_up` (logging configured as the service or a command does: a
    test must not configure this process's logging) and `then` (code that logs)."""
    code = f"import logging, logging.config\nfrom screening.ops.logging import command_logger, log_config\n{set_up}\n{then}\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stderr


class TestJsonLogs:
    def test_request_log_has_route_template_not_path(
        self, client: TestClient, session: Session, caplog: pytest.LogCaptureFixture
    ) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h, custody_record="CR/SECRET/26")
        with caplog.at_level(logging.INFO, logger="screening.request"):
            client.get(f"/api/v1/screens/{s['id']}?q=CR/SECRET/26", headers=h | {"X-Request-ID": "req-1"})
        formatter = JsonFormatter()
        lines = [json.loads(formatter.format(rec)) for rec in caplog.records if rec.name == "screening.request"]
        assert lines, "no request log line"
        line = lines[-1]
        assert line["route"] == "/api/v1/screens/{screen_id}"
        assert line["status"] == 200
        assert line["request_id"] == "req-1"
        assert "SECRET" not in json.dumps(lines)
        assert s["id"] not in json.dumps(lines)

    @pytest.mark.parametrize(("method", "route"), [("GET", "/api/v1/screens/{screen_id}"), ('GE"T\\', "unmatched"),
                                                   ("PATCH", "/api/v1/écrans/{id}")])
    def test_the_request_line_is_what_the_logger_would_write(self, method: str, route: str) -> None:
        """RequestLog writes its line itself when the service's JSON handler is the only one: the same keys in the
        same order with the same values as the line the logging module writes through JsonFormatter."""
        stream = io.StringIO()
        logger = logging.Logger("screening.request")  # a hierarchy of its own: no other handler reaches it
        handler = JsonLines(stream)  # as log_config makes the service's handler
        handler.setFormatter(JsonFormatter())
        for kind in HANDLER_FILTERS:
            handler.addFilter(kind())
        logger.addHandler(handler)
        assert RequestLog(logger)._sole_handler() is handler  # the line written without the logging module
        token = request_id_var.set("5f" * 16)
        try:
            RequestLog(logger)("5f" * 16, method, route, 201, 12.35, 4242)
            logger.info("request", extra={"request_id": "5f" * 16, "method": method, "route": route, "status": 201,
                                          "duration_ms": 12.35, "worker_pid": 4242})
        finally:
            request_id_var.reset(token)
        written, logged = (json.loads(line) for line in stream.getvalue().splitlines())
        assert list(written) == list(logged)
        assert written.pop("ts")[:16] == logged.pop("ts")[:16]  # the same minute
        assert written == logged
        assert written["method"] == method and written["route"] == route
        assert re.fullmatch(r'\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00",.*\}', stream.getvalue().splitlines()[0])

    def test_the_request_line_goes_through_the_logger_in_any_other_set_up(self) -> None:
        """With a second handler (a capture's), or the text format, every handler gets the record as before."""
        logger = logging.Logger("screening.request")
        ours, text = io.StringIO(), io.StringIO()
        json_handler = JsonLines(ours)
        json_handler.setFormatter(JsonFormatter())
        captured: list[logging.LogRecord] = []
        capture = logging.Handler()
        capture.emit = captured.append  # type: ignore[method-assign]
        logger.addHandler(json_handler)
        logger.addHandler(capture)
        RequestLog(logger)("r-1", "GET", "/health/live", 200, 0.5, 1)
        assert [r.getMessage() for r in captured] == ["request"] and captured[0].status == 200  # type: ignore[attr-defined]
        assert json.loads(ours.getvalue())["route"] == "/health/live"
        plain = logging.Logger("screening.request")
        text_handler = logging.StreamHandler(text)
        text_handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(route)s"))
        plain.addHandler(text_handler)
        RequestLog(plain)("r-2", "GET", "/health/live", 200, 0.5, 1)
        assert text.getvalue() == "INFO request /health/live\n"
        quiet = logging.Logger("screening.request", logging.WARNING)
        quiet.addHandler(json_handler)
        RequestLog(quiet)("r-3", "GET", "/health/live", 200, 0.5, 1)
        assert len(ours.getvalue().splitlines()) == 1  # a level above INFO: no line

    def test_exception_message_is_never_written(self) -> None:
        try:
            raise ValueError("date_of_birth=1991-04-12 custody_record=CR/1/26")
        except ValueError:
            rec = logging.LogRecord("screening", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
        out = json.loads(JsonFormatter().format(rec))
        assert out["exc_type"] == "ValueError"
        assert "1991" not in json.dumps(out)

    def test_in_text_an_exception_is_its_type_and_frames_never_its_message(self) -> None:
        try:
            raise ValueError("date_of_birth=1991-04-12 custody_record=CR/1/26")
        except ValueError:
            rec = logging.LogRecord("screening.x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
        rec.request_id = "r-1"
        logging.Formatter().format(rec)  # another handler's formatter first: logging keeps the text it made
        assert rec.exc_text is not None and "1991" in rec.exc_text
        lines = TextFormatter().format(rec).splitlines()
        assert lines[0].endswith(" ERROR screening.x [r-1] failed")
        assert lines[1] == "ValueError (its message withheld), in:"
        test = self.test_in_text_an_exception_is_its_type_and_frames_never_its_message.__name__
        assert lines[2].startswith(f"  {__file__}:") and lines[2].endswith(f":{test}")  # the frame, as file:line:function
        assert not [line for line in lines if "1991" in line or "CR/1/26" in line]

    @pytest.mark.parametrize("how", ["service", "command"])
    def test_text_logs_as_the_service_and_its_commands_set_them_up_withhold_messages(self, how: str) -> None:
        """SCREENING_LOG_JSON=false, set up as `screening serve` does (`log_config`) and as a command's logger is."""
        logger = ("logging.config.dictConfig(log_config('INFO', json_format=False)); log = logging.getLogger('screening.x')"
                  if how == "service" else "log = command_logger('screening.x', json_format=False)")
        written = _logged_by_a_process_of_its_own(logger, "try:\n    raise ValueError('date_of_birth=1991-04-12')\n"
                                                          "except ValueError:\n    log.exception('failed')")
        assert " ERROR screening.x [None] failed\nValueError (its message withheld), in:\n" in written, written
        assert "1991" not in written

    @pytest.mark.parametrize("json_format", [True, False])
    def test_a_librarys_line_names_an_exception_it_quotes_by_its_type(self, json_format: bool) -> None:
        """psycopg's line when a pipeline ends after a failure, quoting the error, here one whose DETAIL quotes a row:
        through the service's handler (`log_config`), the error is named by its type."""
        written = _logged_by_a_process_of_its_own(
            f"logging.config.dictConfig(log_config('INFO', json_format={json_format}))",
            "import psycopg\n"
            "error = psycopg.errors.CheckViolation('new row violates check constraint\\n"
            "DETAIL:  Failing row contains (s-1, CR/1/26, 1991-04-12).')\n"
            "logging.getLogger('psycopg').warning('error ignored terminating %r: %s', 'the pipeline', error)\n"
            "logging.getLogger('psycopg.pool').warning('%(what)s: %(error)s', {'what': 'ended', 'error': error})")
        lines = written.splitlines()
        messages = [json.loads(line)["msg"] for line in lines] if json_format else [line.split("] ", 1)[1] for line in lines]
        assert messages == ["error ignored terminating 'the pipeline': CheckViolation", "ended: CheckViolation"]

    def test_a_traceback_given_as_text_is_withheld(self) -> None:
        """uvicorn logs a failed lifespan as the text of `traceback.format_exc()`, every message of the chain in it:
        the filter keeps the line and withholds the text; a plain line passes as it was."""
        import traceback

        try:
            try:
                raise KeyError("custody_record=CR/7/26")
            except KeyError as exc:
                raise RuntimeError("date_of_birth=1991-04-12") from exc
        except RuntimeError:
            text = traceback.format_exc()
        assert "1991" in text and "CR/7/26" in text  # what the text carried
        record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, text, None, None)
        assert TracebackText().filter(record)
        assert record.getMessage() == "the application's lifespan failed (its traceback withheld: it quotes messages)"
        plain = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Waiting for application startup.", None,
                                  None)
        assert TracebackText().filter(plain) and plain.getMessage() == "Waiting for application startup."

    def test_a_failed_start_up_is_logged_by_type_and_frames_and_a_reason_in_its_own_words(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The app's lifespan logs what stopped it as the service logs any exception: its type and frames, never the
        message (here the database file's path), except a Reason's (here the schema behind), which says what to do."""
        from screening.app import NotMigrated

        def started(url: str) -> logging.LogRecord:
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="screening.app"), pytest.raises(Exception) as raised, \
                    TestClient(create_app(Settings(database_url=url, data_dir=tmp_path))):
                pass
            [record] = [r for r in caplog.records if r.name == "screening.app"]
            assert record.exc_info is not None and record.exc_info[1] is raised.value
            return record

        behind = started(f"sqlite:///{tmp_path}/new.db")  # a new database, never migrated
        assert isinstance(behind.exc_info[1], NotMigrated)  # type: ignore[index]
        line = json.loads(JsonFormatter().format(behind))
        assert (line["msg"], line["exc_type"]) == (str(behind.exc_info[1]), "NotMigrated")  # type: ignore[index]
        assert "run `screening migrate` first" in line["msg"] and line["frames"]
        away = started(f"sqlite:///{tmp_path}/no-such-folder/CR-7-26.db")  # its folder is missing
        assert "CR-7-26" in str(away.exc_info[1])  # type: ignore[index]  # what the message carried
        line = json.loads(JsonFormatter().format(away))
        assert (line["msg"], line["exc_type"]) == ("the service failed to start or to stop", "FileNotFoundError")
        assert line["frames"] and "CR-7-26" not in json.dumps(line)
