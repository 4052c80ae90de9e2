"""One error shape for the whole API: RFC 9457 `application/problem+json`."""

from __future__ import annotations

import logging
import sqlite3
import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from screening.db import sqlite_busy
from screening.log_redaction import route_template

log = logging.getLogger("screening.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="The offending field or item id, e.g. `answers.phq9_3`.")
    message: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raise from services or dependencies; rendered as problem+json."""

    status = 400
    title = "Bad request"

    def __init__(
        self, detail: str | None = None, *, errors: list[FieldError] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = headers


class NotFound(ProblemError):
    status, title = 404, "Not found"


class Unauthorized(ProblemError):
    status, title = 401, "Not authenticated"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ProblemError):
    status, title = 403, "Forbidden"


class Conflict(ProblemError):
    status, title = 409, "Conflict"


class Invalid(ProblemError):
    status, title = 422, "Invalid input"


class TooManyRequests(ProblemError):
    status, title = 429, "Too many requests"


class Unavailable(ProblemError):
    status, title = 503, "Service unavailable"


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    errors: list[FieldError] | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, errors=errors, instance=instance)
    return JSONResponse(
        jsonable_encoder(body, exclude_none=True), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


# Where the database did not answer: nothing in the request was wrong, and the same request may go through in a
# moment (on this instance, once its pool has a live connection, or on another). A 503 tells a load balancer and
# the tablet's queue so, and keeps a failover out of the 500s, which are the service's own faults.
UNAVAILABLE_DETAIL = "The database did not answer. Try again in a moment."
RETRY_AFTER_SECONDS = 1


def internal_error_detail(reference: str | None) -> str:
    """What a 500 says: that the fault is the service's, and the reference to report it by."""
    logged = f"it has been logged with reference {reference}" if reference else "it has been logged"
    return f"Something went wrong on the service; {logged}."


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says that the database could not be reached or could not take the work in time: a connection cut
    (a failover, a restart), no connection free in the pool in time, a lock held past the wait. Other database
    errors (a constraint, a missing table) are the service's own faults."""
    if isinstance(exc, sa_exc.TimeoutError):  # the ORM's pool had no connection to give in time
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or (exc.orig is not None and database_unavailable(exc.orig))
    if isinstance(exc, sqlite3.OperationalError):
        return sqlite_busy(exc)
    psycopg = sys.modules.get("psycopg")  # imported only where the database is PostgreSQL
    return psycopg is not None and isinstance(exc, _psycopg_unavailable(psycopg))


def _psycopg_unavailable(psycopg: Any) -> tuple[type[Exception], ...]:
    """psycopg's errors that say the database is away. Its OperationalError covers a lost or refused connection, the
    pool's timeout (psycopg_pool.PoolTimeout), the server's refusals for want of resources (too many connections, a
    cancelled statement, a lock not had in time) and a transaction it rolled back to break a deadlock or a
    serialisation failure: each may go through when sent again. Also a session the server ended for idling in its
    transaction (screening.db.IDLE_IN_TRANSACTION_TIMEOUT), which psycopg counts among its InternalErrors: the
    instance was held up past the limit, and nothing of the transaction was kept."""
    return psycopg.OperationalError, psycopg.errors.IdleInTransactionSessionTimeout


def install_handlers(app: FastAPI, *, postgresql: bool = False) -> None:
    """The problem+json handlers; `postgresql`: psycopg's errors too (imported only for a PostgreSQL database)."""
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # the service's own fault: the handler for everything else answers 500
        from screening.ops.metrics import DATABASE_UNAVAILABLE  # not at the top: screening.ops imports this module

        # Logged and counted by the driver's error class only (SQLAlchemy's wrapping says less: OperationalError for
        # a lock timeout and a cut connection alike); a warning, not an error: the service itself is not at fault.
        route, error = route_template(request.scope), type(getattr(exc, "orig", None) or exc).__name__
        log.warning("database unavailable on %s %s: %s", request.method, route, error)
        DATABASE_UNAVAILABLE.labels(request.method, route, error).inc()
        return problem_response(503, "Service unavailable", UNAVAILABLE_DETAIL, instance=request.url.path,
                                headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    # A connection that was cut comes back from SQLAlchemy as an OperationalError or an InterfaceError, and a session
    # the server ended for idling in its transaction as an InternalError; the other kinds of DBAPIError (a constraint,
    # say) never mean the database was away, and keep their own path.
    database_errors: list[type[Exception]] = [sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.InternalError,
                                              sa_exc.TimeoutError, sqlite3.OperationalError]
    if postgresql:
        import psycopg

        database_errors += _psycopg_unavailable(psycopg)
    for error in database_errors:
        app.add_exception_handler(error, _database)

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status, exc.title, exc.detail, errors=exc.errors, instance=request.url.path, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        malformed = False
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                malformed = True
            # Never echo the submitted value: it may be personal data.
            errors.append(FieldError(field=_loc_to_field(tuple(e.get("loc", ()))), message=str(e.get("msg", "invalid"))))
        if malformed:
            return problem_response(400, "Malformed JSON", "The request body is not valid JSON.", errors=errors,
                                    instance=request.url.path)
        fields = ", ".join(dict.fromkeys(e.field for e in errors))
        return problem_response(422, "Invalid input", f"Invalid fields: {fields}", errors=errors, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 401: "Not authenticated", 403: "Forbidden",
                  413: "Request too large"}
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(exc.status_code, titles.get(exc.status_code, "Error"), detail,
                                instance=request.url.path, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unknown(request: Request, exc: Exception) -> JSONResponse:
        # Logged by type only: exception messages can carry submitted values.
        from screening.ops.logging import REQUEST_ID_KEY, request_id_var  # not at the top: screening.ops imports this

        # This runs in Starlette's outermost middleware, after the request middleware has returned: the request's id
        # comes from the scope, for this line, the response's header and its detail, as the request's other lines
        # and its header carry it. The detail says nothing of what was saved: the error may have come after a commit.
        reference: str | None = request.scope.get(REQUEST_ID_KEY)
        token = request_id_var.set(reference)
        try:
            log.error("unhandled error on %s %s: %s", request.method, route_template(request.scope), type(exc).__name__)
        finally:
            request_id_var.reset(token)
        return problem_response(500, "Internal error", internal_error_detail(reference), instance=request.url.path,
                                headers={"X-Request-ID": reference} if reference else None)
