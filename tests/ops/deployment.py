"""What the image tests share: compose.yaml's environment as compose fills it, and a nurse's pathway through a
served image (`test_image.py` without an engine, `test_docker_image.py` with Docker's)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import yaml

from tests.needs_answers import answers_for

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long passphrase for the image"  # the nurse's, made with `screening users add` in the image


def compose_environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    """A compose service's environment, with its ${NAME}, ${NAME:-default} and ${NAME:?message} filled from
    `variables` as compose fills them from an operator's shell (an unset ":?" fails, as compose refuses to start)."""
    spec = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"][service]["environment"]

    def fill(match: re.Match[str]) -> str:
        name, how, word = match.group(1), match.group(2) or "", match.group(3) or ""
        value = variables.get(name, "")
        if how == ":?" and not value:
            raise AssertionError(f"compose would refuse to start: {word}")
        return value or (word if how == ":-" else "")

    return {name: re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", fill, str(value)) for name, value in spec.items()}


def the_pathway(base: str) -> None:
    """A nurse's screen from opening to the court's PDF, through the model, the routes and WeasyPrint."""
    with httpx.Client(base_url=base, timeout=30) as c:
        token = c.post("/api/v1/auth/token", data={"username": "nurse", "password": PASSWORD})
        assert token.status_code == 200, token.text
        c.headers["authorization"] = f"Bearer {token.json()['access_token']}"
        made = c.post("/api/v1/screens", json={"custody_record": "IMG/1", "date_of_birth": "1990-02-03",
                                               "sex": "female", "custody_suite": "Leeds"})
        assert made.status_code == 201, made.text
        sid = made.json()["id"]
        assert c.put(f"/api/v1/screens/{sid}/consent", json={
            "screening": True, "share_with_health": True, "share_with_court": True,
            "capacity": "has_capacity"}).status_code == 200
        answers = answers_for("mental_health", "substance_misuse", "learning_disability", "housing")
        patched = c.patch(f"/api/v1/screens/{sid}/answers", json={"answers": answers})
        assert patched.status_code == 200 and patched.json()["answers"] == answers
        assessment = c.get(f"/api/v1/screens/{sid}/assessment")
        assert assessment.status_code == 200
        domains = assessment.json()["domains"]
        assert domains and all(0 <= d["probability"] <= 1 for d in domains.values())
        routes = c.get(f"/api/v1/screens/{sid}/recommendations")
        assert routes.status_code == 200
        assert {"learning_disability_team", "drug_alcohol_service"} <= {r["route"] for r in routes.json()}
        assert c.post(f"/api/v1/screens/{sid}/finalise").status_code == 200
        pdf = c.get(f"/api/v1/screens/{sid}/court-report", params={"format": "pdf"})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-"), pdf.text[:500]
        assert c.get(f"/api/v1/screens/{sid}/fhir").json()["resourceType"] == "Bundle"
        assert c.get("/app/", follow_redirects=True).status_code == 200
        metrics = c.get("/metrics").text  # compose sets SCREENING_METRICS_TOKEN to "" unless told: no token
        assert re.search(r'^screening_model_info\{.*version="[^"]+"', metrics, re.M), metrics[:2000]
