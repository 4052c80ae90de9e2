from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEntryRead(BaseModel):
    id: int = Field(description="Position in the hash chain.")
    at: datetime = Field(description="When (UTC).")
    actor: str = Field(description="Username, or `system` / `anonymous`.")
    role: str = Field(description="The actor's role at the time.")
    action: str = Field(description="What was done, e.g. `screen.read`, `screen.answers.update`.")
    source_ip: str | None = Field(description="Where the request came from.")
    detail: dict[str, Any] = Field(description="Ids and counts only, e.g. which items changed; never answer values.")


class AnswerChange(BaseModel):
    item_id: str = Field(description="Which item changed.")
    revision: int = Field(description="The answer's revision after the change.")
    cleared: bool = Field(description="True when the answer was removed.")
    changed_by: str = Field(description="Username of who changed it.")
    changed_at: datetime


class ScreenHistory(BaseModel):
    """Who did what to a screen, for accountability. Answer values are left out: reading the clinical
    content is the nurses' business, not the administrator's."""

    screen_id: str
    exists: bool = Field(description="False once the screen has been purged under the retention policy.")
    entries: list[AuditEntryRead]
    answer_changes: list[AnswerChange]
