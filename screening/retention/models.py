from __future__ import annotations

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from screening.db import Base


class RetainedStatistic(Base):
    """What survives a purge: a count of screens per month, custody suite and outcome status.

    No person-level row survives the retention period. Commissioners' activity figures (screens per
    suite per month, share declined) need only these counts; a count of one is not identifying on its
    own because the row holds no date finer than a month and no attribute of the person.
    """

    __tablename__ = "retained_statistics"
    __table_args__ = (UniqueConstraint("month", "custody_suite", "status", name="uq_retained_statistics_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    custody_suite: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    screens: Mapped[int] = mapped_column(Integer, default=0)
