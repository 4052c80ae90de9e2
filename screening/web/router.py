"""HTML pages of the web app. Each page is a shell: the browser fills it from the public JSON API.

Pages carry no personal data when served (the bearer token lives in the browser), so the service worker
may cache them for offline use. Screens are named in the query string (`?id=`) so that one cached shell
serves every screen.
"""

from __future__ import annotations

import json

import jinja2
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from screening.errors import NotFound
from screening.web.pages import PAGES, STATIC_DIR, STATIC_TYPES, TEMPLATES_DIR, Page, shell_version, static_files

# Autoescaping on for every template, whatever its file name.
templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True))

# Security headers (CSP, framing, referrer) come from screening/hardening.py for every answer. Pages are
# always revalidated: the service worker, not the HTTP cache, keeps the offline copy.
PAGE_HEADERS = {"Cache-Control": "no-cache"}

router = APIRouter(prefix="/app", include_in_schema=False)


def _render(request: Request, page: Page, status_code: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, page.template, {"page": page, "pages": PAGES, "shell_version": shell_version()},
        status_code=status_code,
    )
    response.headers.update(PAGE_HEADERS)
    return response


@router.get("", response_class=RedirectResponse)
def app_root() -> RedirectResponse:
    """The app lives under /app/."""
    return RedirectResponse("/app/", status_code=308)


@router.get("/sw.js")
def service_worker() -> Response:
    """The service worker, served from /app/ so that its scope covers every page; stamped with the shell version."""
    shell = [f"/app/{p.path}" for p in PAGES.values() if p.path != "not-found"]
    shell += [f"/app/static/{name}?v={shell_version()}" for name in static_files()]
    source = (STATIC_DIR / "sw.js").read_text(encoding="utf-8")
    source = source.replace("__SHELL_VERSION__", shell_version()).replace('"__SHELL_URLS__"', json.dumps(shell))
    return Response(source, media_type="text/javascript", headers=PAGE_HEADERS)


@router.get("/static/{name}")
def static(name: str) -> Response:
    """A script, style sheet or icon of the app (no CDN: every asset comes from the service)."""
    if name not in static_files():
        raise NotFound("No such file.")
    path = STATIC_DIR / name
    return Response(path.read_bytes(), media_type=STATIC_TYPES[path.suffix], headers=PAGE_HEADERS)


@router.get("/{name:path}", response_class=HTMLResponse)
def page(name: str, request: Request) -> HTMLResponse:
    """One page of the app, by path (e.g. `/app/questions?id=...`)."""
    found = PAGES.get(name.strip("/"))
    if found is None or found.path == "not-found":
        return _render(request, PAGES["not-found"], status_code=404)
    return _render(request, found)
