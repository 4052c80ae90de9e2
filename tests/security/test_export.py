"""The pseudonymised training export: who may download it, what it holds and never holds, linkage."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Boolean, Column, Engine, Integer, MetaData, String, Table, Text, select
from sqlalchemy.orm import Session

from screening.audit.models import AuditEntry
from screening.auth.models import Role
from screening.exports import linked
from screening.exports import service as export_service
from screening.exports.columns import FORBIDDEN_COLUMNS, OUTCOMES, age_band
from screening.instruments.registry import load_registry
from screening.screens.models import Screen
from tests.factories import answer, create_screen, give_consent, headers_for, make_user

PROBLEM = "application/problem+json"
URL = "/api/v1/exports/training-data"
PHQ9 = {f"phq9_{i}": 2 for i in range(1, 10)}  # total 18: moderately severe, positive


def _final(client: TestClient, h: dict[str, str], answers: dict[str, Any], **kw: Any) -> dict[str, Any]:
    s = create_screen(client, h, **kw)
    give_consent(client, h, s["id"])
    answer(client, h, s["id"], answers)
    r = client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h)
    assert r.status_code == 200, r.text
    return s


def _population(client: TestClient, session: Session) -> dict[str, Any]:
    h = headers_for(client, make_user(session))
    same = [_final(client, h, PHQ9, person_ref="PNC 12/345678A", custody_record="CR/77001/26",
                   date_of_birth="1999-03-04", ethnicity="White British"),
            _final(client, h, {"phq9_1": 0, "risk_plan": True}, person_ref="pnc12345678a", custody_record="CR/77002/26",
                   date_of_birth="1999-03-04")]
    alone = _final(client, h, {"audit_1": 4}, custody_record="CR/77003/26", date_of_birth="1960-01-01")
    draft = create_screen(client, h, custody_record="CR/77004/26")
    return {"same": same, "alone": alone, "draft": draft}


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


class TestTrainingDataExport:
    def test_without_token_is_401(self, client: TestClient) -> None:
        r = client.get(URL)
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM

    def test_nurse_and_admin_are_403(self, client: TestClient, session: Session) -> None:
        for role in (Role.nurse, Role.admin, Role.court):
            assert client.get(URL, headers=headers_for(client, make_user(session, role))).status_code == 403

    def test_unknown_format_is_422(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session, Role.data_scientist))
        r = client.get(URL, params={"format": "xlsx"}, headers=h)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "format"

    def test_csv_holds_final_screens_pseudonymised(self, client: TestClient, session: Session) -> None:
        pop = _population(client, session)
        h = headers_for(client, make_user(session, Role.data_scientist))
        r = client.get(URL, params={"format": "csv"}, headers=h)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        rows = _csv_rows(r.text)
        assert len(rows) == 3  # the draft is not exported
        header = list(rows[0])
        assert not FORBIDDEN_COLUMNS & set(header)
        assert {"person_id", "month", "age_band", "sex", "ethnicity", "custody_suite", "phq9_1", "risk_plan",
                "phq9_total", "phq9_positive", *OUTCOMES} <= set(header)
        # No direct identifier anywhere in the file, in any column.
        for secret in ("CR/7700", "PNC", "12345678", "1999-03-04", "1960-01-01", pop["draft"]["id"],
                       *(s["id"] for s in pop["same"])):
            assert secret not in r.text, secret
        session.rollback()
        stored = set(session.scalars(select(Screen.person_hash).where(Screen.person_hash.is_not(None))))
        session.rollback()
        linked = [row for row in rows if row["ethnicity"] == "White British" or row["phq9_1"] == "0"]
        assert len(linked) == 2
        assert linked[0]["person_id"] == linked[1]["person_id"]  # repeat contacts still link...
        assert linked[0]["person_id"] not in stored  # ...under an id different from the stored hash
        assert len({row["person_id"] for row in rows}) == 2
        full = next(row for row in rows if row["ethnicity"] == "White British")
        assert (full["phq9_total"], full["phq9_positive"], full["phq9_9"]) == ("18", "1", "2")
        assert full["month"] == pop["same"][0]["created_at"][:7]
        assert full["age_band"] == age_band(date(1999, 3, 4), date.fromisoformat(pop["same"][0]["created_at"][:10]))
        partial = next(row for row in rows if row["phq9_1"] == "0")
        assert (partial["risk_plan"], partial["phq9_2"], partial["phq9_total"]) == ("1", "", "")
        assert all(row[o] == "" for row in rows for o in OUTCOMES)

    def test_parquet_has_the_same_columns_typed(self, client: TestClient, session: Session) -> None:
        _population(client, session)
        h = headers_for(client, make_user(session, Role.data_scientist))
        csv_header = list(_csv_rows(client.get(URL, headers=h).text)[0])
        r = client.get(URL, params={"format": "parquet"}, headers=h)
        assert r.status_code == 200
        table = pq.read_table(io.BytesIO(r.content))
        assert table.num_rows == 3
        assert table.column_names == csv_header
        assert str(table.schema.field("phq9_total").type) == "int64"
        assert sorted(v for v in table.column("phq9_total").to_pylist() if v is not None) == [18]

    def test_every_export_is_audited(self, client: TestClient, session: Session) -> None:
        _population(client, session)
        ds = make_user(session, Role.data_scientist)
        h = headers_for(client, ds)
        client.get(URL, params={"format": "parquet"}, headers=h)
        session.rollback()
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "export.training_data")).one()
        session.rollback()
        assert (entry.actor, entry.role) == (ds.username, "data_scientist")
        assert entry.detail == {"format": "parquet", "rows": 3}

    def test_empty_database_gives_a_header_only(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session, Role.data_scientist))
        assert len(client.get(URL, headers=h).text.strip().splitlines()) == 1
        table = pq.read_table(io.BytesIO(client.get(URL, params={"format": "parquet"}, headers=h).content))
        assert table.num_rows == 0


def test_rows_are_streamed_batch_by_batch(client: TestClient, session: Session, monkeypatch: Any) -> None:
    h = headers_for(client, make_user(session))
    for _ in range(3):
        _final(client, h, {"phq9_1": 1})
    monkeypatch.setattr(export_service, "BATCH", 1)
    chunks = export_service.stream(export_service.ExportFormat.csv, client.app.state.session_factory,  # type: ignore[attr-defined]
                                   load_registry(), "key")
    assert not isinstance(chunks, (bytes, str, list))  # lazy: nothing read until iterated
    parts = list(chunks)
    assert len(parts) == 3  # one chunk per batch, header riding with the first
    assert b"".join(parts).count(b"\n") == 4


class TestLinkedDomains:
    """Model outputs and practitioner decisions join the export once those domains' tables exist."""

    def test_latest_need_decision_is_the_outcome(self) -> None:
        rows = [{"id": 1, "screen_id": "a", "domain": "mental_health", "need": False, "proposed": True},
                {"id": 2, "screen_id": "a", "domain": "mental_health", "need": True, "proposed": True},
                {"id": 3, "screen_id": "a", "domain": "housing", "need": True, "proposed": False},
                {"id": 4, "screen_id": "b", "domain": "substance_misuse", "need": False, "proposed": True}]
        out = linked.need_columns(rows)
        assert out["a"] == {"outcome_mental_health": 1, "override_mental_health": 0}
        assert out["b"] == {"outcome_substance_misuse": 0, "override_substance_misuse": 1}

    def test_latest_assessment_gives_model_columns(self) -> None:
        rows = [{"id": 1, "screen_id": "a", "model_version": "v1", "result": {"mental_health": {"probability": 0.2}}},
                {"id": 2, "screen_id": "a", "model_version": "v2", "result": {"mental_health": {"probability": 0.7}}}]
        out = linked.assessment_columns(rows)["a"]
        assert out["model_version"] == "v2"
        assert out["model_mental_health_probability"] == 0.7
        assert out["model_learning_disability_probability"] is None

    def test_a_deployed_decisions_table_fills_the_outcome_columns(
        self, client: TestClient, session: Session, engine: Engine, monkeypatch: Any
    ) -> None:
        h = headers_for(client, make_user(session))
        s = _final(client, h, {"phq9_1": 1})
        other = _final(client, h, {"phq9_1": 2})
        # A stand-in for the routes domain's table, under a name of its own so it never meets the real one.
        meta = MetaData()
        table = Table("export_test_need_decisions", meta, Column("id", Integer, primary_key=True),
                      Column("screen_id", String(36)), Column("domain", String(64)), Column("need", Boolean),
                      Column("proposed", Boolean), Column("note", Text))
        meta.create_all(engine)
        try:
            with engine.begin() as conn:
                conn.execute(table.insert(), [
                    {"screen_id": s["id"], "domain": "learning_disability", "need": True, "proposed": False,
                     "note": "FREE TEXT NEVER EXPORTED"}])
            sources = [("export_test_need_decisions", {"id", "screen_id", "domain", "need", "proposed"},
                        linked.need_columns)]
            monkeypatch.setattr(linked, "SOURCES", sources)
            r = client.get(URL, headers=headers_for(client, make_user(session, Role.data_scientist)))
        finally:
            meta.drop_all(engine)
        assert "FREE TEXT" not in r.text
        rows = {row["phq9_1"]: row for row in _csv_rows(r.text)}
        assert (rows["1"]["outcome_learning_disability"], rows["1"]["override_learning_disability"]) == ("1", "1")
        assert rows["1"]["outcome_mental_health"] == ""
        assert rows["2"]["outcome_learning_disability"] == ""
        assert other["id"] not in r.text


