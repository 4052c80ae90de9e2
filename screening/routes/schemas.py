from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from screening.routes.models import Decision, ReasonCode, ReferralStatus
from screening.routes.rulebook import RouteKind, Urgency


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _blank_to_none(v: str | None) -> str | None:
    return (v.strip() or None) if v is not None else None


class Reason(BaseModel):
    source: Literal["item", "instrument", "model", "age", "contacts"] = Field(description="Kind of evidence.")
    ref: str = Field(description="Item id, instrument id, model domain, or `age`.")
    text: str = Field(description="Why, in words the nurse can check against the answers.")


class ServiceRead(BaseModel):
    name: str = Field(description="Local service to contact.")
    contact: str
    hours: str
    eligibility: str


class DecisionRead(BaseModel):
    decision: Decision
    reason_code: ReasonCode | None
    note: str | None
    decided_by: str
    decided_at: datetime


class RecommendationRead(BaseModel):
    route: str = Field(description="Route id, e.g. `crisis_mental_health`.")
    title: str
    urgency: Urgency | None = Field(description="Most urgent urgency of the rules that fired; null for an addition.")
    reasons: list[Reason] = Field(description="The evidence behind the recommendation; empty for an addition.")
    service: ServiceRead | None = Field(description="The local service to call, from the directory.")
    decision: DecisionRead | None = Field(description="The practitioner's decision in force, or null.")
    proposed: bool = Field(description="False: the practitioner added this route herself.")
    kind: RouteKind = Field(description="`service` (a referral), `custody` (an adjustment) or `court_option`.")


class DecisionCreate(_Input):
    decision: Decision = Field(description="`accept` or `decline`.")
    reason_code: ReasonCode | None = Field(
        default=None, description="Required to decline a proposed route or to add one the system did not propose."
    )
    note: str | None = Field(
        default=None, max_length=2000, description="Free text; required with every decline or addition."
    )

    @field_validator("note")
    @classmethod
    def _strip(cls, v: str | None) -> str | None:
        return _blank_to_none(v)


class NeedPut(_Input):
    need: bool = Field(description="The practitioner's judgement: is there a need in this domain?")
    reason_code: ReasonCode | None = Field(default=None, description="Required when overriding the proposal.")
    note: str | None = Field(default=None, max_length=2000, description="Free text; required with an override.")

    @field_validator("note")
    @classmethod
    def _strip(cls, v: str | None) -> str | None:
        return _blank_to_none(v)


class NeedRead(BaseModel):
    domain: str
    title: str
    proposed: bool = Field(description="What the rules (and model, when wired) propose.")
    reasons: list[Reason]
    need: bool | None = Field(description="The practitioner's confirmed judgement; null until decided.")
    overridden: bool = Field(description="The practitioner's judgement differs from the proposal.")
    reason_code: ReasonCode | None
    note: str | None
    decided_by: str | None
    decided_at: datetime | None


class Provenance(BaseModel):
    rules_version: str
    rules_sha256: str
    directory_version: str
    directory_sha256: str


class DecisionsRead(BaseModel):
    """Proposed and decided side by side."""

    screen_id: str
    status: str
    needs: list[NeedRead]
    routes: list[RecommendationRead]
    model_used: bool = Field(description="Whether model outputs were available to the rules.")
    model_version: str | None = Field(description="Version of the model whose outputs the rules used.")
    provenance: Provenance


class ReferralRead(BaseModel):
    id: int
    route: str
    title: str
    urgency: str
    service_name: str | None
    status: ReferralStatus
    made_on: date
    outcome_on: date | None
    history: list[dict[str, str | None]] = Field(description="Each status with its date, oldest first.")
    updated_at: datetime


class ReferralUpdate(_Input):
    status: ReferralStatus = Field(description="The new status: attended, engaged, declined or not_known.")
    on: date | None = Field(default=None, description="When it happened; default today.")

    @field_validator("on")
    @classmethod
    def _not_future(cls, v: date | None) -> date | None:
        if v is not None and v > date.today():
            raise ValueError("must not be in the future")
        return v


class RouteDefRead(BaseModel):
    route: str
    title: str
    kind: RouteKind


class NeedDefRead(BaseModel):
    domain: str
    title: str


class CatalogueRead(BaseModel):
    """What a nurse can choose from: every route (to add one not proposed), need domain and reason code."""

    routes: list[RouteDefRead]
    needs: list[NeedDefRead]
    reason_codes: list[ReasonCode]
    provenance: Provenance
