"""Tables of the model domain: promoted model versions, and which model produced each assessment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from screening.audit.models import BigIntPK
from screening.db import Base, UTCDateTime, utcnow


class ModelVersion(Base):
    """A model artifact promoted into the service; at most one is active."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(128), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    # Where each instance keeps its copy, relative to its settings.data_dir (the files are in `ModelFile`).
    path: Mapped[str] = mapped_column(String(512))
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    promoted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    promoted_by: Mapped[str] = mapped_column(String(128))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ModelFile(Base):
    """A file of a promoted model's artifact, kept with its record: each instance writes the active model out from
    here at start (`screening.model.promotion`), so none depends on the disk of the host it was promoted on."""

    __tablename__ = "model_files"

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"),
                                                  primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Assessment(Base):
    """Which model said what of a screen: recorded when an assessment shown differs from the screen's last record
    (a changed screen or another model), by whoever was shown it first. Each showing is in the audit trail
    (`screen.assessment`), so what was shown at any time is the last record before it."""

    __tablename__ = "assessments"
    # The screen's last record, found by each showing (`screening.model.assessments._record`).
    __table_args__ = (Index("ix_assessments_screen_id_id", "screen_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    screen_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(128))
    model_sha256: Mapped[str] = mapped_column(String(64))
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    assessed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # Per domain: probability, threshold and decision; enough to audit overrides against the model.
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
