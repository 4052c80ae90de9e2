from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from screening.screens.models import ScreenStatus


class ReferralOutcome(BaseModel):
    route: str = Field(description="The route referred to.")
    status: str = Field(description="`made`, `attended`, `engaged`, `declined` or `not_known`.")
    made_on: dt.date = Field(description="Day the referral was made.")
    outcome_on: dt.date | None = Field(description="Day of the latest outcome, if any.")


class EarlierContact(BaseModel):
    date: dt.date = Field(description="Day the earlier screen was opened (UTC); the time is left out.")
    visible: bool = Field(
        description="Whether you may open the earlier screen (one of your suites). If false, only its date, "
        "status and need domains are shown: not its id, suite, custody record or answers."
    )
    screen_id: str | None = Field(description="Id of the earlier screen, only when `visible`.")
    custody_suite: str | None = Field(description="Suite of the earlier screen, only when `visible`.")
    status: ScreenStatus = Field(description="`declined` means the person declined screening then.")
    need_domains: list[str] = Field(description="Need domains its instrument results met then (empty if declined).")
    confirmed_needs: list[str] = Field(description="Need domains a practitioner confirmed then.")
    routes: list[str] = Field(description="Routes a practitioner accepted then.")
    referral_outcomes: list[ReferralOutcome] = Field(description="Referrals made then, with their latest outcome.")


class MultipleComplexNeeds(BaseModel):
    flagged: bool = Field(description="Whether the person meets the site's multiple and complex needs rule.")
    rule: str = Field(description="The rule in force, in plain words.")
    reasons: list[str] = Field(description="Which parts of the rule held.")
    suggested_routes: list[str] = Field(
        description="Routes to consider because of the flag, e.g. `link_worker`, `integrated_offender_management`."
    )


class ContactContext(BaseModel):
    """Context for the practitioner, not a score: nothing here changes an instrument result."""

    screen_id: str
    linked: bool = Field(description="Whether the screen carries a person reference, so contacts can be linked.")
    window_days: int = Field(description="How far back contacts are counted.")
    previous_contacts: int = Field(description="Earlier linked screens in the window (as on the screen itself).")
    contacts_in_window: int = Field(description="Contacts in the window, this one included.")
    need_domains_now: list[str] = Field(description="Need domains this screen's instrument results meet so far.")
    need_domains_recorded: list[str] = Field(
        description="Need domains met on this or any earlier contact in the window."
    )
    earlier: list[EarlierContact] = Field(description="Earlier linked contacts, newest first.")
    multiple_complex_needs: MultipleComplexNeeds
