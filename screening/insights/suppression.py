"""Small-number suppression for published counts: primary, then secondary (complementary).

Primary: every count below the threshold (5), zero included, is withheld and shown as "<5" (a
published zero would say "nobody", and would let neighbouring cells be worked out).

Secondary: counts related by addition (a total and its parts: screens = declined + completed + open;
the "All suites" row = the sum of the suites) form a group. Within a group, the withheld parts must
not be recoverable by subtraction, nor narrowed to a small range: whenever the withheld parts number
exactly one, or add up to less than the threshold, the smallest part still shown is withheld as well
(and, if no part is left, the total); a withheld total needs at least one withheld part, or adding
the parts would give it back. Groups share cells, so this repeats until nothing changes.
Derived figures (rates) are withheld whenever their numerator or denominator is.

This is the cell-suppression rule used in official statistics (ONS and NHS Digital disclosure
control guidance), applied group by group; it does not solve the general linear-programming attack
on large multi-way tables, which is why the published tables are kept to two additive dimensions.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

THRESHOLD = 5
MARKER: Literal["<5"] = "<5"


@dataclass(frozen=True)
class Group:
    """An additive relation: `total` = sum of `parts`."""

    total: Hashable
    parts: tuple[Hashable, ...]


def suppress(values: Mapping[Hashable, int], groups: Iterable[Group], threshold: int = THRESHOLD) -> set[Hashable]:
    """The keys of every cell to withhold, primary and secondary."""
    hidden = {k for k, v in values.items() if v < threshold}
    groups = [g for g in groups if g.parts]  # a total without parts relates to nothing
    changed = True
    while changed:
        changed = False
        for g in groups:
            while _exposed(g, values, hidden, threshold):
                shown = sorted((p for p in g.parts if p not in hidden), key=lambda p: (values[p], str(p)))
                if not shown and g.total in hidden:
                    break  # everything in the group is withheld already
                hidden.add(shown[0] if shown else g.total)
                changed = True
    return hidden


def _exposed(g: Group, values: Mapping[Hashable, int], hidden: set[Hashable], threshold: int) -> bool:
    """Whether the withheld parts of a group could be recovered or narrowed from what is shown."""
    withheld = [p for p in g.parts if p in hidden]
    if g.total in hidden:
        # A withheld total is recovered by adding its parts unless at least one part is withheld too.
        return not withheld
    if not withheld:
        return False
    return len(withheld) == 1 or sum(values[p] for p in withheld) < threshold


def shown(value: int, key: Hashable, hidden: set[Hashable]) -> int | Literal["<5"]:
    return MARKER if key in hidden else value


def rate(num: Hashable, den: Hashable, values: Mapping[Hashable, int], hidden: set[Hashable]) -> float | None:
    """num/den to 3 places, or None when either is withheld (or the denominator is zero)."""
    if num in hidden or den in hidden or not values[den]:
        return None
    return round(values[num] / values[den], 3)


def group(total: Hashable, parts: Sequence[Hashable]) -> Group:
    return Group(total, tuple(parts))
