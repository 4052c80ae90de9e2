"""What the image tests share: compose.yaml's environment as compose fills it, a nurse's pathway through a served
image (`test_image.py` without an engine, `test_docker_image.py` and `test_compose.py` with Docker's), and for the
last two the Docker engine, the stand-in for the Python base image and Docker's health check.

The Dockerfile's `python:3.11-slim-bookworm` comes from Docker Hub, which machines of this kind cannot reach (they
reach PyPI and Debian's and npm's registries only), so the tests pass the Dockerfile's own PYTHON_IMAGE argument a
stand-in: Debian bookworm with its Python 3.11, made with debootstrap from Debian's registry and given the slim
image's PATH and LANG. It trusts the certificate authorities this machine trusts, for the build stage's pip: here,
PyPI is reached through a proxy with its own authority."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import yaml

from tests.needs_answers import answers_for

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long passphrase for the image"  # the nurse's, made with `screening users add` in the image

REQUIRE_DOCKER = os.environ.get("SCREENING_REQUIRE_DOCKER") == "1"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# The slim image's Python and what the Dockerfile's stages run with it; its PATH and LANG, as the slim image sets.
BASE_PACKAGES = "python3.11,python3.11-venv,python3-pip,python-is-python3,ca-certificates"
BASE_CHANGES = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8"]
TRUSTED = Path("/etc/ssl/certs/ca-certificates.crt")


def command(argv: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """`argv` run to its end; with `check`, one that fails fails the test with the end of what it wrote."""
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)[:300]} ended {done.returncode}:\n{done.stdout[-5000:]}{done.stderr[-3000:]}")
    return done


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return command(["docker", *args], timeout=timeout, check=check)


def build(context: str | Path, tag: str, timeout: float = 1200, **build_args: str) -> str:
    """`docker build` of `context` as `tag`, with the classic builder: BuildKit would fetch the front end a
    `# syntax=` line names from Docker Hub, which machines of this kind cannot reach."""
    args = [arg for name, value in build_args.items() for arg in ("--build-arg", f"{name}={value}")]
    command(["docker", "build", *args, "--tag", tag, str(context)], env=os.environ | {"DOCKER_BUILDKIT": "0"},
            timeout=timeout)
    return tag


def unavailable(reason: str) -> NoReturn:
    """What a Docker test needs is missing: it skips saying why, or fails with SCREENING_REQUIRE_DOCKER=1 (as in CI)."""
    if REQUIRE_DOCKER:
        pytest.fail(reason + " (SCREENING_REQUIRE_DOCKER=1)")
    pytest.skip(reason)


def require_engine() -> None:
    """A Docker engine answers, or the test skips saying why (`unavailable`)."""
    try:
        answered = docker("info", "--format", "{{.ServerVersion}}", timeout=30, check=False)
    except FileNotFoundError:
        unavailable("no docker command (scripts/bootstrap.sh dev installs Debian's docker.io)")
    if answered.returncode != 0:
        unavailable(f"no Docker engine answers: {answered.stderr.strip()[:200]}")


def base_image() -> str:
    """The stand-in for python:3.11-slim-bookworm, made once per machine: its tag names what it is made of."""
    trusted = TRUSTED.read_bytes()
    made_of = hashlib.sha256("\n".join([DEBIAN_MIRROR, BASE_PACKAGES, *BASE_CHANGES]).encode() + trusted).hexdigest()
    tag = f"screening-test-base/python:3.11-bookworm-{made_of[:12]}"
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory(prefix="screening-base-") as tmp:
        root = Path(tmp) / "root"
        command(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(root), DEBIAN_MIRROR],
                timeout=600)
        (root / TRUSTED.relative_to("/")).write_bytes(trusted)
        (root / "etc" / "pip.conf").write_text(f"[global]\ncert = {TRUSTED}\n")
        shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        changes = [arg for change in BASE_CHANGES for arg in ("--change", change)]
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["docker", "import", *changes, "-", tag], stdin=tar.stdout, capture_output=True,
                                  text=True, timeout=600, check=False)
        assert tar.wait() == 0 and imported.returncode == 0, imported.stderr
    return tag


def state(container: str) -> dict[str, Any]:
    """Docker's record of a container's state (`docker inspect`): Status, ExitCode, Health, StartedAt, ..."""
    found: dict[str, Any] = json.loads(docker("inspect", "--format", "{{json .State}}", container).stdout)
    return found


def wait_healthy(container: str, within: float = 90) -> None:
    """Until Docker's own health check says the container is healthy; fails with its checks and logs if it does not
    within `within` seconds (the Dockerfile's HEALTHCHECK: a 20 s start period, a 15 s interval)."""
    deadline = time.monotonic() + within
    while (now := state(container))["Health"]["Status"] == "starting" and time.monotonic() < deadline:
        time.sleep(1)
    if now["Health"]["Status"] != "healthy":
        checks = [(c["ExitCode"], c["Output"].strip().splitlines()[-1:]) for c in now["Health"]["Log"]]
        pytest.fail(f"{now['Health']['Status']} ({now['Status']}); its health checks: {checks}\n"
                    f"{docker('logs', container).stderr[-3000:]}")


def assert_stopped_cleanly(container: str) -> None:
    """After a stop as Docker sends it (SIGTERM, SIGKILL only past the grace period): gunicorn's arbiter ended with 0,
    not killed; both workers shut down; every log line is one JSON object and none an error; and the pathway's court
    report is in the request log by its route's template."""
    stopped = state(container)
    assert (stopped["ExitCode"], stopped["OOMKilled"]) == (0, False), stopped
    logs = docker("logs", container)
    lines = [json.loads(line) for line in (logs.stdout + logs.stderr).splitlines()]
    assert not [line for line in lines if line["level"] in ("error", "critical")]
    assert sum(line["msg"] == "Application shutdown complete." for line in lines) == 2
    assert any(line.get("route") == "/api/v1/screens/{screen_id}/court-report" for line in lines)


def compose_secrets() -> dict[str, str]:
    """New values for the variables compose.yaml requires an operator to set (`${NAME:?...}`)."""
    return {"POSTGRES_PASSWORD": secrets.token_urlsafe(16), "SCREENING_SECRET_KEY": secrets.token_urlsafe(32),
            "SCREENING_PERSON_KEY": secrets.token_urlsafe(32)}


def compose_environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    """A compose service's environment, with its ${NAME}, ${NAME:-default} and ${NAME:?message} filled from
    `variables` as compose fills them from an operator's shell (an unset ":?" fails, as compose refuses to start)."""
    spec = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"][service]["environment"]

    def fill(match: re.Match[str]) -> str:
        name, how, word = match.group(1), match.group(2) or "", match.group(3) or ""
        value = variables.get(name, "")
        if how == ":?" and not value:
            raise AssertionError(f"compose would refuse to start: {word}")
        return value or (word if how == ":-" else "")

    return {name: re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", fill, str(value)) for name, value in spec.items()}


def the_pathway(base: str, metrics_token: str | None = None) -> None:
    """A nurse's screen from opening to the court's PDF, through the model, the routes and WeasyPrint. Then the
    metrics: from loopback with no token, or, from off the container's host (`metrics_token` given), refused to the
    nurse's token and served to the scraper's."""
    with httpx.Client(base_url=base, timeout=30) as c:
        token = c.post("/api/v1/auth/token", data={"username": "nurse", "password": PASSWORD})
        assert token.status_code == 200, token.text
        c.headers["authorization"] = f"Bearer {token.json()['access_token']}"
        made = c.post("/api/v1/screens", json={"custody_record": "IMG/1", "date_of_birth": "1990-02-03",
                                               "sex": "female", "custody_suite": "Leeds"})
        assert made.status_code == 201, made.text
        sid = made.json()["id"]
        assert c.put(f"/api/v1/screens/{sid}/consent", json={
            "screening": True, "share_with_health": True, "share_with_court": True,
            "capacity": "has_capacity"}).status_code == 200
        answers = answers_for("mental_health", "substance_misuse", "learning_disability", "housing")
        patched = c.patch(f"/api/v1/screens/{sid}/answers", json={"answers": answers})
        assert patched.status_code == 200 and patched.json()["answers"] == answers
        assessment = c.get(f"/api/v1/screens/{sid}/assessment")
        assert assessment.status_code == 200
        domains = assessment.json()["domains"]
        assert domains and all(0 <= d["probability"] <= 1 for d in domains.values())
        routes = c.get(f"/api/v1/screens/{sid}/recommendations")
        assert routes.status_code == 200
        assert {"learning_disability_team", "drug_alcohol_service"} <= {r["route"] for r in routes.json()}
        assert c.post(f"/api/v1/screens/{sid}/finalise").status_code == 200
        pdf = c.get(f"/api/v1/screens/{sid}/court-report", params={"format": "pdf"})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-"), pdf.text[:500]
        assert c.get(f"/api/v1/screens/{sid}/fhir").json()["resourceType"] == "Bundle"
        assert c.get("/app/", follow_redirects=True).status_code == 200
        if metrics_token is None:
            metrics = c.get("/metrics").text  # compose sets SCREENING_METRICS_TOKEN to "" unless told: no token
        else:
            assert c.get("/metrics").status_code == 403
            metrics = c.get("/metrics", headers={"authorization": f"Bearer {metrics_token}"}).text
        assert re.search(r'^screening_model_info\{.*version="[^"]+"', metrics, re.M), metrics[:2000]
