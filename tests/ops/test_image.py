"""The runtime image without Docker: its file system made by the Dockerfile's own instructions, and the service
run from it as the image and compose.yaml run it.

`test_docker_image.py` builds the image with Docker and runs it; this follows it without an engine (for a machine
without Docker, and to run what the image runs where each step can be looked at). What breaks an image is what the
tests' own set-up hides: the dev virtualenv holds the training and test libraries, so a module the service comes to
import from them works in every other test and fails in the image; and the tests run as root in a writable checkout,
while the image runs as uid 10001 on files it cannot write (compose's with a read-only root). So `image` follows
the Dockerfile instruction by instruction, with each of the image's paths moved under one folder (`Image.moved`):

- the build stage's WORKDIR, COPY and RUN as written, from a build context holding only what .dockerignore lets
  in, with Debian's Python 3.11 standing for the base image's `python` (the same release of the same Debian);
- the runtime stage's the same way, except its RUN that installs Debian packages and adds the user, which cannot
  run here: its packages must be installed on this machine (scripts/bootstrap.sh installs them), and the user's
  home is made as useradd makes it. What the image copies stays root's: its user can write its home and /tmp only.

The service then runs as the runtime stage's USER, with its ENV, WORKDIR and CMD, after compose.yaml's migrate
command and with compose.yaml's environment (its variables filled in as an operator's shell fills them): on
PostgreSQL, as a role that owns its database and nothing more, as a managed server's would be, and on SQLite.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy import make_url, text

from tests.conftest import PG_ADMIN_URL, postgres_admin
from tests.live import free_port, wait_until_ready
from tests.ops.deployment import PASSWORD, compose_environment, the_pathway

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("image")  # one image for the module, built once

# The base image's PATH (python:3.11-slim); its `python` is /usr/local/bin's, which `Image.base_python` stands for.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_ENV = {"LANG": "C.UTF-8"}  # set by the base image
# The image's own folders, as the Dockerfile names them: each is moved under the image's folder here.
_IMAGE_PATH = re.compile(r"(?<![\w.$/-])/(?=(?:opt|src|var/lib/screening|tmp)(?:[/\s:'\"]|$))")
# The Debian Python 3.11 that stands for the base image's: a venv made from the pyenv Python of this machine's
# tests would point into /root, which the image's user cannot enter.
DEBIAN_PYTHON = Path("/usr/bin/python3.11")
# Run by the image's Python (the standard library only): each installed distribution, and its requirement lines.
_DISTRIBUTIONS = """
import json
from importlib.metadata import distributions
print(json.dumps({dist.metadata["Name"]: dist.requires or [] for dist in distributions()}))
"""


def instructions(dockerfile: str) -> list[tuple[str, str, str]]:
    """(stage, INSTRUCTION, arguments) for each instruction, continuation lines joined, comments left out."""
    out: list[tuple[str, str, str]] = []
    stage, pending = "", ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            stage = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else args
        out.append((stage, keyword, " ".join(args.split())))
    return out


@dataclass
class Image:
    path: Path  # the image's "/"
    build: Path  # the build stage's "/"
    uid: int = 0
    gid: int = 0
    home: str = ""
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)  # the runtime stage's ENV, as the image states it
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    healthcheck_timeout: float = 0.0
    packages: list[str] = field(default_factory=list)

    def moved(self, text: str, root: Path | None = None) -> str:
        """`text` with each of the image's paths moved under its folder here (or under `root`)."""
        return _IMAGE_PATH.sub(str(root or self.path) + "/", text)

    @property
    def base_python(self) -> Path:
        return self.path.parent / "base-python"

    def environment(self, **extra: str) -> dict[str, str]:
        """A process's environment in the image: the base image's, the runtime stage's ENV, then `extra`."""
        env = dict(BASE_ENV, PATH=f"{self.base_python}:{BASE_PATH}", HOME=self.moved(self.home))
        for name, value in self.env.items():
            env[name] = self.moved(value).replace("$PATH", env["PATH"])
        return env | extra

    def run(self, argv: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`argv` in the image, as its user, from its WORKDIR; its output returned."""
        return subprocess.run(argv, env=env, cwd=self.moved(self.workdir), capture_output=True, text=True,
                              timeout=timeout, user=self.uid, group=self.gid, extra_groups=[])


def _build_context(into: Path) -> None:
    """What `docker build .` sends: the files .dockerignore lets in ("*", then "!name" for each kept one)."""
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert "*" in lines, ".dockerignore must exclude everything not named"
    for name in (line[1:].rstrip("/") for line in lines if line.startswith("!")):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, into / name)


def _copy(image: Image, args: str, context: Path, dest_root: Path, workdir: str) -> None:
    words = args.split()
    source_root = context
    if words[0].startswith("--from="):
        assert words[0] == "--from=build", f"COPY {args}: only the build stage is copied from"
        source_root = image.build
        words = words[1:]
    *sources, dest = words
    target = Path(image.moved(dest if dest.startswith("/") else f"{workdir}/{dest}", dest_root))
    for source in sources:
        path = source_root / source.lstrip("/")
        into = target / path.name if (dest.endswith("/") or len(sources) > 1) else target
        if path.is_dir():
            shutil.copytree(path, into, symlinks=True, dirs_exist_ok=True)
        else:
            into.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, into)


def _installs_packages_and_adds_the_user(image: Image, args: str) -> bool:
    """The runtime stage's RUN that cannot run here: read for its Debian packages and its user instead."""
    if "apt-get install" not in args:
        return False
    install = args.split("apt-get install", 1)[1].split("&&", 1)[0].split()
    image.packages = [word for word in install if not word.startswith("-")]
    useradd = shlex.split(args.split("useradd", 1)[1].split("&&", 1)[0])
    assert "--create-home" in useradd, "the image's user needs a home: the service's data folder"
    image.uid = int(useradd[useradd.index("--uid") + 1])
    image.home = useradd[useradd.index("--home-dir") + 1]
    groupadd = shlex.split(args.split("groupadd", 1)[1].split("&&", 1)[0])
    image.gid = int(groupadd[groupadd.index("--gid") + 1])
    return True


def build_image(into: Path) -> Image:
    image = Image(path=into / "image", build=into / "build")
    image.base_python.mkdir(parents=True)
    (image.base_python / "python").symlink_to(DEBIAN_PYTHON)
    context = into / "context"
    context.mkdir()
    _build_context(context)
    # The build's network: the package registries this machine reaches, as pip is configured here.
    reach = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k.lower().endswith("_proxy")}
    for stage, keyword, args in instructions((ROOT / "Dockerfile").read_text()):
        root = {"build": image.build, "runtime": image.path}.get(stage)
        if root is None:
            continue  # ARG before the first FROM
        root.mkdir(exist_ok=True)
        if keyword == "FROM":
            workdir, env = "/", dict(BASE_ENV, PATH=f"{image.base_python}:{BASE_PATH}", HOME=str(into))
        elif keyword == "WORKDIR":
            workdir = args
            Path(image.moved(workdir, root)).mkdir(parents=True, exist_ok=True)
        elif keyword == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                env[name] = image.moved(value, root).replace("$PATH", env["PATH"])
                if stage == "runtime":
                    image.env[name] = value
        elif keyword == "COPY":
            _copy(image, args, context, root, workdir)
        elif keyword == "RUN":
            if stage == "runtime" and _installs_packages_and_adds_the_user(image, args):
                home = Path(image.moved(image.home))
                home.mkdir(parents=True)
                os.chown(home, image.uid, image.gid)
                continue
            done = subprocess.run(["/bin/sh", "-c", image.moved(args, root)], cwd=image.moved(workdir, root),
                                  env=env | reach, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"RUN {args}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        elif keyword == "USER":
            user, _, group = args.partition(":")
            image.uid, image.gid = int(user), int(group or user)
        elif keyword == "CMD":
            image.cmd = json.loads(args)
        elif keyword == "HEALTHCHECK":
            options, _, command = args.partition(" CMD ")
            image.healthcheck = json.loads(command)
            timeout = re.search(r"--timeout=(\d+)s", options)
            assert timeout, "the health check needs a timeout"
            image.healthcheck_timeout = float(timeout.group(1))
    image.workdir = workdir
    tmp = image.path / "tmp"  # compose mounts a tmpfs there
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    return image


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    if os.geteuid() != 0:
        pytest.skip(f"runs the image's steps and its service as the image's user, which needs root (this is uid "
                    f"{os.geteuid()}); CI runs as root")
    assert DEBIAN_PYTHON.exists(), "Debian's python3.11 stands for the base image's: scripts/bootstrap.sh installs it"
    folder = Path(tempfile.mkdtemp(prefix="screening-image-"))
    folder.chmod(0o755)  # the image's user must reach the image's folder
    try:
        yield build_image(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Deployment:
    env: dict[str, str]  # the service's environment: the image's and compose's
    database: str


@pytest.fixture(params=["postgres", "sqlite"])
def deployment(request: pytest.FixtureRequest, image: Image) -> Iterator[Deployment]:
    variables = {"POSTGRES_PASSWORD": secrets.token_urlsafe(16), "SCREENING_SECRET_KEY": secrets.token_urlsafe(32),
                 "SCREENING_PERSON_KEY": secrets.token_urlsafe(32)}
    compose = compose_environment("app", variables)
    assert compose == compose_environment("migrate", variables) | {"SCREENING_WORKERS": "2"}
    if request.param == "sqlite":
        # compose.yaml always names PostgreSQL; without a URL the image keeps a SQLite file in its data folder.
        del compose["SCREENING_DATABASE_URL"]
        try:
            yield Deployment(image.environment(**compose), "sqlite")
        finally:
            _new_container(image)
        return
    # compose's URL with its host (the "db" service) and its role and database made here: a role that owns its
    # database and nothing else, as on a managed server (compose's own postgres image makes its user a superuser).
    admin = postgres_admin()
    name = f"screening_image_{secrets.token_hex(6)}"
    url = make_url(compose["SCREENING_DATABASE_URL"])
    assert (url.host, url.port) == ("db", 5432)
    server = make_url(PG_ADMIN_URL)
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{url.password}'"))
        conn.execute(text(f"CREATE DATABASE {name} OWNER {name}"))
    compose["SCREENING_DATABASE_URL"] = url.set(host=server.host, port=server.port, username=name,
                                                database=name).render_as_string(hide_password=False)
    try:
        yield Deployment(image.environment(**compose), "postgres")
    finally:
        _new_container(image)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"DROP ROLE IF EXISTS {name}"))
        admin.dispose()


