from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from screening.audit.service import Actor


class Token(BaseModel):
    access_token: str = Field(description="Bearer token for the Authorization header.")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")


class UserRead(BaseModel):
    id: int
    username: str
    full_name: str
    role: str
    custody_suites: list[str]
    active: bool


@dataclass(frozen=True)
class Principal:
    """The signed-in user, as every dependency and service sees them."""

    id: int
    username: str
    full_name: str
    role: str
    custody_suites: tuple[str, ...]
    source_ip: str | None

    @property
    def actor(self) -> Actor:
        return Actor(id=self.id, username=self.username, role=self.role, source_ip=self.source_ip)
