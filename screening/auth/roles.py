"""The roles a user can hold (kept apart from the ORM models so the CLI can name them cheaply)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    nurse = "nurse"
    court = "court"
    data_scientist = "data_scientist"
    admin = "admin"
    commissioner = "commissioner"