def test_a_paused_download_does_not_block_nurses(client: TestClient, session: Session, monkeypatch: Any) -> None:
    h = headers_for(client, make_user(session))
    for _ in range(2):
        _final(client, h, {"phq9_1": 1})
    draft = create_screen(client, h)
    give_consent(client, h, draft["id"])
    monkeypatch.setattr(export_service, "BATCH", 1)
    chunks = export_service.stream(export_service.ExportFormat.csv, client.app.state.session_factory,  # type: ignore[attr-defined]
                                   load_registry(), "key")
    next(chunks)  # the client has read one batch and stalls
    try:
        r = client.patch(f"/api/v1/screens/{draft['id']}/answers", json={"answers": {"phq9_1": 3}}, headers=h)
        assert r.status_code == 200, r.text
    finally:
        rest = list(chunks)
    assert len(rest) == 1


def test_model_assessments_appear_in_the_export(client: TestClient, session: Session) -> None:
    h = headers_for(client, make_user(session))
    s = create_screen(client, h)
    give_consent(client, h, s["id"])
    answer(client, h, s["id"], PHQ9)
    assessed = client.get(f"/api/v1/screens/{s['id']}/assessment", headers=h)
    assert assessed.status_code == 200, assessed.text
    assert client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h).status_code == 200
    r = client.get(URL, headers=headers_for(client, make_user(session, Role.data_scientist)))
    row = _csv_rows(r.text)[0]
    body = assessed.json()
    assert row["model_version"] == body["model"]["version"]
    for domain in ("mental_health", "learning_disability", "substance_misuse"):
        assert float(row[f"model_{domain}_probability"]) == pytest.approx(body["domains"][domain]["probability"])


