"""The web app's pages and assets as plain HTTP: no browser needed."""

from __future__ import annotations

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
