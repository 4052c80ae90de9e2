from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy.orm import Session

from screening.auth.models import Role, User
from screening.config import Settings
from tests.factories import headers_for, make_user
from tests.insights.caseload import (
    DOMAINS,
    SUITES,
    Case,
    build,
    expected,
    expected_equity,
    insert,
    month_of,
    month_start,
)

PROBLEM = "application/problem+json"
URL = "/api/v1/insights/summary"
STATUS_PARTS = ("declined", "completed", "open")


def seeded(session: Session, settings: Settings, seed: int = 7) -> tuple[list[Case], User]:
    nurse = make_user(session)
    cases = build(seed)
    insert(session, cases, nurse.id, settings.person_key.get_secret_value())
    return cases, make_user(session, Role.commissioner)


def period_of(cases: list[Case]) -> dict[str, str]:
    months = sorted({month_of(c.at) for c in cases})
    return {"from": months[0], "to": months[-1]}


def cells(row: dict[str, Any]) -> dict[str, Any]:
    """A response row as measure → shown value, with the same keys as `caseload.expected`."""
    out = {"screens": row["screens"], "declined": row["declined"], "completed": row["completed"], "open": row["open"],
           "linked": row["linked"], "repeat": row["repeat_contacts"], "mcn": row["multiple_complex_needs"]}
    out |= {f"need:{d}": f["count"] for d, f in row["needs"].items()}
    out |= {f"pair:{p}": v for p, v in row["co_occurrence"].items()}
    out |= {k: row[k] for k in ("routes_proposed", "routes_accepted", "routes_added", "referrals",
                                "referrals_attended", "referrals_engaged", "need_decisions", "overrides")}
    out |= {f"confirmed:{d}": f["count"] for d, f in row["confirmed_needs"].items()}
    out |= {f"override:{d}": f["count"] for d, f in row["overrides_by_domain"].items()}
    return out


def rates(row: dict[str, Any]) -> list[tuple[Any, str, str]]:
    """(shown rate, numerator key, denominator key) for every rate of a row."""
    out = [(row["declined_rate"], "declined", "screens"), (row["linked_rate"], "linked", "screens"),
           (row["repeat_contact_rate"], "repeat", "linked"), (row["multiple_complex_needs_rate"], "mcn", "linked")]
    out += [(row["route_acceptance_rate"], "routes_accepted", "routes_proposed"),
            (row["attendance_rate"], "referrals_attended", "referrals"),
            (row["engagement_rate"], "referrals_engaged", "referrals"),
            (row["override_rate"], "overrides", "need_decisions")]
    out += [(f["rate"], f"confirmed:{d}", "completed") for d, f in row["confirmed_needs"].items()]
    return out + [(f["rate"], f"need:{d}", "completed") for d, f in row["needs"].items()]


class TestSummaryAccess:
    def test_without_token_is_401(self, client: TestClient) -> None:
        r = client.get(URL)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM

    @pytest.mark.parametrize("role", [Role.nurse, Role.court, Role.data_scientist, Role.admin])
    def test_other_roles_are_403(self, client: TestClient, session: Session, role: Role) -> None:
        h = headers_for(client, make_user(session, role))
        for url in (URL, "/api/v1/insights/report", "/insights"):
            r = client.get(url, headers=h)
            assert r.status_code == 403 and r.headers["content-type"] == PROBLEM, (role, url)

    def test_commissioner_may_read(self, client: TestClient, session: Session) -> None:
        r = client.get(URL, headers=headers_for(client, make_user(session, Role.commissioner)))
        assert r.status_code == 200, r.text
        assert len(r.json()["rows"]) == 12  # twelve months of the (empty) `All suites` row by default


class TestSummaryInput:
    @pytest.mark.parametrize(("params", "field"), [
        ({"from": "2026-13"}, "from"), ({"to": "last month"}, "to"),
        ({"from": "2025-06", "to": "2025-01"}, "from"), ({"from": "2020-01", "to": "2024-01"}, "from"),
    ])
    def test_invalid_period_names_the_field(
        self, client: TestClient, session: Session, params: dict[str, str], field: str
    ) -> None:
        r = client.get(URL, params=params, headers=headers_for(client, make_user(session, Role.commissioner)))
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
        assert [e["field"] for e in r.json()["errors"]] == [field]

    def test_the_running_month_is_refused(self, client: TestClient, session: Session) -> None:
        this_month = datetime.now(UTC).strftime("%Y-%m")
        h = headers_for(client, make_user(session, Role.commissioner))
        r = client.get(URL, params={"to": this_month}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "to"

    def test_unknown_format_is_422(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session, Role.commissioner))
        r = client.get(URL, params={"format": "xlsx"}, headers=h)
        assert r.status_code == 422


