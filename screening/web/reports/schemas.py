from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SharedReport(BaseModel):
    screen_id: str = Field(description="Screen id; the report is at /api/v1/screens/{screen_id}/court-report.")
    custody_record: str = Field(description="Custody record number, which the court uses to match its case.")
    custody_suite: str
    finalised_at: datetime = Field(description="When the practitioner finalised the screen.")
    finalised_by: str = Field(description="Name of the practitioner who finalised it.")


class SharedReportPage(BaseModel):
    items: list[SharedReport]
    total: int
    limit: int
    offset: int
