"""The route rules and the directory of local services: data files, validated at load.

The shipped files live in ``data/``; a site replaces either by putting a file of the same name
(``rules.yaml``, ``directory.yaml``) in the folder named by ``SCREENING_ROUTES_DIR``. Every reference
(route, item, instrument, model domain, need domain) is checked at load, so a broken edit fails at
start-up rather than in front of a nurse. Each file carries a ``version``; the version and a SHA-256
of the file's bytes are recorded with every decision, so a changed rule can be traced.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from screening.instruments.registry import Registry
from screening.log_redaction import Reason
from screening.yamlfiles import safe_yaml

SHIPPED_DIR = Path(__file__).parent / "data"
# The model domains the model bundle reports (branch `model`); a rule may only name these.
MODEL_DOMAINS = frozenset({"mental_health", "learning_disability", "substance_misuse"})


class RulebookError(Reason, ValueError):
    """A rules or directory file is invalid; the message names the file and what is wrong."""


class Urgency(StrEnum):
    immediate = "immediate"
    urgent = "urgent"
    routine = "routine"


URGENCY_ORDER = {Urgency.immediate: 0, Urgency.urgent: 1, Urgency.routine: 2}


class RouteKind(StrEnum):
    service = "service"  # a referral to a service: accepting it makes a referral
    custody = "custody"  # an adjustment in custody or court (appropriate adult): no referral to track
    court_option = "court_option"  # a disposal the court may consider: goes to the report, no referral


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- conditions -------------------------------------------------------------------------------
# Each leaf may carry `text`, the reason shown to the nurse; without it a text is made from the
# item prompt or the instrument result. Leaves over items, instruments, age and the model are cited as
# evidence; `consent` and `none_of` gate a rule but are never cited.


class _Leaf(_Strict):
    text: str | None = Field(default=None, description="Reason text shown when this condition holds.")


class ItemTrueCond(_Leaf):
    item_true: str


class _ItemValue(_Strict):
    item: str
    value: int = Field(description="Minimum points of the chosen option.")


class ItemAtLeastCond(_Leaf):
    item_at_least: _ItemValue


class PositiveCond(_Leaf):
    instrument_positive: str


class _InstrumentValue(_Strict):
    instrument: str
    value: int


class TotalAtLeastCond(_Leaf):
    instrument_total_at_least: _InstrumentValue


class _InstrumentBands(_Strict):
    instrument: str
    bands: list[str]


class BandInCond(_Leaf):
    instrument_band_in: _InstrumentBands


class AgeUnderCond(_Leaf):
    age_under: int


class _AgeRange(_Strict):
    min: int
    max: int = Field(description="Inclusive.")


class AgeBetweenCond(_Leaf):
    age_between: _AgeRange


class ModelNeedCond(_Leaf):
    model_need: str


class _McnThresholds(_Strict):
    min_contacts: int = Field(default=3, ge=1, description="Contacts in 12 months, this one included.")
    min_domains: int = Field(default=2, ge=1, description="Need domains recorded across those contacts.")
    housing_with_any: bool = Field(default=True, description="A repeat contact with housing and any other need.")


class McnCond(_Leaf):
    """Multiple and complex needs over repeat contacts (issue 8; Revolving Doors Agency 2013)."""

    multiple_complex_needs: _McnThresholds


class ConsentCond(_Strict):
    consent: Literal["share_with_health", "share_with_court"]


class AnyCond(_Strict):
    any: list[Condition]


class AllCond(_Strict):
    all: list[Condition]


class NoneOfCond(_Strict):
    none_of: list[Condition]


Condition = (
    ItemTrueCond
    | ItemAtLeastCond
    | PositiveCond
    | TotalAtLeastCond
    | BandInCond
    | AgeUnderCond
    | AgeBetweenCond
    | ModelNeedCond
    | McnCond
    | ConsentCond
    | AnyCond
    | AllCond
    | NoneOfCond
)
for _m in (AnyCond, AllCond, NoneOfCond):
    _m.model_rebuild()


# --- the rules file ---------------------------------------------------------------------------


class RouteDef(_Strict):
    title: str = Field(description="What the nurse sees.")
    kind: RouteKind
    health: bool = Field(description="Whether saying this route was taken reveals health information.")
    court_text: str = Field(description="Plain-English sentence for the court report when the route is accepted.")


class Rule(_Strict):
    id: str
    route: str
    urgency: Urgency
    reason: str = Field(description="Why the rule exists, prefixed to generated evidence text.")
    when: Condition


class NeedDef(_Strict):
    title: str
    health: bool
    when: Condition = Field(description="When the need is proposed (the nurse confirms or overrides it).")
    court_text: str = Field(description="The need in plain English for the court.")
    participation: str | None = Field(default=None, description="How it may affect taking part in proceedings.")
    answers: dict[str, str] = Field(
        default_factory=dict, description="Item id → plain words for the court when the answer is yes/present."
    )


class SupportDef(_Strict):
    need: str = Field(description="Shown only when this need is confirmed.")
    item: str = Field(description="Shown when this item is answered yes/present.")
    text: str


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    routes: dict[str, RouteDef]
    needs: dict[str, NeedDef]
    support: list[SupportDef] = Field(default_factory=list)
    rules: list[Rule]


class Service(_Strict):
    name: str = Field(description="Name of the local service.")
    contact: str = Field(description="How to refer: phone, secure email or referral form.")
    hours: str = Field(description="When the service takes referrals.")
    eligibility: str = Field(description="Who the service accepts.")
    suites: list[str] | None = Field(default=None, description="Custody suites this entry serves; null: all.")


class DirectoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    services: dict[str, list[Service]] = Field(description="Route id → local services, preferred first.")


@dataclass(frozen=True)
class Rulebook:
    """The rules and directory in force, with the version and content hash of each file."""

    rules: RulesFile
    directory: DirectoryFile
    rules_sha256: str
    directory_sha256: str
    # Memos of what is derived from these rules (proposals for a set of facts): kept and dropped with them.
    derived: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def rules_version(self) -> str:
        return self.rules.version

    @property
    def directory_version(self) -> str:
        return self.directory.version

    def service_for(self, route: str, suite: str) -> Service | None:
        for s in self.directory.services.get(route, []):
            if s.suites is None or suite in s.suites:
                return s
        return None

    def provenance(self) -> dict[str, str]:
        return {
            "rules_version": self.rules_version,
            "rules_sha256": self.rules_sha256,
            "directory_version": self.directory_version,
            "directory_sha256": self.directory_sha256,
        }


def _leaves(cond: Condition) -> list[Condition]:
    match cond:
        case AnyCond(any=cs) | AllCond(all=cs) | NoneOfCond(none_of=cs):
            return [leaf for c in cs for leaf in _leaves(c)]
    return [cond]


def _check_condition(where: str, cond: Condition, registry: Registry, problems: list[str]) -> None:
    for leaf in _leaves(cond):
        match leaf:
            case ItemTrueCond(item_true=i) | ItemAtLeastCond(item_at_least=_ItemValue(item=i)):
                if i not in registry.items:
                    problems.append(f"{where}: unknown item {i}")
            case PositiveCond(instrument_positive=i) | TotalAtLeastCond(instrument_total_at_least=_InstrumentValue(
                    instrument=i)):
                if i not in registry:
                    problems.append(f"{where}: unknown instrument {i}")
            case BandInCond(instrument_band_in=body):
                inst = registry.get(body.instrument)
                if inst is None:
                    problems.append(f"{where}: unknown instrument {body.instrument}")
                else:
                    unknown = set(body.bands) - {b.name for b in inst.bands}
                    if unknown:
                        problems.append(f"{where}: {body.instrument} has no band {sorted(unknown)}")
            case ModelNeedCond(model_need=d):
                if d not in MODEL_DOMAINS:
                    problems.append(f"{where}: unknown model domain {d} (one of {sorted(MODEL_DOMAINS)})")


def _read(path: Path, schema: type[RulesFile] | type[DirectoryFile]) -> tuple[RulesFile | DirectoryFile, str]:
    try:
        raw = path.read_bytes()
        return schema.model_validate(safe_yaml(raw)), hashlib.sha256(raw).hexdigest()
    except Exception as exc:
        raise RulebookError(f"{path.name}: {exc}") from exc


def _pick(name: str, site_dir: Path | None) -> Path:
    if site_dir is not None:
        if not site_dir.is_dir():
            raise RulebookError(f"routes folder {site_dir} does not exist")
        if (site_dir / name).is_file():
            return site_dir / name
    return SHIPPED_DIR / name


def load_rulebook(registry: Registry, site_dir: Path | None = None) -> Rulebook:
    """Load the rules and the directory (a site's file of the same name replaces the shipped one)."""
    rules, rules_hash = _read(_pick("rules.yaml", site_dir), RulesFile)
    directory, dir_hash = _read(_pick("directory.yaml", site_dir), DirectoryFile)
    assert isinstance(rules, RulesFile) and isinstance(directory, DirectoryFile)
    problems: list[str] = []
    ids = [r.id for r in rules.rules]
    if len(set(ids)) != len(ids):
        problems.append("rules.yaml: duplicate rule ids")
    for rule in rules.rules:
        if rule.route not in rules.routes:
            problems.append(f"rules.yaml: rule {rule.id} names unknown route {rule.route}")
        _check_condition(f"rules.yaml: rule {rule.id}", rule.when, registry, problems)
    for name, need in rules.needs.items():
        _check_condition(f"rules.yaml: need {name}", need.when, registry, problems)
        problems += [f"rules.yaml: need {name} names unknown item {i}" for i in need.answers if i not in registry.items]
    for s in rules.support:
        if s.need not in rules.needs:
            problems.append(f"rules.yaml: support names unknown need {s.need}")
        if s.item not in registry.items:
            problems.append(f"rules.yaml: support names unknown item {s.item}")
    problems += [f"directory.yaml: unknown route {r}" for r in directory.services if r not in rules.routes]
    if problems:
        raise RulebookError("; ".join(problems))
    return Rulebook(rules=rules, directory=directory, rules_sha256=rules_hash, directory_sha256=dir_hash)

