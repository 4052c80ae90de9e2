"""The model in the service: assessment endpoint, model listing, start-up verification, promotion."""

from __future__ import annotations

import json
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from screening.app import create_app
from screening.audit.models import AuditEntry
from screening.auth.models import Role
from screening.cli import app as cli
from screening.config import Settings
from screening.db import make_engine, make_session_factory, unit_of_work
from screening.model import promotion
from screening.model.exceptions import ModelMismatchError
from screening.model.models import Assessment, ModelFile, ModelVersion
from screening.model.promotion import SHIPPED_MODEL_DIR, load_active, promote
from tests.conftest import _migrate
from tests.factories import answer, create_screen, give_consent, headers_for, make_user

PROBLEM = "application/problem+json"
SHIPPED = json.loads((SHIPPED_MODEL_DIR / "manifest.json").read_text())
PHQ9_SEVERE = {f"phq9_{i}": 3 for i in range(1, 10)}


def _screen_with_answers(client: TestClient, headers: dict[str, str], answers: dict[str, Any]) -> str:
    s = create_screen(client, headers, sex="female", ethnicity="Black British")
    give_consent(client, headers, s["id"])
    answer(client, headers, s["id"], answers)
    return str(s["id"])


class TestAssessment:
    def test_without_token_is_401(self, client: TestClient) -> None:
        r = client.get("/api/v1/screens/nope/assessment")
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM

    def test_court_role_is_403(self, client: TestClient, session: Session) -> None:
        nurse, court = make_user(session), make_user(session, Role.court)
        sid = _screen_with_answers(client, headers_for(client, nurse), {"bjmhs_8": True})
        r = client.get(f"/api/v1/screens/{sid}/assessment", headers=headers_for(client, court))
        assert r.status_code == 403

    def test_nurse_of_another_suite_is_403(self, client: TestClient, session: Session) -> None:
        nurse, other = make_user(session), make_user(session, suites=["Elland Road"])
        sid = _screen_with_answers(client, headers_for(client, nurse), {"bjmhs_8": True})
        assert client.get(f"/api/v1/screens/{sid}/assessment", headers=headers_for(client, other)).status_code == 403

    def test_unknown_screen_is_404(self, client: TestClient, session: Session) -> None:
        r = client.get("/api/v1/screens/does-not-exist/assessment", headers=headers_for(client, make_user(session)))
        assert r.status_code == 404
        assert r.headers["content-type"] == PROBLEM

    def test_pinned_shape_explanation_and_recorded_model(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = _screen_with_answers(client, h, PHQ9_SEVERE | {"bjmhs_8": True, "audit_1": 0, "audit_2": 0, "audit_3": 0})
        r = client.get(f"/api/v1/screens/{sid}/assessment", headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"]["version"] == SHIPPED["version"]
        assert set(body["domains"]) == {"mental_health", "learning_disability", "substance_misuse"}
        mh = body["domains"]["mental_health"]
        assert set(mh) == {
            "probability", "raw_score", "base_value", "threshold", "needs_assessment", "contributions", "missing",
            "answered",
        }
        assert mh["answered"] == 10 and body["domains"]["learning_disability"]["answered"] == 0
        assert mh["needs_assessment"] is True
        assert abs(mh["base_value"] + sum(c["contribution"] for c in mh["contributions"]) - mh["raw_score"]) <= 1e-6
        hosp = next(c for c in mh["contributions"] if c["feature"] == "bjmhs_8")
        assert hosp["value"] == "yes" and hosp["contribution"] > 0
        assert any(m["item"] == "gad7_1" for m in mh["missing"])
        assert not any(m["item"] == "audit_4" for m in body["domains"]["substance_misuse"]["missing"])
        assert {s["instrument_id"] for s in body["instruments"]} >= {"phq9", "auditc"}
        session.rollback()
        rows = session.scalars(select(Assessment).where(Assessment.screen_id == sid)).all()
        assert [(a.model_version, a.model_sha256) for a in rows] == [(SHIPPED["version"], body["model"]["sha256"])]
        assert rows[0].result["mental_health"]["needs_assessment"] is True
        # The recorded result (written as JSON text encoded once per view) reads back as what was shown.
        assert rows[0].result == {d: {k: a[k] for k in ("probability", "threshold", "needs_assessment")}
                                  for d, a in body["domains"].items()}

    def test_a_result_is_recorded_when_it_differs_from_the_screens_last_record(
        self, client: TestClient, session: Session
    ) -> None:
        """Shown again unchanged, an assessment is audited but not recorded again; a changed result is, and so is a
        return to an earlier one, so the last record before any showing is what that showing said."""
        nurse = make_user(session)
        h = headers_for(client, nurse)
        sid = _screen_with_answers(client, h, {"phq9_1": 0})
        url = f"/api/v1/screens/{sid}/assessment"

        def shown() -> float:
            r = client.get(url, headers=h)
            assert r.status_code == 200, r.text
            return float(r.json()["domains"]["mental_health"]["probability"])

        def recorded() -> list[float]:
            session.rollback()
            rows = session.scalars(select(Assessment).where(Assessment.screen_id == sid).order_by(Assessment.id))
            said = [a.result["mental_health"]["probability"] for a in rows]
            session.rollback()  # on SQLite a transaction holds the writer lock, which the PATCHes need
            return said

        first = [shown() for _ in range(3)]
        assert recorded() == first[:1]
        answer(client, h, sid, PHQ9_SEVERE)
        second = shown()
        assert second != first[0]
        shown()
        assert recorded() == [first[0], second]
        answer(client, h, sid, {f"phq9_{i}": None for i in range(2, 10)} | {"phq9_1": 0})
        assert shown() == first[0]
        assert recorded() == [first[0], second, first[0]]
        audited = session.scalars(select(AuditEntry.id).where(AuditEntry.action == "screen.assessment",
                                                              AuditEntry.record_id == sid)).all()
        assert len(audited) == 6  # every showing
        assert session.scalars(select(Assessment.assessed_by_id).where(Assessment.screen_id == sid)).all() == [nurse.id] * 3

    def test_ethnicity_does_not_change_the_assessment(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        answers = {"phq9_1": 2, "ldc_special_school": True, "dast10_1": True}
        results = []
        for ethnicity in ("White British", "Black British"):
            s = create_screen(client, h, ethnicity=ethnicity, date_of_birth="1990-01-01")
            give_consent(client, h, s["id"])
            answer(client, h, s["id"], answers)
            results.append(client.get(f"/api/v1/screens/{s['id']}/assessment", headers=h).json()["domains"])
        assert results[0] == results[1]


class TestModels:
    def test_without_token_is_401(self, client: TestClient) -> None:
        assert client.get("/api/v1/models").status_code == 401
        assert client.get("/api/v1/models/active").status_code == 401

    def test_active_is_the_shipped_default_until_one_is_promoted(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session, Role.data_scientist))
        r = client.get("/api/v1/models/active", headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["version"], body["source"]) == (SHIPPED["version"], "shipped")
        assert body["metrics"]["mental_health"]["auroc"] == SHIPPED["metrics"]["mental_health"]["auroc"]
        assert client.get("/api/v1/models", headers=h).json() == []

    def test_promoted_model_is_listed_and_served_after_restart(
        self, settings: Settings, client: TestClient, session: Session
    ) -> None:
        promote(session, settings, SHIPPED_MODEL_DIR, promoted_by="test")
        session.commit()
        assert (settings.data_dir / "models" / SHIPPED["version"] / "manifest.json").is_file()
        h = headers_for(client, make_user(session, Role.admin))
        listed = client.get("/api/v1/models", headers=h).json()
        assert [(m["version"], m["active"]) for m in listed] == [(SHIPPED["version"], True)]
        with TestClient(create_app(settings)) as restarted:
            assert restarted.get("/api/v1/models/active", headers=h).json()["source"] == "promoted"


class TestPromotedAcrossInstances:
    """Instances share the database and nothing else: each serves the promoted model from its own data folder,
    written out from the database's copy (screening.model.promotion)."""

    @pytest.fixture
    def promoted(self, settings: Settings, session: Session) -> ModelVersion:
        row = promote(session, settings, SHIPPED_MODEL_DIR, promoted_by="test")
        session.commit()
        return row

    @staticmethod
    def _another_instance(settings: Settings, tmp_path: Path) -> Settings:
        return settings.model_copy(update={"data_dir": tmp_path / "another-instance"})

    @staticmethod
    def _copy_of(settings: Settings) -> Path:
        return settings.data_dir / "models" / SHIPPED["version"]

    def test_promotion_keeps_the_artifact_in_the_database(self, promoted: ModelVersion, session: Session) -> None:
        stored = dict(session.execute(select(ModelFile.name, ModelFile.content)
                                      .where(ModelFile.model_version_id == promoted.id)).tuples().all())
        assert stored == {p.name: p.read_bytes() for p in SHIPPED_MODEL_DIR.iterdir() if p.is_file()}

    def test_an_instance_with_a_data_folder_of_its_own_serves_the_promoted_model(
        self, settings: Settings, promoted: ModelVersion, session: Session, tmp_path: Path
    ) -> None:
        other = self._another_instance(settings, tmp_path)
        with TestClient(create_app(other)) as instance:
            h = headers_for(instance, make_user(session, Role.data_scientist))
            body = instance.get("/api/v1/models/active", headers=h).json()
            assert (body["version"], body["source"]) == (SHIPPED["version"], "promoted")
            assert instance.app.state.model.path == self._copy_of(other)  # type: ignore[attr-defined]
        assert {p.name: p.read_bytes() for p in self._copy_of(other).iterdir()} == {
            p.name: p.read_bytes() for p in SHIPPED_MODEL_DIR.iterdir() if p.is_file()}

    def test_a_copy_changed_on_disk_is_written_out_again(self, settings: Settings, promoted: ModelVersion) -> None:
        changed = self._copy_of(settings) / "substance_misuse.onnx"
        with changed.open("ab") as f:
            f.write(b"\0")
        with TestClient(create_app(settings)) as instance:
            assert instance.app.state.model_source == "promoted"  # type: ignore[attr-defined]
        assert changed.read_bytes() == (SHIPPED_MODEL_DIR / "substance_misuse.onnx").read_bytes()

    def test_a_database_copy_that_does_not_verify_stops_start_up_and_leaves_nothing(
        self, settings: Settings, promoted: ModelVersion, session: Session, tmp_path: Path
    ) -> None:
        onnx = (SHIPPED_MODEL_DIR / "substance_misuse.onnx").read_bytes()
        session.execute(update(ModelFile).where(ModelFile.model_version_id == promoted.id,
                                                ModelFile.name == "substance_misuse.onnx").values(content=onnx + b"\0"))
        session.commit()
        other = self._another_instance(settings, tmp_path)
        with pytest.raises(ModelMismatchError, match=r"promoted model: the database's copy of .* sha256 of "
                                                     r"substance_misuse\.onnx"):
            with TestClient(create_app(other)):
                pass
        assert [p.name for p in (other.data_dir / "models").iterdir()] == [".lock"]

    def test_workers_starting_at_once_write_one_copy_and_serve_it(
        self, settings: Settings, promoted: ModelVersion, engine: Any, tmp_path: Path
    ) -> None:
        other = self._another_instance(settings, tmp_path)
        factory = make_session_factory(engine)
        with ThreadPoolExecutor(4) as pool:
            loaded = list(pool.map(lambda _: load_active(other, factory), range(4)))
        assert {(bundle.sha256, source) for bundle, source in loaded} == {(promoted.sha256, "promoted")}
        assert sorted(p.name for p in (other.data_dir / "models").iterdir()) == [".lock", SHIPPED["version"]]

    def test_a_model_promoted_before_its_files_were_kept_is_read_from_the_data_folder_until_promoted_again(
        self, settings: Settings, promoted: ModelVersion, session: Session
    ) -> None:
        session.execute(delete(ModelFile))  # as migration 0008 leaves a model promoted before it
        session.commit()
        with TestClient(create_app(settings)) as instance:
            assert instance.app.state.model_source == "promoted"  # type: ignore[attr-defined]
        promote(session, settings, SHIPPED_MODEL_DIR, promoted_by="test")
        session.commit()
        assert session.scalar(select(ModelFile.name).where(ModelFile.model_version_id == promoted.id).limit(1))

    def test_another_artifact_under_a_promoted_version_is_refused(
        self, settings: Settings, promoted: ModelVersion, session: Session, tmp_path: Path
    ) -> None:
        """Promoted from another host, whose data folder does not hold the first: the database's record decides."""
        different = tmp_path / "different"
        shutil.copytree(SHIPPED_MODEL_DIR, different)
        manifest = json.loads((different / "manifest.json").read_text())
        manifest["metrics"]["mental_health"]["auroc"] = 0.5
        (different / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ModelMismatchError, match="promoted before as a different artifact"):
            promote(session, self._another_instance(settings, tmp_path), different, promoted_by="test")


def test_no_model_is_loaded_while_a_session_holds_sqlites_write_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite a session holds the write lock from its first statement: a start-up loading (or writing out) the
    promoted model inside one would keep every other worker's and instance's writes waiting meanwhile."""
    url = f"sqlite:///{tmp_path}/screening.db"
    _migrate(url, tmp_path)
    settings = Settings(database_url=url, data_dir=tmp_path / "promoting")
    engine = make_engine(settings)
    with unit_of_work(make_session_factory(engine)) as session:
        promote(session, settings, SHIPPED_MODEL_DIR, promoted_by="test")
    lock_free: list[bool] = []
    loaded = promotion.load_model

    def load_model_checking_the_lock(path: Path) -> Any:
        probe = sqlite3.connect(tmp_path / "screening.db", timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            lock_free.append(True)
        except sqlite3.OperationalError:
            lock_free.append(False)
        finally:
            probe.close()
        return loaded(path)

    monkeypatch.setattr(promotion, "load_model", load_model_checking_the_lock)
    another = settings.model_copy(update={"data_dir": tmp_path / "another-instance"})  # writes its copy out
    try:
        bundle, source = load_active(another, make_session_factory(engine))
    finally:
        engine.dispose()
    assert source == "promoted" and bundle.version == SHIPPED["version"]
    assert lock_free and all(lock_free), lock_free


class TestStartUp:
    def test_refuses_to_start_with_a_tampered_model(self, settings: Settings, tmp_path: Path) -> None:
        bad = tmp_path / "bad-model"
        shutil.copytree(SHIPPED_MODEL_DIR, bad)
        with (bad / "substance_misuse.onnx").open("ab") as f:
            f.write(b"\0")
        app = create_app(settings.model_copy(update={"model_dir": bad}))
        with pytest.raises(ModelMismatchError, match=r"configured model.*sha256 of substance_misuse\.onnx"):
            with TestClient(app):
                pass


class TestPromoteCommand:
    runner = CliRunner()

    @pytest.fixture
    def env(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        monkeypatch.setenv("SCREENING_DATA_DIR", str(tmp_path))
        monkeypatch.delenv("SCREENING_DATABASE_URL", raising=False)
        assert self.runner.invoke(cli, ["migrate"]).exit_code == 0
        return tmp_path

    def test_promote_verifies_copies_and_activates(self, env: Path) -> None:
        result = self.runner.invoke(cli, ["models", "promote", str(SHIPPED_MODEL_DIR)])
        assert result.exit_code == 0, result.output
        from screening.db import make_engine, make_session_factory

        engine = make_engine(Settings())
        with make_session_factory(engine)() as s:
            rows = s.scalars(select(ModelVersion)).all()
        engine.dispose()
        assert [(r.version, r.active, r.path) for r in rows] == [
            (SHIPPED["version"], True, f"models/{SHIPPED['version']}")
        ]
        assert self.runner.invoke(cli, ["models", "list"]).output.startswith(f"* {SHIPPED['version']}")

    def test_list_names_a_model_whose_files_are_in_one_data_folder_only(self, env: Path) -> None:
        assert self.runner.invoke(cli, ["models", "promote", str(SHIPPED_MODEL_DIR)]).exit_code == 0
        assert "promote it again" not in self.runner.invoke(cli, ["models", "list"]).output
        from screening.db import make_engine

        engine = make_engine(Settings())
        with make_session_factory(engine)() as s:
            s.execute(delete(ModelFile))  # as migration 0008 leaves a model promoted before it
            s.commit()
        engine.dispose()
        listed = self.runner.invoke(cli, ["models", "list"]).output
        assert f"(files in models/{SHIPPED['version']} of one data folder only: promote it again)" in listed
        assert self.runner.invoke(cli, ["models", "promote", str(SHIPPED_MODEL_DIR)]).exit_code == 0
        assert "promote it again" not in self.runner.invoke(cli, ["models", "list"]).output

    def test_promote_refuses_a_tampered_artifact(self, env: Path, tmp_path: Path) -> None:
        bad = tmp_path / "bad"
        shutil.copytree(SHIPPED_MODEL_DIR, bad)
        m = json.loads((bad / "manifest.json").read_text())
        m["contract_hash"] = "f" * 64
        (bad / "manifest.json").write_text(json.dumps(m))
        result = self.runner.invoke(cli, ["models", "promote", str(bad)])
        assert result.exit_code == 2
        assert "feature contract hash" in result.output
