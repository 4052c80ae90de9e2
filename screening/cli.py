"""The `screening` command: serve, migrate, manage users."""

from __future__ import annotations

import gc
import logging
import logging.config
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

# Imports of the database layer live inside the commands: `screening serve --workers N` imports this
# module in the supervisor and again in every worker it spawns, none of which needs SQLAlchemy for it.
from screening.auth.roles import Role
from screening.config import Settings

app = typer.Typer(help="Liaison and diversion screening service.", no_args_is_help=True)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
routes_app = typer.Typer(help="Diversion route rules and the directory of local services.", no_args_is_help=True)
app.add_typer(routes_app, name="routes")
audit_app = typer.Typer(help="Check the audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
retention_app = typer.Typer(help="Delete personal data past the retention period.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")
models_app = typer.Typer(help="Promote and list decision-support models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console(stderr=True)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from screening.audit.service import Actor


@contextmanager
def database(settings: Settings | None = None) -> Iterator[Session]:
    """One unit of work for a command, on an engine that is disposed of afterwards."""
    from screening.db import make_engine, make_session_factory, unit_of_work

    engine = make_engine(settings or Settings())
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run from several instances at once).

    Logged as the service logs (JSON unless SCREENING_LOG_JSON=false): a failure gives the exception's type and
    frames, not its message, which can quote a row's values, and ends with status 1."""
    from screening.ops.logging import command_logger

    settings = Settings()
    if not _migrated(settings, command_logger("screening.migrate", settings.log_level, settings.log_json)):
        raise typer.Exit(1)


def _migrated(settings: Settings, log: logging.Logger) -> bool:
    """Bring the schema up to date; whether that succeeded (`log` has the reason)."""
    from screening import migrate as m
    from screening.db import make_engine

    try:
        engine = make_engine(settings)
        try:
            m.upgrade(engine)
        finally:
            engine.dispose()
    except Exception:
        log.exception("the database schema could not be brought up to date")
        return False
    log.info("database schema is up to date")
    return True


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="SCREENING_HOST", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SCREENING_PORT", help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, envvar="SCREENING_WORKERS", help="Worker processes.")] = 1,
) -> None:
    """Run the service (migrating the database first unless SCREENING_MIGRATE_ON_START=false).

    One worker runs in this process; several run under gunicorn's arbiter, forked after the app is imported
    (screening.ops.server)."""
    # Importing the app builds ~120k long-lived objects; the collector walked them all twice on the way
    # (0.1-0.2 s of a 1.2 s start). Switched off until they are built, then frozen (screening.ops.built_app).
    gc.disable()
    # Before anything imports prometheus_client (screening.ops does): it picks its multi-process mode at
    # import, and with several workers it is imported once, in gunicorn's arbiter, before the fork.
    if workers > 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _prepare_multiprocess_metrics()
    from screening.ops.logging import log_config

    settings = Settings()
    logs = log_config(settings.log_level, settings.log_json)
    if settings.migrate_on_start:
        # Logged as the server will log, so that every line the service writes is JSON (uvicorn and gunicorn
        # apply the same configuration again).
        logging.config.dictConfig(logs)
        if not _migrated(settings, logging.getLogger("screening.migrate")):
            # Ended as the app's own failed start-up is (uvicorn's status, which gunicorn's arbiter shares).
            from uvicorn.config import STARTUP_FAILURE

            raise typer.Exit(STARTUP_FAILURE)
    if workers > 1:
        from screening.ops import server

        server.run(host, port, workers, logs)
        return
    import uvicorn

    from screening.ops import built_app
    from screening.ops.protocol import UVICORN_OPTIONS

    uvicorn.run(built_app(), host=host, port=port, log_config=logs, proxy_headers=True, **UVICORN_OPTIONS)


def _prepare_multiprocess_metrics() -> None:
    """Workers share Prometheus samples through files; stale files from an earlier run would add up."""
    import shutil
    import tempfile

    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        directory = Path(configured)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="screening-metrics-")


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[Role, typer.Option("--role", help="nurse, court, data_scientist, admin or commissioner.")],
    password: Annotated[str, typer.Option("--password", help="At least 12 characters.")],
    suite: Annotated[list[str] | None, typer.Option("--suite", help="Custody suite (repeatable); nurses need one.")] = None,
    full_name: Annotated[str, typer.Option("--full-name", help="Name shown on reports.")] = "",
) -> None:
    """Create a user account."""
    from screening.auth.service import AccountError, create_user

    try:
        with database() as session:
            user = create_user(session, username, password, role, full_name=full_name, custody_suites=suite or [])
            console.print(f"created {role.value} {user.username} (id {user.id})")
    except AccountError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


