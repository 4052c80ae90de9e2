"""The image built by Docker from the Dockerfile, and run by Docker as compose.yaml runs it.

`test_image.py` follows the Dockerfile without an engine; this builds it with one (`docker build`, the classic
builder) and runs the result: the runtime stage's own RUN (Debian's packages, the user), its HEALTHCHECK as Docker
runs it, a read-only root with a /tmp of its own, a named volume, `docker stop`. scripts/bootstrap.sh installs
Debian's docker.io and starts its daemon where none answers.

The base image is the one thing not as written. The Dockerfile's `python:3.11-slim-bookworm` comes from Docker
Hub, which machines of this kind cannot reach (they reach PyPI and Debian's and npm's registries only), so the
test passes the Dockerfile's own PYTHON_IMAGE argument a stand-in: Debian bookworm with its Python 3.11, made with
debootstrap from Debian's registry and given the slim image's PATH and LANG. It trusts the certificate authorities
this machine trusts, for the build stage's pip: here, PyPI is reached through a proxy with its own authority.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import make_url, text

from tests.conftest import PG_ADMIN_URL, postgres_admin
from tests.live import free_port
from tests.ops.deployment import PASSWORD, compose_environment, the_pathway

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("docker")]  # one image for the module, built once

REQUIRE_DOCKER = os.environ.get("SCREENING_REQUIRE_DOCKER") == "1"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# The slim image's Python and what the Dockerfile's stages run with it; its PATH and LANG, as the slim image sets.
BASE_PACKAGES = "python3.11,python3.11-venv,python3-pip,python-is-python3,ca-certificates"
BASE_CHANGES = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8"]
TRUSTED = Path("/etc/ssl/certs/ca-certificates.crt")
TAG = "screening:docker-test"


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} ... ended {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def _engine() -> None:
    """A Docker engine answers, or the test skips saying why (fails with SCREENING_REQUIRE_DOCKER=1, as in CI)."""
    try:
        answered = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                                  text=True, timeout=30, check=False)
        reason = "" if answered.returncode == 0 else f"no Docker engine answers: {answered.stderr.strip()[:200]}"
    except FileNotFoundError:
        reason = "no docker command (scripts/bootstrap.sh dev installs Debian's docker.io)"
    if reason:
        if REQUIRE_DOCKER:
            pytest.fail(reason + " (SCREENING_REQUIRE_DOCKER=1)")
        pytest.skip(reason)


def _base_image() -> str:
    """The stand-in for python:3.11-slim-bookworm, made once per machine: its tag names what it is made of."""
    trusted = TRUSTED.read_bytes()
    made_of = hashlib.sha256("\n".join([DEBIAN_MIRROR, BASE_PACKAGES, *BASE_CHANGES]).encode() + trusted).hexdigest()
    tag = f"screening-test-base/python:3.11-bookworm-{made_of[:12]}"
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory(prefix="screening-base-") as tmp:
        root = Path(tmp) / "root"
        made = subprocess.run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(root),
                               DEBIAN_MIRROR], capture_output=True, text=True, timeout=600, check=False)
        assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
        (root / TRUSTED.relative_to("/")).write_bytes(trusted)
        (root / "etc" / "pip.conf").write_text(f"[global]\ncert = {TRUSTED}\n")
        shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        changes = [arg for change in BASE_CHANGES for arg in ("--change", change)]
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["docker", "import", *changes, "-", tag], stdin=tar.stdout, capture_output=True,
                                  text=True, timeout=600, check=False)
        assert tar.wait() == 0 and imported.returncode == 0, imported.stderr
    return tag


@pytest.fixture(scope="module")
def image() -> str:
    _engine()
    base = _base_image()
    # The classic builder: BuildKit would fetch the `# syntax=docker/dockerfile:1` front end from Docker Hub.
    built = subprocess.run(["docker", "build", "--build-arg", f"PYTHON_IMAGE={base}", "--tag", TAG, str(ROOT)],
                           env=os.environ | {"DOCKER_BUILDKIT": "0"}, capture_output=True, text=True, timeout=1200,
                           check=False)
    assert built.returncode == 0, built.stdout[-5000:] + built.stderr[-3000:]
    return TAG


@dataclass
class Site:
    """compose.yaml's environment for this run, with a database of its own on the test server (the "db" service's
    place), and a named volume for the app's data folder, as compose's appdata."""

    env: dict[str, str]
    volume: str


@pytest.fixture
def site(image: str) -> Iterator[Site]:
    variables = {"POSTGRES_PASSWORD": secrets.token_urlsafe(16), "SCREENING_SECRET_KEY": secrets.token_urlsafe(32),
                 "SCREENING_PERSON_KEY": secrets.token_urlsafe(32)}
    env = compose_environment("app", variables)
    admin = postgres_admin()
    name = f"screening_docker_{secrets.token_hex(6)}"
    url = make_url(env["SCREENING_DATABASE_URL"])
    server = make_url(PG_ADMIN_URL)
    with admin.connect() as conn:  # a role that owns its database and nothing else, as on a managed server
        conn.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{url.password}'"))
        conn.execute(text(f"CREATE DATABASE {name} OWNER {name}"))
    env["SCREENING_DATABASE_URL"] = url.set(host=server.host, port=server.port, username=name,
                                            database=name).render_as_string(hide_password=False)
    volume = docker("volume", "create", name).stdout.strip()
    try:
        yield Site(env, volume)
    finally:
        docker("volume", "rm", "--force", volume, check=False)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"DROP ROLE IF EXISTS {name}"))
        admin.dispose()


def _options(site: Site, env: dict[str, str]) -> list[str]:
    """`docker run`'s options for compose's app service: its environment, its volume, a read-only root with its tmpfs
    (a /tmp of its own). On the host's network, where the test server listens on loopback (compose's "db" is a
    service)."""
    app = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["app"]
    assert app["read_only"] is True and app["volumes"] == ["appdata:/var/lib/screening"]
    tmpfs = ["--tmpfs" + "=" + folder for folder in app["tmpfs"]]  # /tmp, in the container
    return ["--network", "host", "--read-only", *tmpfs, "--volume", f"{site.volume}:/var/lib/screening",
            *(arg for name, value in env.items() for arg in ("--env", f"{name}={value}"))]


def _once(site: Site, *argv: str) -> subprocess.CompletedProcess[str]:
    """A one-off container of the image, as compose's migrate service or `docker compose run app ...`."""
    return docker("run", "--rm", *_options(site, site.env), TAG, *argv, check=False, timeout=180)


