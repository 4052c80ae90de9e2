"""Keeping personal data out of logs that libraries write.

SQLAlchemy at DEBUG logs every result row ("Row (...)"), which for a screen means the custody record
and date of birth. Bound parameters are already hidden (`hide_parameters=True` in `make_engine`); this
filter blanks the rows, so even an operator who turns engine logging up to DEBUG to chase a problem
never writes personal data to disk. Statements and column names are kept: they hold no values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

ENGINE_LOGGERS = ("sqlalchemy.engine.Engine", "sqlalchemy.engine")


class HideResultRows(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Row"):
            record.msg, record.args = "Row [hidden: may hold personal data]", ()
        return True


_FILTER = HideResultRows()


class Reason(Exception):
    """An exception whose message the service wrote for whoever runs it, saying what is wrong with its own set-up and
    what to do (a schema behind its code, a refused model, a broken definition file), and quoting no record's data.
    Where the logs withhold every other exception's message, they keep a Reason's: a service that cannot start
    must say why (the app's lifespan, `screening.app.create_app`)."""


def install() -> None:
    """Idempotent: safe to call for every engine made."""
    for name in ENGINE_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def route_template(scope: Mapping[str, Any]) -> str:
    """A request's route as its template (`/api/v1/screens/{screen_id}`), for logs and metric labels: a path can carry
    ids, and raw paths would explode a metric's cardinality. Unmatched paths are folded into one label."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "unmatched"
