from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Count = int | Literal["<5"]


class NeedFigure(BaseModel):
    count: Count = Field(description="Completed screens whose instrument results meet this need domain.")
    rate: float | None = Field(description="count / completed screens; null when either is withheld.")


class SummaryRow(BaseModel):
    month: str = Field(description="Calendar month, YYYY-MM (UTC), of the screen's opening.")
    custody_suite: str = Field(description="Custody suite, or `All suites` for the month's total.")
    screens: Count = Field(description="Screens opened.")
    declined: Count = Field(description="Screens where the person declined screening.")
    completed: Count = Field(description="Screens finalised.")
    open: Count = Field(description="Screens still in draft (screens = declined + completed + open).")
    declined_rate: float | None = Field(description="declined / screens.")
    needs: dict[str, NeedFigure] = Field(description="Prevalence of each need domain among completed screens.")
    co_occurrence: dict[str, Count] = Field(
        description="`a+b` → completed screens meeting both need domains a and b."
    )
    linked: Count = Field(description="Screens carrying a person reference, so repeat contact can be seen.")
    linked_rate: float | None = Field(description="linked / screens.")
    repeat_contacts: Count = Field(description="Linked screens with an earlier linked screen in the 12 months before.")
    repeat_contact_rate: float | None = Field(description="repeat_contacts / linked.")
    multiple_complex_needs: Count = Field(description="Linked screens meeting the multiple and complex needs rule.")
    multiple_complex_needs_rate: float | None = Field(description="multiple_complex_needs / linked.")
    routes_proposed: Count = Field(description="Routes the system proposed on completed screens, decided by a practitioner.")
    routes_accepted: Count = Field(description="Of those, routes the practitioner accepted.")
    route_acceptance_rate: float | None = Field(description="routes_accepted / routes_proposed.")
    routes_added: Count = Field(description="Routes a practitioner accepted that the system had not proposed.")
    referrals: Count = Field(description="Referrals made from completed screens.")
    referrals_attended: Count = Field(description="Referrals whose outcome is `attended` or `engaged`.")
    referrals_engaged: Count = Field(description="Referrals whose outcome is `engaged`.")
    attendance_rate: float | None = Field(description="referrals_attended / referrals.")
    engagement_rate: float | None = Field(description="referrals_engaged / referrals.")
    confirmed_needs: dict[str, NeedFigure] = Field(
        description="Need domains a practitioner confirmed, per domain; rate: / completed screens."
    )
    need_decisions: Count = Field(description="Need decisions in force on completed screens (one per screen and domain).")
    overrides: Count = Field(description="Need decisions that differ from the system's proposal.")
    override_rate: float | None = Field(description="overrides / need_decisions.")
    overrides_by_domain: dict[str, NeedFigure] = Field(
        description="Overrides per need domain; rate: / decisions in that domain."
    )


class EquityRow(BaseModel):
    month: str = Field(description="Calendar month, YYYY-MM.")
    dimension: Literal["sex", "age_band", "ethnicity"] = Field(description="What the groups are of.")
    group: str = Field(description="The group (fixed labels; ethnicity mapped to ONS 2021 high-level groups).")
    need_decisions: Count = Field(description="Need decisions in force on completed screens of people in the group.")
    overrides: Count = Field(description="Of those, decisions that differ from the system's proposal.")
    override_rate: float | None = Field(description="overrides / need_decisions.")


class InsightsSummary(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", description="First month, YYYY-MM.")
    to: str = Field(description="Last month, YYYY-MM.")
    custody_suite: str | None = Field(description="The suite asked for, or null for every suite.")
    suppressed_marker: Literal["<5"] = Field(description="What a withheld count shows.")
    threshold: int = Field(description="Counts below this are withheld.")
    need_domains: list[str] = Field(description="Need domains, in order.")
    rows: list[SummaryRow] = Field(description="One row per month and suite, then the month's `All suites` row.")
    equity: list[EquityRow] = Field(
        description="Practitioner overrides by sex, age band and ethnicity, per month, all suites."
    )
