"""The court information report's typed view-model: everything the template may show, nothing more.

The template receives only this object, so what can reach a court is decided here, in code that is
tested, and never by the template reaching into the database.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class ReportFormat(StrEnum):
    html = "html"
    pdf = "pdf"


class NeedView(BaseModel):
    title: str
    text: str = Field(description="The need in plain English.")
    answers: list[str] = Field(description="The answers that matter, restated in plain words.")


class ReferralView(BaseModel):
    title: str
    text: str
    service: str | None
    status: str = Field(description="Plain-English status, e.g. 'Referral made on 3 March 2026'.")


class OptionView(BaseModel):
    title: str
    text: str


class CourtReportView(BaseModel):
    report_version: str
    rules_version: str
    generated_at: datetime
    custody_record: str
    date_of_birth: date
    age: int
    seen_on: datetime
    custody_suite: str
    practitioner: str
    consent: list[str] = Field(description="What the person agreed to share, one sentence each.")
    health_shared: bool
    needs: list[NeedView]
    participation: list[str]
    support: list[str]
    referrals: list[ReferralView]
    options: list[OptionView]
    not_known: list[str]
