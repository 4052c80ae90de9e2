from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from screening.instruments.schemas import ScoreResult
from screening.screens.models import Capacity, ScreenStatus, Sex


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScreenCreate(_Input):
    custody_record: str = Field(min_length=1, max_length=64, description="Custody record number of the episode.")
    date_of_birth: date = Field(description="Date of birth, YYYY-MM-DD.")
    sex: Sex = Field(default=Sex.unknown, description="Sex, as recorded.")
    ethnicity: str | None = Field(
        default=None, max_length=64, description="Self-described ethnicity, for equality monitoring only (never a model input)."
    )
    custody_suite: str | None = Field(
        default=None, max_length=64, description="Custody suite; default: the nurse's first suite."
    )
    person_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="A person reference (e.g. PNC or NHS number) used only to link repeat contacts: "
        "the service keeps a keyed hash of it, never the reference itself.",
    )

    @field_validator("custody_record")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be blank")
        return v

    @field_validator("date_of_birth")
    @classmethod
    def _plausible_dob(cls, v: date) -> date:
        today = date.today()
        if v > today:
            raise ValueError("must not be in the future")
        if v.year < today.year - 120:
            raise ValueError("must be within the last 120 years")
        return v


class AnswersPatch(_Input):
    answers: dict[str, Any] = Field(
        description="Item id → value: option index (int) for ordinal items, true/false for yes/no items, null to clear."
    )
    expected_revisions: dict[str, int] | None = Field(
        default=None,
        description="Offline sync: item id → the revision the device last saw; a newer server revision is a 409 conflict, "
        "unless the server already holds the value sent (a save sent again).",
    )


class ConsentPut(_Input):
    screening: bool = Field(description="Agrees to be screened. False records a decline, a first-class outcome.")
    share_with_health: bool = Field(description="Agrees to information being shared with health services.")
    share_with_court: bool = Field(description="Agrees to information being shared with police, CPS and the court.")
    capacity: Capacity = Field(description="The practitioner's capacity judgement for this decision.")


class ConsentRead(BaseModel):
    screening: bool
    share_with_health: bool
    share_with_court: bool
    capacity: Capacity
    recorded_by: str
    recorded_at: datetime


class Progress(BaseModel):
    answered: int = Field(description="Items answered, of those to ask.")
    expected: int = Field(description="Items to ask, with skip logic applied.")


class ScreenSummary(BaseModel):
    id: str
    custody_record: str
    custody_suite: str
    status: ScreenStatus
    age: int = Field(description="Age in whole years on the day the screen was opened.")
    sex: Sex
    created_at: datetime
    updated_at: datetime
    created_by: str


class ScreenRead(ScreenSummary):
    date_of_birth: date
    ethnicity: str | None
    linked: bool = Field(description="Whether a person reference was given, so repeat contacts can be linked.")
    previous_contacts: int = Field(description="Earlier linked screens of this person in the 12 months before this one.")
    finalised_at: datetime | None
    finalised_by: str | None
    consent: ConsentRead | None = Field(description="The consent in force, or null if none is recorded yet.")
    answers: dict[str, Any] = Field(description="Item id → stored value.")
    revisions: dict[str, int] = Field(description="Item id → revision of the stored value (for offline sync).")
    scores: list[ScoreResult] = Field(description="Scores of every fully answered instrument.")
    progress: Progress


class ScreenPage(BaseModel):
    items: list[ScreenSummary]
    total: int
    limit: int
    offset: int


class AnswerHistoryEntry(BaseModel):
    item_id: str
    value: Any
    revision: int
    changed_by: str
    changed_at: datetime
