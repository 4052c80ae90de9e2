from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from screening.auth.models import Role

Suite = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Input):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$", description="Sign-in name.")
    password: str = Field(
        min_length=1, max_length=256, description="At least 12 characters, not containing the username."
    )
    role: Role = Field(description="nurse, court, data_scientist, admin or commissioner.")
    full_name: str = Field(default="", max_length=128, description="Name shown on reports.")
    custody_suites: list[Suite] = Field(
        default_factory=list, max_length=50, description="Custody suites a nurse works in; nurses need at least one."
    )


class PasswordChange(_Input):
    password: str = Field(min_length=1, max_length=256, description="The new password (same policy as on creation).")
