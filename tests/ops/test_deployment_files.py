"""The deployment files: the Dockerfile passes hadolint and keeps its promises; compose.yaml is whole.

Images cannot be built on the development machines, so these check the files as text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from screening.ops.protocol import GRACEFUL_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint is not installed: it comes with the dev extra (pip install -e '.[dev]')"
    return found


class TestDockerfile:
    def test_hadolint_finds_nothing(self) -> None:
        r = subprocess.run([_hadolint(), "--failure-threshold", "style", str(ROOT / "Dockerfile")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr

    def test_is_multi_stage(self) -> None:
        assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) >= 2
        assert "COPY --from=build" in DOCKERFILE

    def test_runs_as_a_non_root_user(self) -> None:
        users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
        assert users and users[-1].split(":")[0] not in ("root", "0")

    def test_has_a_health_check_on_the_liveness_probe(self) -> None:
        assert re.search(r"^HEALTHCHECK .*", DOCKERFILE, re.M)
        assert "/health/live" in DOCKERFILE

    def test_installs_no_training_or_dev_dependencies(self) -> None:
        installs = [line for line in DOCKERFILE.splitlines() if "pip install" in line]
        assert installs
        assert not any(re.search(r"\[(training|dev)", line) for line in installs)

    def test_dockerignore_lets_only_the_package_in(self) -> None:
        lines = (ROOT / ".dockerignore").read_text().splitlines()
        assert lines[lines.index("*")] == "*"  # everything is excluded unless named
        allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
        assert allowed <= {"pyproject.toml", "README.md", "screening", "models"}


class TestCompose:
    def test_service_waits_for_the_migration_which_waits_for_the_database(self) -> None:
        compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
        services = compose["services"]
        assert services["migrate"]["command"][-2:] == ["screening", "migrate"]
        assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
        assert services["app"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        env = services["app"]["environment"]
        # Secrets have no defaults: compose refuses to start without them.
        for name in ("SCREENING_SECRET_KEY", "SCREENING_PERSON_KEY"):
            assert ":?" in env[name]
        assert env["SCREENING_DATABASE_URL"].startswith("postgresql+psycopg://")

    def test_a_stop_waits_longer_than_the_service_does(self) -> None:
        """Docker kills a container 10 s after a stop unless told otherwise; the service takes up to its graceful
        timeout to answer what it has read and commit (tests/load/test_graceful_stop.py)."""
        app = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["app"]
        seconds = re.fullmatch(r"(\d+)s", app["stop_grace_period"])
        assert seconds and int(seconds.group(1)) > GRACEFUL_TIMEOUT