@pytest.mark.parametrize(("dob", "age", "band"), [
    ("2009-01-02", 16, "under 18"), ("2008-01-01", 18, "18-25"), ("2000-01-02", 25, "18-25"),
    ("2000-01-01", 26, "26-40"), ("1985-01-02", 40, "26-40"), ("1985-01-01", 41, "41-55"), ("1970-01-01", 56, "56+"),
])
def test_age_bands_match_the_training_pipeline(dob: str, age: int, band: str) -> None:
    from training.data import age_band as pipeline_band

    assert age_band(date.fromisoformat(dob), date(2026, 1, 1)) == band
    assert pipeline_band(float(age)) == band


# pandas warns that adding `age` to a wide Parquet frame is slow; harmless at export sizes.
@pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")
def test_the_training_pipeline_reads_the_export(client: TestClient, session: Session, tmp_path: Path) -> None:
    from training.data import load_export

    _population(client, session)
    h = headers_for(client, make_user(session, Role.data_scientist))
    for fmt in ("csv", "parquet"):
        path = tmp_path / f"training-data.{fmt}"
        path.write_bytes(client.get(URL, params={"format": fmt}, headers=h).content)
        df = load_export(path)  # raises DataError on a missing column or an unreadable age band
        assert len(df) == 3
        assert df["age"].notna().all()
