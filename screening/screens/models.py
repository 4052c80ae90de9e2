from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from screening.audit.models import BigIntPK
from screening.db import Base, UTCDateTime, utcnow


class ScreenStatus(StrEnum):
    draft = "draft"
    declined = "declined"
    final = "final"


class Sex(StrEnum):
    male = "male"
    female = "female"
    other = "other"
    unknown = "unknown"


class Capacity(StrEnum):
    has_capacity = "has_capacity"
    lacks_capacity = "lacks_capacity"
    not_assessed = "not_assessed"


class Screen(Base):
    __tablename__ = "screens"
    __table_args__ = (UniqueConstraint("created_by_id", "idempotency_key", name="uq_screens_idempotency"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    custody_record: Mapped[str] = mapped_column(String(64))
    date_of_birth: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(16), default=Sex.unknown.value)
    # Self-described, for equality monitoring only: never a model input.
    ethnicity: Mapped[str | None] = mapped_column(String(64), nullable=True)
    custody_suite: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=ScreenStatus.draft.value)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finalised_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finalised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # Keyed hash (HMAC-SHA256 with settings.person_key) of a person reference such as a PNC or NHS
    # number, so that contacts of one person link across episodes and suites; the reference itself is
    # never stored.
    person_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Hash of the creating request body: a key reused with a different body is refused.
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Answer(Base):
    """The current answer to one item of one screen; each PATCH upserts only the items it names."""

    __tablename__ = "answers"

    screen_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnswerEvent(Base):
    """Every change to an answer, with who and when, so a screen's history can be shown."""

    __tablename__ = "answer_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    screen_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)  # null: the answer was cleared
    revision: Mapped[int] = mapped_column(Integer)
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Consent(Base):
    """A consent and capacity record; the latest one for a screen is in force, earlier ones are kept."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    screen_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"), index=True)
    screening: Mapped[bool] = mapped_column(Boolean)
    share_with_health: Mapped[bool] = mapped_column(Boolean)
    share_with_court: Mapped[bool] = mapped_column(Boolean)
    capacity: Mapped[str] = mapped_column(String(32))
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
