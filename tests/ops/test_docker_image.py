"""The image built by Docker from the Dockerfile, and run by Docker as compose.yaml runs it.

`test_image.py` follows the Dockerfile without an engine; this builds it with one (`docker build`, the classic
builder) and runs the result: the runtime stage's own RUN (Debian's packages, the user), its HEALTHCHECK as Docker
runs it, a read-only root with a /tmp of its own, a named volume, `docker stop`. scripts/bootstrap.sh installs
Debian's docker.io and starts its daemon where none answers.

The base image is the one thing not as written: a stand-in for Docker Hub's (`tests.ops.deployment.base_image`).
`test_compose.py` runs compose.yaml itself; this runs the image as compose runs the app, but on a server that is not
compose's: PostgreSQL as a role that owns its database and nothing more, on a port other than 8000.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import yaml
from sqlalchemy import make_url, text

from tests.conftest import PG_ADMIN_URL, postgres_admin
from tests.live import free_port
from tests.ops.deployment import (
    PASSWORD,
    ROOT,
    assert_stopped_cleanly,
    base_image,
    build,
    compose_environment,
    compose_secrets,
    docker,
    require_engine,
    the_pathway,
    wait_healthy,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("docker")]  # one image for the module, built once

TAG = "screening:docker-test"


@pytest.fixture(scope="module")
def image() -> str:
    require_engine()
    return build(ROOT, TAG, PYTHON_IMAGE=base_image())


@dataclass
class Site:
    """compose.yaml's environment for this run, with a database of its own on the test server (the "db" service's
    place), and a named volume for the app's data folder, as compose's appdata."""

    env: dict[str, str]
    volume: str


@pytest.fixture
def site(image: str) -> Iterator[Site]:
    env = compose_environment("app", compose_secrets())
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
        wait_healthy(name)
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
        assert_stopped_cleanly(name)
