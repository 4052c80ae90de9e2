"""Model outputs and practitioner decisions for the export, from other domains' tables.

These tables (`assessments` from the model domain; `need_decisions` and `referrals` from the routes
domain) are found by name in the database rather than imported, so the export fills them in as soon
as those domains are deployed, and leaves the columns blank where they are not.
Only ids, domains, booleans and probabilities are read: never notes or other free text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, MetaData, Table, inspect, select

# The three needs the model scores and practitioners confirm (routes.rulebook.MODEL_DOMAINS).
DOMAINS = ("mental_health", "learning_disability", "substance_misuse")


def _table(conn: Connection, name: str, needs: set[str]) -> Table | None:
    if not inspect(conn).has_table(name):
        return None
    table = Table(name, MetaData(), autoload_with=conn)
    return table if needs <= set(table.c.keys()) else None


def need_columns(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Latest need decision per (screen, domain) → outcome_<domain> (1 confirmed, 0 ruled out) and
    override_<domain> (1 where the practitioner departed from what was proposed)."""
    out: dict[str, dict[str, int]] = {}
    for r in sorted(rows, key=lambda r: r["id"]):  # later decisions replace earlier ones
        if r["domain"] not in DOMAINS:
            continue
        cols = out.setdefault(r["screen_id"], {})
        cols[f"outcome_{r['domain']}"] = int(bool(r["need"]))
        cols[f"override_{r['domain']}"] = int(bool(r["need"]) != bool(r["proposed"]))
    return out


def assessment_columns(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Latest model assessment per screen → model_version and model_<domain>_probability."""
    out: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: r["id"]):
        result = r["result"] if isinstance(r["result"], dict) else {}
        cols: dict[str, Any] = {"model_version": r["model_version"]}
        for d in DOMAINS:
            p = result.get(d, {}).get("probability") if isinstance(result.get(d), dict) else None
            cols[f"model_{d}_probability"] = float(p) if isinstance(p, int | float) else None
        out[r["screen_id"]] = cols
    return out


def referral_columns(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        cols = out.setdefault(r["screen_id"], {"referrals": 0})
        cols["referrals"] += 1
    return out


ToColumns = Callable[[list[Mapping[str, Any]]], Mapping[str, Mapping[str, Any]]]
# (table, the columns read, how its rows become export columns)
SOURCES: list[tuple[str, set[str], ToColumns]] = [
    ("need_decisions", {"id", "screen_id", "domain", "need", "proposed"}, need_columns),
    ("assessments", {"id", "screen_id", "model_version", "result"}, assessment_columns),
    ("referrals", {"id", "screen_id"}, referral_columns),
]


def load(conn: Connection, screen_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Extra column values per screen id, from whichever of the linked tables exist."""
    extra: dict[str, dict[str, Any]] = {sid: {} for sid in screen_ids}
    for name, needs, to_columns in SOURCES:
        table = _table(conn, name, needs)
        if table is None:
            continue
        rows = conn.execute(select(*(table.c[c] for c in sorted(needs))).where(table.c.screen_id.in_(screen_ids)))
        for sid, cols in to_columns([dict(m) for m in rows.mappings()]).items():
            extra[sid].update(cols)
    return extra
