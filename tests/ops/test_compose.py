"""compose.yaml run by Docker Compose, as an operator starts it: PostgreSQL, the one-shot migration, the service.

`test_docker_image.py` runs the image as compose runs the app, with `docker run`; this runs the file itself, so what
only compose does is tested too: the order (the migration waits for the database's health check, the service for the
migration's success), the services' network and the database's name on it, the published port, the named volumes,
the secrets that must be set, `docker compose stop` with the file's grace period.

A copy of the file runs, with three things replaced, each asserted to be there as the test expects:

- `postgres:16-bookworm` and the Dockerfile's `python:3.11-slim-bookworm` come from Docker Hub, which machines of this
  kind cannot reach. The Python base is the stand-in the image tests share (`tests.ops.deployment.base_image`), given
  to the `migrate` service's build as the Dockerfile's PYTHON_IMAGE. PostgreSQL's is Debian bookworm's PostgreSQL 15
  on that base (the tests run against 15), with an entry point that keeps the official image's contract as
  compose.yaml uses it: POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB make a new data directory in the volume, and
  `pg_isready` answers the health check.
- the image the file builds and runs, `screening:latest`, is given a test tag, so that no image of an operator's is
  replaced;
- the published port, 127.0.0.1:8000, is a free one, so that a service already on 8000 (scripts/serve.sh) does not
  fail the test.

Compose is Debian's `docker-compose` (1.29), the one this kind's registries offer; it reads the Compose
specification's file, as `docker compose` (v2) does.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.live import free_port
from tests.ops.deployment import (
    PASSWORD,
    ROOT,
    assert_stopped_cleanly,
    base_image,
    build,
    command,
    compose_secrets,
    docker,
    require_engine,
    state,
    the_pathway,
    unavailable,
    wait_healthy,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("docker")]  # beside test_docker_image: one base image

APP_IMAGE = "screening:compose-test"

# The official image's entry point, as far as compose.yaml relies on it. The server that sets the new directory up
# listens on a socket folder of its own and no TCP port, so that neither the health check nor the migration reaches
# it before the real server runs.
PG_ENTRYPOINT = r"""#!/bin/sh
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    secret=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" > "$secret"
    initdb --username="$POSTGRES_USER" --pwfile="$secret" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$secret"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    setup=$(mktemp -d)
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k $setup" -w start >/dev/null
    createdb --host="$setup" --username="$POSTGRES_USER" "$POSTGRES_DB"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$@" -c listen_addresses='*'
"""
PG_DOCKERFILE = """ARG BASE
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 && rm -rf /var/lib/apt/lists/* \\
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \\
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER postgres
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
"""


def _compose_command() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        unavailable("no docker-compose command (scripts/bootstrap.sh dev installs Debian's docker-compose)")
    return found


def _postgres_image(base: str) -> str:
    """The stand-in for postgres:16-bookworm, built once per machine: its tag names what it is made of."""
    made_of = hashlib.sha256("\n".join([base, PG_DOCKERFILE, PG_ENTRYPOINT]).encode()).hexdigest()
    tag = f"screening-test-base/postgres:15-bookworm-{made_of[:12]}"
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory(prefix="screening-postgres-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(PG_DOCKERFILE)
        entrypoint = Path(tmp) / "docker-entrypoint.sh"
        entrypoint.write_text(PG_ENTRYPOINT)
        entrypoint.chmod(0o755)
        return build(tmp, tag, timeout=600, BASE=base)


def _copy_of_compose_file(folder: Path, *, base: str, postgres: str, port: int) -> Path:
    text = (ROOT / "compose.yaml").read_text()
    for old, new, times in [
        ("    image: postgres:16-bookworm\n", f"    image: {postgres}\n", 1),
        ("    build: .\n", f"    build:\n      context: {ROOT}\n      args:\n        PYTHON_IMAGE: {base}\n", 1),
        ("    image: screening:latest\n", f"    image: {APP_IMAGE}\n", 2),
        ('"127.0.0.1:8000:8000"', f'"127.0.0.1:{port}:8000"', 1),
    ]:
        assert text.count(old) == times, f"compose.yaml no longer has {old.strip()!r} {times} time(s): update this test"
        text = text.replace(old, new)
    copy = folder / "compose.yaml"
    copy.write_text(text)
    return copy


@dataclass
class Project:
    """`docker-compose` on the copy of compose.yaml, as a project of its own, with the operator's variables."""

    argv: list[str]
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        return command([*self.argv, *args], env=self.env, timeout=timeout, check=check)

    def container(self, service: str) -> str:
        ids = self("ps", "-q", service).stdout.split()
        assert len(ids) == 1, (service, ids)
        return ids[0]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Project, int, str]]:
    require_engine()
    compose = _compose_command()
    base = base_image()
    port = free_port()
    copy = _copy_of_compose_file(tmp_path, base=base, postgres=_postgres_image(base), port=port)
    metrics_token = secrets.token_urlsafe(24)
    variables = compose_secrets() | {"SCREENING_METRICS_TOKEN": metrics_token}
    # The classic builder, through the engine's API: BuildKit would fetch the Dockerfile's front end from Docker Hub.
    env = os.environ | variables | {"DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0"}
    run = Project([compose, "--project-name", f"screeningtest{secrets.token_hex(4)}", "--file", str(copy)], env)
    try:
        yield run, port, metrics_token
    finally:
        run("down", "--volumes", "--remove-orphans", "--timeout", "30", check=False, timeout=180)


def _at(state: dict[str, Any], key: str) -> datetime:
    return datetime.fromisoformat(str(state[key])[:26].rstrip("Z"))  # Docker's nanoseconds, to the microsecond


def test_compose_starts_the_database_the_migration_and_the_service_in_order(
        project: tuple[Project, int, str]) -> None:
    run, port, metrics_token = project
    # A secret left unset: compose refuses to start, and says which.
    refused = replace(run, env=run.env | {"SCREENING_PERSON_KEY": ""})("config", check=False)
    assert refused.returncode != 0 and "set SCREENING_PERSON_KEY" in refused.stderr, refused.stderr

    run("up", "--detach", "--build", timeout=1200)
    db, migrate, app = (run.container(service) for service in ("db", "migrate", "app"))
    wait_healthy(app)
    assert state(db)["Health"]["Status"] == "healthy"
    migrated, started = state(migrate), state(app)
    assert migrated["ExitCode"] == 0, docker("logs", migrate).stderr
    assert _at(migrated, "FinishedAt") <= _at(started, "StartedAt")  # the service waited for the migration
    migration_log = docker("logs", migrate)
    assert [json.loads(line)["msg"] for line in migration_log.stderr.splitlines()] == ["database schema is up to date"]

    # The first account, in the running service's container (its root is read-only: the command writes only to the
    # database).
    run("exec", "-T", "app", "python", "-m", "screening", "users", "add", "nurse", "--role", "nurse",
        "--password", PASSWORD, "--suite", "Leeds")
    # Through the published port: the client is off the container's host, so /metrics wants the scraper's token.
    the_pathway(f"http://127.0.0.1:{port}", metrics_token=metrics_token)

    # `docker compose stop`: SIGTERM, and SIGKILL only after the file's stop_grace_period, which compose read. The
    # arbiter ends with 0 once both workers have shut down, not killed (137).
    grace = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["app"]["stop_grace_period"]
    assert yaml.safe_load(run("config").stdout)["services"]["app"]["stop_grace_period"] == grace
    run("stop", timeout=120)
    assert_stopped_cleanly(app)
