"""The app's pages as data: path, template, title and who it is for."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"


@dataclass(frozen=True)
class Page:
    path: str
    template: str
    title: str
    script: str | None = None


PAGES: dict[str, Page] = {
    p.path: p
    for p in (
        Page("", "screens.html", "Today's screens", "screens"),
        Page("signin", "signin.html", "Sign in", "signin"),
        Page("new", "new_screen.html", "Open a new screen", "new"),
        Page("consent", "consent.html", "Consent and capacity", "consent"),
        Page("questions", "questions.html", "Screening questions", "questions"),
        Page("assessment", "assessment.html", "Assessment", "assessment"),
        Page("court", "court.html", "Reports shared with the court", "court"),
        Page("report", "report.html", "Court information report", "report"),
        Page("insights", "insights.html", "Commissioners' dashboard", "insights"),
        Page("not-found", "not_found.html", "Page not found"),
    )
}


@cache
def shell_version() -> str:
    """A hash of every page template and static file: a new release makes the service worker fetch a fresh shell."""
    digest = hashlib.sha256()
    for path in sorted([*STATIC_DIR.rglob("*"), *TEMPLATES_DIR.rglob("*")]):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml", ".png": "image/png",
                ".json": "application/manifest+json"}


def static_files() -> list[str]:
    """Names of the files under static/ (flat), for the service worker's app-shell cache."""
    return sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file() and p.suffix in STATIC_TYPES)
