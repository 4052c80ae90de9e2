"""Shared fixtures: one small artifact trained by the real pipeline, once per test session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from screening.model.service import ModelBundle, load_model

SMALL_ROWS = 2000
SMALL_SEED = 7


@pytest.fixture(scope="session")
def small_artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from training.pipeline import train

    out = tmp_path_factory.mktemp("artifact")
    manifest = train(out, rows=SMALL_ROWS, seed=SMALL_SEED, plots=False)
    return out, manifest


@pytest.fixture(scope="session")
def bundle(small_artifact: tuple[Path, dict[str, Any]]) -> ModelBundle:
    return load_model(small_artifact[0])
