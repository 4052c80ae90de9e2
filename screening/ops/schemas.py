from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Live(BaseModel):
    status: Literal["ok"] = "ok"
    version: str = Field(description="The service's version.")


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(
        description="Each dependency checked: `ok`, `absent` (not configured) or why it failed."
    )