class TestSummaryFigures:
    def test_every_figure_matches_an_independent_count_and_small_ones_are_withheld(
        self, client: TestClient, session: Session, settings: Settings
    ) -> None:
        cases, commissioner = seeded(session, settings)
        want = expected(cases)
        r = client.get(URL, params=period_of(cases), headers=headers_for(client, commissioner))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["suppressed_marker"] == "<5" and body["need_domains"] == list(DOMAINS)
        rows = {(row["month"], row["custody_suite"]): row for row in body["rows"]}
        assert set(rows) == set(want), "one row per month and suite, plus the month's total"
        shown = withheld = 0
        for key, row in rows.items():
            got = cells(row)
            for measure, value in got.items():
                raw = want[key].get(measure, 0)
                if raw < 5:
                    assert value == "<5", (key, measure, raw)
                if value == "<5":
                    withheld += 1
                else:
                    assert value == raw, (key, measure)
                    shown += 1
            for value, num, den in rates(row):
                if got[num] == "<5" or got[den] == "<5":
                    assert value is None, (key, num)
                else:
                    assert value == (round(want[key].get(num, 0) / want[key][den], 3) if want[key].get(den) else None)
        assert shown > 100 and withheld > 50, (shown, withheld)  # the caseload exercises both
        # Busy suite: never withheld for its headline counts.
        for month in {m for m, _ in rows}:
            assert rows[(month, "Leeds Central")]["screens"] == want[(month, "Leeds Central")]["screens"]

    def test_overrides_by_group_match_an_independent_count(
        self, client: TestClient, session: Session, settings: Settings
    ) -> None:
        cases, commissioner = seeded(session, settings, seed=13)
        want, want_rows = expected_equity(cases), expected(cases)
        body = client.get(URL, params=period_of(cases), headers=headers_for(client, commissioner)).json()
        assert {row["month"] for row in body["equity"]} == {month_of(c.at) for c in cases}
        totals = {row["month"]: row for row in body["rows"] if row["custody_suite"] == "All suites"}
        shown = 0
        by_month: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for e in body["equity"]:
            raw = want.get((e["month"], e["dimension"], e["group"]), {"need_decisions": 0, "overrides": 0})
            for measure in ("need_decisions", "overrides"):
                if raw[measure] < 5:
                    assert e[measure] == "<5", e
                elif e[measure] != "<5":
                    assert e[measure] == raw[measure], e
                    shown += 1
            by_month.setdefault((e["month"], e["dimension"]), []).append(e)
        assert shown > 20
        # Each breakdown adds up to the month's total: no withheld group can be recovered from it.
        for (month, _), groups in by_month.items():
            for measure in ("need_decisions", "overrides"):
                hidden = [g for g in groups if g[measure] == "<5"]
                if totals[month][measure] != "<5" and hidden:
                    assert len(hidden) >= 2
                    raw = [want.get((month, g["dimension"], g["group"]), {measure: 0})[measure] for g in hidden]
                    assert sum(raw) >= 5
                assert totals[month][measure] in ("<5", want_rows[(month, "All suites")].get(measure, 0))

    def test_no_withheld_count_can_be_recovered_by_subtraction(
        self, client: TestClient, session: Session, settings: Settings
    ) -> None:
        cases, commissioner = seeded(session, settings, seed=11)
        want = expected(cases)
        body = client.get(URL, params=period_of(cases), headers=headers_for(client, commissioner)).json()
        rows = {(row["month"], row["custody_suite"]): cells(row) for row in body["rows"]}
        months = {m for m, _ in rows}
        secondary = 0

        def check(total: tuple[str, str, str], parts: list[tuple[str, str, str]]) -> int:
            shown_total = rows[total[:2]][total[2]]
            hidden = [p for p in parts if rows[p[:2]][p[2]] == "<5"]
            if shown_total == "<5":
                assert hidden, f"{total} is the sum of its shown parts"
            elif hidden:
                assert len(hidden) >= 2, f"{hidden[0]} = {total} minus the other parts"
                assert sum(want[p[:2]].get(p[2], 0) for p in hidden) >= 5, f"{hidden} narrowed below 5"
            return sum(1 for p in [total, *parts] if rows[p[:2]][p[2]] == "<5" and want[p[:2]].get(p[2], 0) >= 5)

        for m in months:
            for s in [*SUITES, "All suites"]:
                secondary += check((m, s, "screens"), [(m, s, x) for x in STATUS_PARTS])
            for measure in rows[(m, "All suites")]:
                secondary += check((m, "All suites", measure), [(m, s, measure) for s in SUITES])
        assert secondary > 0, "the caseload should need secondary suppression somewhere"

    def test_a_row_total_with_one_small_cell_withholds_another(
        self, client: TestClient, session: Session, settings: Settings
    ) -> None:
        nurse = make_user(session)
        start = month_start(datetime.now(UTC).date(), 1)
        at = datetime(start.year, start.month, 3, 10, tzinfo=UTC)
        sizes = {"Leeds Central": 20, "Bradford": 8, "Wakefield": 3}
        cases = [Case(f"00000000-0000-0000-0000-{s[:1]}{i:011d}", s, at, "final", (), None)
                 for s, n in sizes.items() for i in range(n)]
        insert(session, cases, nurse.id, "k")
        h = headers_for(client, make_user(session, Role.commissioner))
        month = month_of(at)
        body = client.get(URL, params={"from": month, "to": month}, headers=h).json()
        rows = {r["custody_suite"]: r for r in body["rows"]}
        assert rows["Wakefield"]["screens"] == "<5"  # primary
        assert rows["Bradford"]["screens"] == "<5"  # secondary: else Wakefield = 31 - 20 - 8
        assert rows["Leeds Central"]["screens"] == 20 and rows["All suites"]["screens"] == 31
        # Status partition of Leeds: 20 completed, 0 declined, 0 open. The zeros are withheld, and so is
        # `completed`, else declined + open = 0 would be read off.
        assert rows["Leeds Central"]["completed"] == "<5" and rows["Leeds Central"]["declined"] == "<5"

    def test_a_suite_filter_shows_exactly_that_suite_s_rows_of_the_full_table(
        self, client: TestClient, session: Session, settings: Settings
    ) -> None:
        cases, commissioner = seeded(session, settings, seed=3)
        h = headers_for(client, commissioner)
        full = client.get(URL, params=period_of(cases), headers=h).json()["rows"]
        one = client.get(URL, params=period_of(cases) | {"suite": "Wakefield"}, headers=h).json()
        assert one["custody_suite"] == "Wakefield"
        assert one["rows"] == [r for r in full if r["custody_suite"] == "Wakefield"]
        unknown = client.get(URL, params=period_of(cases) | {"suite": "Nowhere"}, headers=h).json()["rows"]
        assert {r["screens"] for r in unknown} == {"<5"}

    def test_csv_gives_the_same_rows(self, client: TestClient, session: Session, settings: Settings) -> None:
        cases, commissioner = seeded(session, settings, seed=5)
        h = headers_for(client, commissioner)
        body = client.get(URL, params=period_of(cases), headers=h).json()
        r = client.get(URL, params=period_of(cases) | {"format": "csv"}, headers=h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        lines = list(csv.DictReader(io.StringIO(r.text)))
        assert len(lines) == len(body["rows"])
        for line, row in zip(lines, body["rows"], strict=True):
            assert (line["month"], line["custody_suite"]) == (row["month"], row["custody_suite"])
            assert line["screens"] == str(row["screens"]) and line["declined"] == str(row["declined"])
            for d in DOMAINS:
                assert line[f"need.{d}"] == str(row["needs"][d]["count"])
                rate = row["needs"][d]["rate"]
                assert line[f"need.{d}.rate"] == ("" if rate is None else str(rate))
            assert line["both.mental_health+housing"] == str(row["co_occurrence"]["mental_health+housing"])
            assert line["multiple_complex_needs"] == str(row["multiple_complex_needs"])
        assert any(line["screens"] == "<5" for line in lines)


class TestReportAndDashboard:
    def test_monthly_report_html_and_pdf(self, client: TestClient, session: Session, settings: Settings) -> None:
        cases, commissioner = seeded(session, settings)
        h = headers_for(client, commissioner)
        month = period_of(cases)["to"]
        r = client.get("/api/v1/insights/report", params={"month": month}, headers=h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        want = expected(cases)[(month, "All suites")]
        assert f"monthly report, {month}" in r.text and "<svg" in r.text and "<script" not in r.text
        assert f"<b>{want['screens']}</b>" in r.text  # the headline tile
        assert '<span class="withheld">&lt;5</span>' in r.text
        pdf = client.get("/api/v1/insights/report", params={"month": month, "format": "pdf"}, headers=h)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
        assert f"monthly report, {month}" in text and "Wakefield" in text

    def test_dashboard_draws_charts_without_scripts(
        self, client: TestClient, session: Session, settings: Settings
    ) -> None:
        cases, commissioner = seeded(session, settings)
        r = client.get("/insights", params=period_of(cases), headers=headers_for(client, commissioner))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.text.count("<svg") == 5 and "<script" not in r.text and "https://" not in r.text
        # The service's CSP forbids inline styles: the page links its stylesheet, served without a token.
        assert "<style" not in r.text and 'href="/insights/insights.css"' in r.text
        css = client.get("/insights/insights.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css") and "svg" in css.text
        small = client.get("/insights", params=period_of(cases) | {"suite": "Wakefield"},
                           headers=headers_for(client, commissioner))
        # Wakefield's counts are all withheld: drawn as outlined stubs, never as bars of a guessed height.
        assert small.status_code == 200
        assert small.text.count("stroke-dasharray") == 5 + 5 + len(DOMAINS) + 5 + 5
        assert 'fill="#005eb8"' not in small.text
        assert 'fill="#005eb8"' in r.text

    def test_report_month_must_be_completed(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session, Role.commissioner))
        r = client.get("/api/v1/insights/report", params={"month": date.today().strftime("%Y-%m")}, headers=h)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
