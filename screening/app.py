"""The application factory: `create_app(settings)` builds everything from one Settings object."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import anyio
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from screening import fastlane, migrate, ops
from screening.audit import service as audit
from screening.audit.router import router as audit_router
from screening.auth.router import router as auth_router
from screening.config import Settings
from screening.contacts.router import router as contacts_router
from screening.db import make_engine, make_session_factory
from screening.driver import hot_database
from screening.errors import install_handlers
from screening.exports.router import router as exports_router
from screening.fhir.router import router as fhir_router
from screening.hardening import install_hardening
from screening.insights.router import pages as insights_pages
from screening.insights.router import router as insights_router
from screening.instruments.registry import load_registry
from screening.instruments.router import router as instruments_router
from screening.log_redaction import Reason
from screening.model.promotion import load_active
from screening.model.router import get_assessment
from screening.model.router import router as models_router
from screening.model.router import screens_router as assessment_router
from screening.reports.router import router as reports_router
from screening.routes.router import catalogue_router as routes_catalogue_router
from screening.routes.router import router as routes_router
from screening.routes.rulebook import load_rulebook
from screening.screens.router import get_screen, patch_answers
from screening.screens.router import router as screens_router
from screening.users.router import router as users_router
from screening.web.reports.router import router as court_reports_router
from screening.web.router import router as web_router

try:
    __version__ = version("screening")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"


class Health(BaseModel):
    status: str
    version: str


log = logging.getLogger("screening.app")


class NotMigrated(Reason, RuntimeError):
    """The database's schema is not the one this code was written for."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with serving(app):
                yield
        except Exception as exc:
            # Logged here, as the service logs any exception (its type and frames), with a Reason's own words: uvicorn
            # logs a failed lifespan as the traceback's text, every message in it, which its log filter withholds
            # (screening.ops.logging.TracebackText).
            log.error(str(exc) if isinstance(exc, Reason) else "the service failed to start or to stop", exc_info=True)
            raise

    @asynccontextmanager
    async def serving(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        if migrate.current_heads(engine) != migrate.script_heads():
            engine.dispose()
            raise NotMigrated("The database schema is not up to date: run `screening migrate` first.")
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        # Threads that would only queue for SQLite's write lock or for the GIL cost CPU in lock hand-offs:
        # with 16 tablets on one worker, letting every request into a thread made each cost 60% more.
        concurrency = settings.db_concurrency or (1 if engine.dialect.name == "sqlite" else 4)
        app.state.db_limiter = anyio.CapacityLimiter(concurrency)
        # The tablet's hot routes work at driver level (screening.driver); their audit entries are chained
        # by the audit module's hook, as the ORM's are by its before_commit listener.
        app.state.hot = hot_database(engine, audit.write_hot, pool_size=concurrency)
        app.state.registry = load_registry(settings.instruments_dir)
        app.state.rulebook = load_rulebook(app.state.registry, settings.routes_dir)
        try:
            # A model that fails verification stops start-up with the reason, never serves quietly.
            app.state.model, app.state.model_source = load_active(settings, app.state.session_factory)
            await app.state.hot.open()
        except Exception:
            await app.state.hot.close()
            engine.dispose()
            raise
        try:
            yield
        finally:
            await app.state.hot.close()
            engine.dispose()

    app = FastAPI(
        title="Liaison and diversion screening service",
        version=__version__,
        description="Screens people in police custody for mental health, learning disability and substance needs, "
        "and recommends diversion routes.",
        lifespan=lifespan,
        # The service's metrics are Prometheus (screening.ops) and it configures no OpenTelemetry; left on,
        # FastAPI's native telemetry looked up the global OpenTelemetry providers on every request (about 5%
        # of a screen read's CPU here). A site that adds OpenTelemetry can turn it back on here.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_handlers(app, postgresql=make_url(settings.sqlalchemy_url).get_backend_name() == "postgresql")
    install_hardening(app, settings)

    @app.get("/health", response_model=Health, tags=["health"])
    def health() -> Health:
        """Liveness: the process answers. No token needed."""
        return Health(status="ok", version=__version__)

    # Requests are matched against routers in this order, route by route: the routes a tablet calls on
    # every tap come first (matching down to the 14th router had cost ~0.1 ms of CPU per request).
    app.include_router(screens_router)
    app.include_router(assessment_router)
    app.include_router(routes_router)
    app.include_router(contacts_router)
    app.include_router(auth_router)
    app.include_router(instruments_router)
    app.include_router(insights_router)
    app.include_router(insights_pages)
    app.include_router(routes_catalogue_router)
    app.include_router(reports_router)
    app.include_router(audit_router)
    app.include_router(users_router)
    app.include_router(exports_router)
    app.include_router(fhir_router)
    app.include_router(models_router)
    app.include_router(court_reports_router)
    app.include_router(web_router)
    ops.install(app, settings)
    # The three commonest taps skip FastAPI's per-request matching and dependency solving (screening.fastlane).
    fastlane.install(app, [get_screen, patch_answers, get_assessment])
    return app