def _new_container(image: Image) -> None:
    """The next deployment starts as a new container does: an empty volume and an empty /tmp."""
    for folder in (Path(image.moved(image.home)), image.path / "tmp"):
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def test_the_runtime_packages_are_installed_here(image: Image) -> None:
    """The RUN that cannot run here installs Debian packages: this machine must have them for the service to run as
    the image would (they are WeasyPrint's)."""
    assert image.packages, "the Dockerfile's runtime stage installs Debian packages"
    status = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n", *image.packages],
                            capture_output=True, text=True)
    installed = {line.split()[0] for line in status.stdout.splitlines() if line.endswith("install ok installed")}
    assert installed == set(image.packages), f"missing here: {set(image.packages) - installed} (scripts/bootstrap.sh)"
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert all(package in bootstrap for package in image.packages)


def test_the_image_holds_no_training_or_test_library(image: Image) -> None:
    """Nothing the training and dev extras name (pyproject.toml) is installed, unless a runtime dependency itself
    requires it (onnxruntime requires protobuf, which the training extra pins too)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = {canonicalize_name(Requirement(line).name) for lines in extras.values() for line in lines}
    done = image.run(["python", "-c", _DISTRIBUTIONS], image.environment())
    assert done.returncode == 0, done.stderr
    requires = {canonicalize_name(name): [Requirement(line) for line in lines]
                for name, lines in json.loads(done.stdout).items()}
    installed = set(requires)
    required = {canonicalize_name(r.name) for rs in requires.values() for r in rs if "extra" not in str(r.marker or "")}
    assert {"fastapi", "onnxruntime", "weasyprint", "psycopg", "sqlalchemy"} <= installed  # it did install
    assert "screening" not in installed  # uninstalled again: it runs from /opt/screening, beside its models
    assert {"scikit-learn", "shap", "pytest"} <= named  # the extras as read
    assert not (installed & named) - required


@dataclass
class Container:
    base: str  # its URL
    healthcheck: list[str]  # the Dockerfile's HEALTHCHECK command
    env: dict[str, str]  # its environment, which the health check runs with too (as `docker exec` does)
    log: Path
    code: int | None = None  # its exit code, once stopped


@contextlib.contextmanager
def _container(image: Image, env: dict[str, str], name: str) -> Iterator[Container]:
    """The image's CMD as its user, with `env`, on a free port (the image's 0.0.0.0:8000 here), once ready; stopped
    with SIGTERM on the way out, as `docker stop` stops it, waiting as long as compose's stop_grace_period."""
    port = free_port()
    env = env | {"SCREENING_HOST": "127.0.0.1", "SCREENING_PORT": str(port)}
    # A port other than the image's: the health check follows SCREENING_PORT (it once asked 8000 whatever the port).
    assert image.env["SCREENING_PORT"] == "8000"
    container = Container(f"http://127.0.0.1:{port}", image.healthcheck, env, image.path.parent / f"{name}.log")
    with container.log.open("wb") as out:
        server = subprocess.Popen(image.cmd, env=env, cwd=image.moved(image.workdir), stdout=out, stderr=out,
                                  start_new_session=True, user=image.uid, group=image.gid, extra_groups=[])
    try:
        wait_until_ready(container.base, server, container.log)
        assert os.stat(f"/proc/{server.pid}").st_uid == image.uid  # the image's user, not root
        yield container
    finally:
        with contextlib.suppress(ProcessLookupError):  # unless it has ended already (a failed start)
            os.killpg(server.pid, signal.SIGTERM)
        try:
            container.code = server.wait(timeout=25)  # compose.yaml's stop_grace_period
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise


def test_the_service_runs_from_the_image_as_compose_runs_it(image: Image, deployment: Deployment) -> None:
    env = deployment.env
    migrate = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["migrate"]["command"]
    done = image.run(migrate, env)
    assert done.returncode == 0, done.stdout + done.stderr
    # An account, as an operator makes one in a running container (`docker compose exec app ...`).
    done = image.run(["python", "-m", "screening", "users", "add", "nurse", "--role", "nurse", "--password", PASSWORD,
                      "--suite", "Leeds"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    with _container(image, env, f"serve-{deployment.database}") as served:
        check = image.run(served.healthcheck, served.env, timeout=image.healthcheck_timeout)
        assert check.returncode == 0, check.stderr
        the_pathway(served.base)
        # A data scientist's model promoted in the running image: verified and copied under its data folder.
        shipped = image.moved("/opt/screening/models/default")
        done = image.run(["python", "-m", "screening", "models", "promote", shipped], env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "promoted model" in done.stdout + done.stderr
        done = image.run(["python", "-m", "screening", "audit", "verify"], env)
        assert done.returncode == 0 and "intact" in done.stdout, done.stdout + done.stderr
        if deployment.database == "postgres":
            _another_instance_serves_the_promoted_model(image, env)
    assert served.code == 0, served.log.read_text()[-3000:]
    assert image.run(served.healthcheck, served.env, timeout=image.healthcheck_timeout).returncode != 0  # stopped
    lines = [json.loads(line) for line in served.log.read_text().splitlines()]  # every line one JSON object
    assert not [line for line in lines if line["level"] in ("error", "critical")]
    assert any(line.get("logger") == "screening.request" and line["route"] == "/api/v1/screens/{screen_id}/court-report"
               for line in lines)
    # Nothing of the user's outside what compose lets it write: its volume and /tmp (read, not written, here).
    shared_tmp, own_tmp = "/var/tmp", f"{image.path}/tmp*"  # noqa: S108
    found = subprocess.run(["find", shared_tmp, str(image.path), "-uid", str(image.uid), "-not", "-path",
                            f"{image.moved(image.home)}*", "-not", "-path", own_tmp], capture_output=True, text=True)
    assert found.stdout == ""


def _another_instance_serves_the_promoted_model(image: Image, env: dict[str, str]) -> None:
    """A second container beside the first, over the same database, with a volume and a /tmp of its own: scaled
    out on another host, it shares nothing with the first but the database, and serves the model promoted there."""
    volume, tmp = image.path.parent / "second-volume", image.path.parent / "second-tmp"
    for folder in (volume, tmp):
        folder.mkdir()
        os.chown(folder, image.uid, image.gid)
    env = env | {"HOME": str(volume), "SCREENING_DATA_DIR": str(volume),
                 "PROMETHEUS_MULTIPROC_DIR": str(tmp / "screening-metrics")}
    try:
        with _container(image, env, "second-instance") as second, httpx.Client(base_url=second.base, timeout=30) as c:
            token = c.post("/api/v1/auth/token", data={"username": "nurse", "password": PASSWORD}).json()
            active = c.get("/api/v1/models/active", headers={"authorization": f"Bearer {token['access_token']}"})
            assert active.json()["source"] == "promoted", active.text
        assert second.code == 0, second.log.read_text()[-3000:]
        assert list(volume.glob("models/*/manifest.json"))  # its own copy, written out from the database
    finally:
        shutil.rmtree(volume)
        shutil.rmtree(tmp)