def _health(name: str) -> str:
    return docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()


@contextlib.contextmanager
def _serving(site: Site) -> Iterator[tuple[str, str]]:
    """The image's CMD in a container, on a free port of the host's network; yields (its name, its URL) once Docker's
    health check says healthy. Removed on the way out."""
    name = f"screening-test-{secrets.token_hex(4)}"
    port = free_port()
    # SCREENING_PORT other than the image's 8000: the health check must follow it (it once asked 8000 alone).
    env = site.env | {"SCREENING_PORT": str(port)}
    docker("run", "--detach", "--name", name, *_options(site, env), TAG)
    try:
        deadline = time.monotonic() + 90  # the HEALTHCHECK's start period (20 s) and interval (15 s), and then some
        while (status := _health(name)) == "starting" and time.monotonic() < deadline:
            time.sleep(1)
        if status != "healthy":
            state = json.loads(docker("inspect", "--format", "{{json .State}}", name).stdout)
            checks = [(c["ExitCode"], c["Output"].strip().splitlines()[-1:]) for c in state["Health"]["Log"]]
            pytest.fail(f"{status} ({state['Status']}); its health checks: {checks}\n{docker('logs', name).stderr[-3000:]}")
        yield name, f"http://127.0.0.1:{port}"
    finally:
        docker("rm", "--force", name, check=False)


def test_the_built_image_serves_as_compose_runs_it(site: Site) -> None:
    migrate = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["migrate"]["command"]
    done = _once(site, *migrate)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [json.loads(line)["msg"] for line in done.stderr.splitlines()] == ["database schema is up to date"]
    done = _once(site, "python", "-m", "screening", "users", "add", "nurse", "--role", "nurse", "--password", PASSWORD,
                 "--suite", "Leeds")
    assert done.returncode == 0, done.stdout + done.stderr
    with _serving(site) as (name, base):
        assert docker("exec", name, "id", "-u").stdout.strip() == "10001"  # the image's user, not root
        # Nothing outside the volume and /tmp is writable, the service's own files included.
        written = docker("exec", name, "sh", "-c", "touch /opt/screening/x || touch /var/tmp/x", check=False)
        assert written.returncode != 0 and "Read-only file system" in written.stderr
        assert docker("exec", name, "python", "-c", "import sklearn", check=False).returncode != 0
        the_pathway(base)  # the model, the routes, WeasyPrint's PDF with the runtime stage's Debian packages
        with httpx.Client(base_url=base, timeout=30) as c:
            assert c.get("/health/ready").json()["checks"] == {"database": "ok", "model": "ok"}
        # A stop as `docker compose stop` sends it, within compose's stop_grace_period: the workers finish and the
        # arbiter ends with 0, not killed.
        grace = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["app"]["stop_grace_period"]
        docker("stop", "--time", grace.removesuffix("s"), name, timeout=60)
        state = json.loads(docker("inspect", "--format", "{{json .State}}", name).stdout)
        assert (state["ExitCode"], state["OOMKilled"]) == (0, False), state
        logs = docker("logs", name)
        lines = [json.loads(line) for line in (logs.stdout + logs.stderr).splitlines()]  # every line one JSON object
        assert not [line for line in lines if line["level"] in ("error", "critical")]
        assert sum(line["msg"] == "Application shutdown complete." for line in lines) == 2  # both workers
        assert any(line.get("route") == "/api/v1/screens/{screen_id}/court-report" for line in lines)
