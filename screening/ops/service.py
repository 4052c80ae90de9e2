"""Readiness checks and the figures behind /metrics, read from the app's state."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, text

log = logging.getLogger("screening.ops")


def model_version(state: Any) -> str | None:
    """The served model's version, whatever the model domain calls it on `app.state`."""
    version = getattr(state, "model_version", None)
    if version is None:
        version = getattr(getattr(state, "model", None), "version", None)
    return str(version) if version is not None else None


def readiness(state: Any) -> dict[str, str]:
    """`ok` per dependency, or a short reason (no personal data, no connection strings)."""
    checks: dict[str, str] = {}
    engine: Engine | None = getattr(state, "engine", None)
    if engine is None:
        checks["database"] = "not started"
    else:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the type says which
            log.warning("readiness: database check failed", extra={"event": type(exc).__name__})
            checks["database"] = f"unreachable ({type(exc).__name__})"
    if hasattr(state, "model"):
        checks["model"] = "ok" if state.model is not None else "not loaded"
    else:
        checks["model"] = "absent"
    return checks
