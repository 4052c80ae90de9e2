from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from screening.cli import app
from screening.routes.rulebook import SHIPPED_DIR


def test_routes_check_prints_versions_and_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCREENING_ROUTES_DIR", raising=False)
    result = CliRunner().invoke(app, ["routes", "check"])
    assert result.exit_code == 0, result.output
    assert "rules 1.0.0 sha256 " in result.output and "directory 1.0.0 sha256 " in result.output


def test_routes_check_refuses_a_broken_site_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (SHIPPED_DIR / "rules.yaml").read_text().replace("route: veterans_support", "route: nowhere")
    (tmp_path / "rules.yaml").write_text(text)
    monkeypatch.setenv("SCREENING_ROUTES_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["routes", "check"])
    assert result.exit_code == 2
