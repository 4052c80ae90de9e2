"""Typed shape of an instrument definition file and of a score result.

Definitions are data (one YAML file per instrument, see ``definitions/``); these models validate
them at load so that a site's edit that breaks a rule fails loudly at start-up, not mid-screen.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ItemType(StrEnum):
    ordinal = "ordinal"
    boolean = "boolean"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    label: str = Field(description="What the practitioner reads out or taps.")
    points: int = Field(description="Points this option scores; not always its position (e.g. AUDIT 9-10: 0, 2, 4).")


# --- The small rule language used for skip logic and positive rules --------------------------------


class TotalAtLeast(_Strict):
    total_at_least: int


class ItemTrue(_Strict):
    item_true: str


class ItemAtLeast(_Strict):
    class _Body(_Strict):
        item: str
        value: int = Field(description="Minimum points of the answered option.")

    item_at_least: _Body


class SumAtLeast(_Strict):
    class _Body(_Strict):
        items: list[str]
        value: int

    sum_at_least: _Body


class AnyOf(_Strict):
    any: list[Rule]


class AllOf(_Strict):
    all: list[Rule]


Rule = TotalAtLeast | ItemTrue | ItemAtLeast | SumAtLeast | AnyOf | AllOf
AnyOf.model_rebuild()
AllOf.model_rebuild()


class Item(_Strict):
    id: str = Field(description="Stable item id; published instruments use `<instrument>_<n>`.")
    prompt: str = Field(description="The project's own short prompt (a site may load published wording).")
    type: ItemType = Field(description="`ordinal`: answer is the 0-based option index; `boolean`: true means yes.")
    options: list[Option] = Field(default_factory=list, description="Answer options, in display order.")
    reverse: bool = Field(default=False, description="Boolean items only: a `no` scores the point.")
    enable_when: Rule | None = Field(default=None, description="Skip logic: the item is asked only when this holds.")
    flag: str | None = Field(default=None, description="Text shown when the answer indicates the item is present.")
    urgent: bool = Field(default=False, description="A present answer is an urgent flag.")

    @model_validator(mode="after")
    def _options_fit_type(self) -> Item:
        if self.type is ItemType.ordinal and len(self.options) < 2:
            raise ValueError(f"ordinal item {self.id} needs at least two options")
        if self.type is ItemType.boolean and self.options:
            raise ValueError(f"boolean item {self.id} takes no options (points: yes=1, no=0, or reverse)")
        if self.reverse and self.type is not ItemType.boolean:
            raise ValueError(f"only boolean items can be reverse-scored ({self.id})")
        return self

    def boolean_points(self, value: bool) -> int:
        return int(value != self.reverse)

    def points(self, value: int | bool) -> int:
        if self.type is ItemType.boolean:
            return self.boolean_points(bool(value))
        return self.options[int(value)].points

    def present(self, value: int | bool) -> bool:
        """Whether the answer indicates the thing the item asks about (a yes, or any scoring option)."""
        if self.type is ItemType.boolean:
            return bool(value)
        return self.options[int(value)].points > 0

    @property
    def max_points(self) -> int:
        if self.type is ItemType.boolean:
            return 1
        return max(o.points for o in self.options)


class Band(_Strict):
    name: str
    min: int
    max: int
    label: str


class Scoring(_Strict):
    method: Literal["sum"] = "sum"
    items: list[str] | None = Field(default=None, description="Items that count towards the total (default: all).")


class ItemsFrom(_Strict):
    instrument: str
    items: list[str]


class InstrumentFile(BaseModel):
    """A definition file as written; `items_from` lets AUDIT-C reuse AUDIT's items."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    domain: str
    section: str
    version: str
    published: bool
    source: str
    licence: str
    preamble: str | None = None
    unit_note: str | None = None
    option_sets: dict[str, Any] | None = None  # YAML anchors only
    conditions: dict[str, Any] | None = None  # YAML anchors only
    items: list[Item] = Field(default_factory=list)
    items_from: ItemsFrom | None = None
    scoring: Scoring
    bands: list[Band] = Field(default_factory=list)
    positive: Annotated[Rule, Field(description="The default referral threshold.")]
    positive_source: str


class Instrument(_Strict):
    """A resolved instrument, as served by the API and used by the scoring engine."""

    id: str = Field(description="Instrument id, e.g. `phq9`.")
    title: str
    domain: str = Field(description="Need domain the instrument informs.")
    section: str = Field(description="Screen section the items are asked in.")
    version: str
    published: bool = Field(description="A published, validated instrument (false: the project's own questions).")
    source: str = Field(description="Reference for the items and scoring rules.")
    licence: str
    preamble: str | None = None
    unit_note: str | None = None
    items: list[Item]
    owns_items: bool = Field(description="False when the items belong to another instrument (AUDIT-C uses AUDIT's).")
    scored_items: list[str] = Field(description="Items that count towards the total.")
    bands: list[Band]
    positive: Rule
    positive_source: str
    max_total: int

    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)


class Flag(BaseModel):
    item_id: str
    text: str
    urgent: bool


class ScoreResult(BaseModel):
    instrument_id: str = Field(description="Which instrument was scored.")
    version: str = Field(description="Definition version used.")
    total: int = Field(description="Total points.")
    max_total: int = Field(description="Highest possible total.")
    band: str | None = Field(description="Severity band name, or null for instruments without bands.")
    band_label: str | None = Field(default=None, description="Plain-English band label.")
    positive: bool = Field(description="Whether the default referral threshold is met.")
    threshold: str = Field(description="The referral rule in plain words, with its source.")
    flags: list[Flag] = Field(default_factory=list, description="Answers that need attention, urgent first.")