@routes_app.command("check")
def routes_check() -> None:
    """Validate the route rules and service directory in force (SCREENING_ROUTES_DIR) and print their versions."""
    from screening.instruments.registry import load_registry
    from screening.routes.rulebook import RulebookError, load_rulebook

    settings = Settings()
    try:
        book = load_rulebook(load_registry(settings.instruments_dir), settings.routes_dir)
    except RulebookError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    print(f"rules {book.rules_version} sha256 {book.rules_sha256}: "
          f"{len(book.rules.rules)} rules, {len(book.rules.routes)} routes, {len(book.rules.needs)} need domains")
    print(f"directory {book.directory_version} sha256 {book.directory_sha256}: "
          f"{sum(len(v) for v in book.directory.services.values())} services")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable an account: sign-in is refused and every token it holds stops working at once."""
    from sqlalchemy import select

    from screening.auth.models import User
    from screening.auth.service import set_active

    with database() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            console.print(f"[red]error:[/red] no user {username}")
            raise typer.Exit(2)
        set_active(session, user, False, audit_actor())
        console.print(f"disabled {username}; their tokens no longer work")


def audit_actor() -> Actor:
    """CLI actions are audited under the operating-system user who ran them."""
    import getpass

    from screening.audit.service import Actor

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(id=None, username=f"cli:{who}"[:64], role="system")


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain: exit 0 if intact, 1 naming the first bad entry otherwise."""
    from screening.audit.service import verify_chain

    with database() as session:
        result = verify_chain(session)
    if result.ok:
        typer.echo(f"audit trail intact: {result.checked} entries checked")
        return
    typer.echo(f"audit trail BROKEN at entry {result.first_bad_id}: {result.reason}", err=True)
    raise typer.Exit(1)


@retention_app.command("purge")
def retention_purge(
    older_than: Annotated[int | None, typer.Option("--older-than", min=1, help="Days; default SCREENING_RETENTION_DAYS.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete screens (and what hangs off them) older than the retention period; keep monthly counts. Audited."""
    from screening.retention.service import purge

    settings = Settings()
    days = older_than if older_than is not None else settings.retention_days
    with database(settings) as session:
        result = purge(session, settings, days, dry_run=dry_run, actor=audit_actor())
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb} {result.screens} screens older than {days} days")


@app.command("fhir-example")
def fhir_example() -> None:
    """Print the example FHIR Bundle shown in the README (FHIR section) (made-up answers, pseudonymised)."""
    from screening.fhir.example import example_bundle

    print(example_bundle())


@models_app.command("promote")
def models_promote(
    path: Annotated[Path, typer.Argument(help="Artifact folder written by `python -m training train`.")],
) -> None:
    """Verify a model artifact, copy it under the data folder and into the database, and make it the active model.

    Running instances pick it up at their next start.
    """
    from screening.model.exceptions import ModelMismatchError
    from screening.model.promotion import promote

    settings = Settings()
    try:
        with database(settings) as session:
            row = promote(session, settings, path, promoted_by=audit_actor().username)
            console.print(f"promoted model {row.version} (sha256 {row.sha256[:12]}) from {path}")
    except ModelMismatchError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


@models_app.command("list")
def models_list() -> None:
    """Promoted models, newest first, with the active one marked."""
    from screening.model.promotion import list_versions, stored_versions

    with database() as session:
        stored = stored_versions(session)
        for v in list_versions(session):
            mark = "*" if v.active else " "
            # Promoted before migration 0008: an instance can serve it only from a data folder that holds it.
            where = "" if v.id in stored else f"  (files in {v.path} of one data folder only: promote it again)"
            typer.echo(f"{mark} {v.version}  sha256 {v.sha256[:12]}  {v.promoted_at:%Y-%m-%d %H:%M} {v.promoted_by}"
                       f"{where}")


if __name__ == "__main__":
    app()
