"""The web app's pages and assets as plain HTTP: no browser needed."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient


class TestWebPages:
    def test_pages_are_served_with_a_strict_policy(self, client: TestClient) -> None:
        r = client.get("/app/signin")
        assert r.status_code == 200
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert '<label class="label" for="username">' in r.text

    def test_unknown_page_is_404(self, client: TestClient) -> None:
        assert client.get("/app/no-such-page").status_code == 404

    def test_only_listed_static_files_are_served(self, client: TestClient) -> None:
        assert client.get("/app/static/app.js").status_code == 200
        assert client.get("/app/static/pages.py").status_code == 404

    def test_service_worker_lists_the_shell(self, client: TestClient) -> None:
        r = client.get("/app/sw.js")
        assert r.headers["content-type"].startswith("text/javascript")
        assert "__SHELL_URLS__" not in r.text and '"/app/questions"' in r.text


class _Forms(HTMLParser):
    """The forms of a page, with their method and whether each submit button is disabled."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"id": a.get("id"), "method": a.get("method"), "submits": []})
        elif tag == "button" and a.get("type") == "submit" and self.forms:
            submits = self.forms[-1]["submits"]
            assert isinstance(submits, list)
            submits.append("disabled" in a)


@pytest.mark.parametrize("path", ["/app/signin", "/app/new", "/app/consent", "/app/insights"])
def test_a_form_cannot_be_submitted_before_its_script_handles_it(client: TestClient, path: str) -> None:
    """Submit buttons come disabled (the page's script enables them as it attaches its handler, LD.handleSubmit),
    and the form's method is POST: a tap before the script has run can never put a password, a custody record
    or a date of birth into a URL, where browser history and proxy logs would keep it."""
    r = client.get(path)
    assert r.status_code == 200
    parser = _Forms()
    parser.feed(r.text)
    assert parser.forms, f"{path} has no form"
    for form in parser.forms:
        assert form["method"] == "post", form
        assert form["submits"] and all(form["submits"]), form  # type: ignore[arg-type]
