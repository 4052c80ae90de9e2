"""Practitioner decisions on routes and needs, and the referrals that accepted routes become.

Decisions are appended, never updated: the latest row for a (screen, route) or (screen, domain) is the
one in force, and the earlier ones stay as the history of who changed their mind and why. Each row
records the rules and directory versions (and content hashes) in force when it was made.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from screening.audit.models import BigIntPK
from screening.db import Base, UTCDateTime, utcnow


class Decision(StrEnum):
    accept = "accept"
    decline = "decline"


class ReasonCode(StrEnum):
    """Fixed list, so overrides can be counted and reviewed for equity (Ohio ORAS override practice)."""

    clinical_judgement = "clinical_judgement"
    person_declined = "person_declined"
    already_supported = "already_supported"
    not_eligible = "not_eligible"
    service_unavailable = "service_unavailable"
    other = "other"


class ReferralStatus(StrEnum):
    made = "made"
    attended = "attended"
    engaged = "engaged"
    declined = "declined"
    not_known = "not_known"


class _Provenance:
    rules_version: Mapped[str] = mapped_column(String(32))
    rules_sha256: Mapped[str] = mapped_column(String(64))
    directory_version: Mapped[str] = mapped_column(String(32))
    directory_sha256: Mapped[str] = mapped_column(String(64))
    # The model whose outputs the rules saw (null: none was loaded or it failed).
    model_version: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RouteDecision(_Provenance, Base):
    __tablename__ = "route_decisions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    screen_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"), index=True)
    route: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    # What the system proposed at the time: an accept of a route not proposed is an addition.
    proposed: Mapped[bool] = mapped_column(Boolean)
    proposed_urgency: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Evidence shown to the nurse when she decided ([{source, ref}]: ids only, no answer text).
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    reason_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NeedDecision(_Provenance, Base):
    __tablename__ = "need_decisions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    screen_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(64))
    proposed: Mapped[bool] = mapped_column(Boolean)
    need: Mapped[bool] = mapped_column(Boolean)
    reason_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Referral(Base):
    """An accepted service route; its outcome is updated later, after the screen is final."""

    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    screen_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"), index=True)
    route: Mapped[str] = mapped_column(String(64))
    urgency: Mapped[str] = mapped_column(String(16))
    service_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=ReferralStatus.made.value)
    made_on: Mapped[date] = mapped_column(Date)
    outcome_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    # [{status, on, by, at}], oldest first: the lifecycle, so outcomes can be counted by date.
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    made_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CourtReport(Base):
    """Every court report generated: which document went out, when, to whom, and its SHA-256."""

    __tablename__ = "court_reports"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    screen_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(8))
    report_version: Mapped[str] = mapped_column(String(32))
    rules_version: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    practitioner: Mapped[str] = mapped_column(String(128))
    generated_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
