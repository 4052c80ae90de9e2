from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from screening.auth.dependencies import Authorize
from screening.auth.policy import Permission
from screening.auth.schemas import Principal
from screening.insights import service

InsightsReader = Annotated[Principal, Depends(Authorize(Permission.insights_read))]


def period_query(
    from_: Annotated[str | None, Query(alias="from", max_length=10, description="First month, YYYY-MM.")] = None,
    to: Annotated[str | None, Query(max_length=10, description="Last month, YYYY-MM (a completed month).")] = None,
) -> service.Period:
    """The reporting period: whole completed months, by default the last twelve."""
    return service.period(from_, to)


PeriodDep = Annotated[service.Period, Depends(period_query)]
