"""Loads instrument definitions from data files and resolves them into `Instrument`s.

The shipped definitions live in ``definitions/``; a site adds or overrides instruments by pointing
``SCREENING_INSTRUMENTS_DIR`` at a folder of YAML files (a file with the same id replaces the shipped
one). Every rule's item references are checked at load, so a broken edit fails at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from screening.instruments.schemas import (
    AllOf,
    AnyOf,
    Instrument,
    InstrumentFile,
    Item,
    ItemAtLeast,
    ItemTrue,
    Rule,
    SumAtLeast,
)
from screening.instruments.scoring import InstrumentMemo
from screening.log_redaction import Reason
from screening.yamlfiles import safe_yaml

SHIPPED_DIR = Path(__file__).parent / "definitions"


class DefinitionError(Reason, ValueError):
    """A definition file is invalid; the message names the file and what is wrong."""


def _rule_items(rule: Rule) -> Iterator[str]:
    match rule:
        case ItemTrue(item_true=i):
            yield i
        case ItemAtLeast(item_at_least=body):
            yield body.item
        case SumAtLeast(sum_at_least=body):
            yield from body.items
        case AnyOf(any=rules) | AllOf(all=rules):
            for r in rules:
                yield from _rule_items(r)


class Registry:
    """All instruments of a deployment, in a stable order, with a global item index."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._by_id = {i.id: i for i in instruments}
        self.items: dict[str, Item] = {}
        self.owner: dict[str, str] = {}
        for inst in self._by_id.values():
            if not inst.owns_items:
                continue
            for it in inst.items:
                if it.id in self.items:
                    raise DefinitionError(f"item id {it.id} is defined by both {self.owner[it.id]} and {inst.id}")
                self.items[it.id] = it
                self.owner[it.id] = inst.id
        self.views = [InstrumentMemo(inst, self.items, self.owner) for inst in self._by_id.values()]

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_id.values())

    def __contains__(self, instrument_id: object) -> bool:
        return instrument_id in self._by_id

    def get(self, instrument_id: str) -> Instrument | None:
        return self._by_id.get(instrument_id)

    def __getitem__(self, instrument_id: str) -> Instrument:
        return self._by_id[instrument_id]

    @property
    def ids(self) -> list[str]:
        return list(self._by_id)


def _read(path: Path) -> InstrumentFile:
    try:
        raw = safe_yaml(path.read_text(encoding="utf-8"))
        return InstrumentFile.model_validate(raw)
    except Exception as exc:
        raise DefinitionError(f"{path.name}: {exc}") from exc


def _resolve(files: dict[str, InstrumentFile]) -> list[Instrument]:
    out: list[Instrument] = []
    for f in files.values():
        if f.items_from is not None:
            source = files.get(f.items_from.instrument)
            if source is None:
                raise DefinitionError(f"{f.id}: items_from names unknown instrument {f.items_from.instrument}")
            by_id = {it.id: it for it in source.items}
            unknown = [i for i in f.items_from.items if i not in by_id]
            if unknown:
                raise DefinitionError(f"{f.id}: items_from names unknown items {unknown}")
            # A borrowed item keeps its prompt and options but not its skip logic: AUDIT-C's
            # items are always asked.
            items = [by_id[i].model_copy(update={"enable_when": None}) for i in f.items_from.items]
            owns = False
        else:
            items, owns = list(f.items), True
        ids = [it.id for it in items]
        if len(set(ids)) != len(ids):
            raise DefinitionError(f"{f.id}: duplicate item ids")
        scored = f.scoring.items or ids
        refs = set(scored) | set(_rule_items(f.positive))
        refs |= {r for it in items if it.enable_when for r in _rule_items(it.enable_when)}
        unknown = sorted(refs - set(ids))
        if unknown:
            raise DefinitionError(f"{f.id}: rules name items that are not in the instrument: {unknown}")
        by_id = {it.id: it for it in items}
        max_total = sum(by_id[i].max_points for i in scored)
        for b in f.bands:
            if b.min > b.max:
                raise DefinitionError(f"{f.id}: band {b.name} has min > max")
        covered = sorted(v for b in f.bands for v in range(b.min, b.max + 1))
        if f.bands and covered != list(range(0, max_total + 1)):
            raise DefinitionError(f"{f.id}: bands must cover 0..{max_total} exactly once")
        out.append(
            Instrument(
                id=f.id,
                title=f.title,
                domain=f.domain,
                section=f.section,
                version=f.version,
                published=f.published,
                source=f.source,
                licence=f.licence,
                preamble=f.preamble,
                unit_note=f.unit_note,
                items=items,
                owns_items=owns,
                scored_items=scored,
                bands=f.bands,
                positive=f.positive,
                positive_source=f.positive_source,
                max_total=max_total,
            )
        )
    return out


def load_registry(extra_dir: Path | None = None) -> Registry:
    """Load the shipped definitions, then a site's folder (same id replaces the shipped file)."""
    files: dict[str, InstrumentFile] = {}
    dirs = [SHIPPED_DIR] + ([extra_dir] if extra_dir else [])
    for d in dirs:
        if not d.is_dir():
            raise DefinitionError(f"instrument folder {d} does not exist")
        for path in sorted(d.glob("*.yaml")):
            f = _read(path)
            if f.id != path.stem:
                raise DefinitionError(f"{path.name}: id {f.id!r} must match the file name")
            files[f.id] = f
    return Registry(_resolve(files))
