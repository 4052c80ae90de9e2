"""The "multiple and complex needs" flag: a person arrested again and again with several needs.

Revolving Doors Agency (2013) describes the group as people with two or more of mental health,
substance misuse, homelessness and learning difficulty who are in repeated contact with the police.
The thresholds are a site's choice (settings `mcn_*`); the defaults follow the issue's example. The
flag is context for the practitioner and a reason to offer a link worker or integrated offender
management; it is never a score and never changes an instrument result.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from screening.config import Settings
from screening.contacts.needs import HOUSING

LINK_WORKER = "link_worker"
INTEGRATED_OFFENDER_MANAGEMENT = "integrated_offender_management"


@dataclass(frozen=True)
class McnRule:
    min_contacts: int
    min_domains: int
    housing_with_any: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> McnRule:
        return cls(settings.mcn_min_contacts, settings.mcn_min_domains, settings.mcn_housing_with_any)

    def describe(self) -> str:
        text = f"{self.min_contacts}+ contacts in 12 months with {self.min_domains}+ need domains"
        if self.housing_with_any:
            text += "; or a repeat contact with a housing need and any other need"
        return text


@dataclass(frozen=True)
class McnAssessment:
    flagged: bool
    reasons: list[str]
    routes: list[str]


def assess(rule: McnRule, contacts: int, domains: Collection[str]) -> McnAssessment:
    """Whether `contacts` (this one included) and the need `domains` recorded across them meet the rule."""
    reasons: list[str] = []
    routes: list[str] = []
    if contacts >= rule.min_contacts and len(domains) >= rule.min_domains:
        reasons.append(f"{contacts} contacts in 12 months with {len(domains)} need domains")
        # Repeated arrest is what integrated offender management exists for; the link worker carries
        # the person between services that each see only one of the needs.
        routes += [LINK_WORKER, INTEGRATED_OFFENDER_MANAGEMENT]
    others = [d for d in domains if d != HOUSING]
    # Housing with another need on a repeat contact: homelessness keeps people cycling through custody
    # whatever the other need (Revolving Doors Agency 2013), so a link worker is offered early.
    if rule.housing_with_any and contacts >= 2 and HOUSING in domains and others:
        reasons.append(f"repeat contact with a housing need and {len(others)} other need domain(s)")
        if LINK_WORKER not in routes:
            routes.append(LINK_WORKER)
    return McnAssessment(flagged=bool(reasons), reasons=reasons, routes=routes)
