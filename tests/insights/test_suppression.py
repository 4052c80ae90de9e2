from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from screening.insights.suppression import MARKER, group, rate, shown, suppress


def test_counts_below_five_including_zero_are_withheld() -> None:
    values = {"a": 0, "b": 4, "c": 5, "d": 120}
    hidden = suppress(values, [])
    assert hidden == {"a", "b"}
    assert [shown(values[k], k, hidden) for k in "abcd"] == [MARKER, MARKER, 5, 120]


def test_a_total_with_exactly_one_withheld_part_withholds_the_next_smallest() -> None:
    values = {"total": 30, "leeds": 3, "bradford": 12, "wakefield": 15}
    hidden = suppress(values, [group("total", ["leeds", "bradford", "wakefield"])])
    # Without the second cell, leeds = 30 - 12 - 15.
    assert hidden == {"leeds", "bradford"}


def test_withheld_parts_adding_to_less_than_five_withhold_another() -> None:
    values = {"total": 50, "declined": 2, "open": 1, "completed": 47}
    hidden = suppress(values, [group("total", ["declined", "open", "completed"])])
    # declined + open = 3 would be known from 50 - 47, narrowing both to 0..3.
    assert hidden == {"declined", "open", "completed"}


def test_a_withheld_total_needs_a_withheld_part() -> None:
    values = {"t": 20, "a": 10, "b": 10, "outer": 40, "t2": 20}
    groups = [group("t", ["a", "b"]), group("outer", ["t", "t2"])]
    # Force t hidden through an outer relation: outer shown, t and t2 both >= 5, so nothing is hidden...
    assert suppress(values, groups) == set()
    values["t2"] = 3
    hidden = suppress(values, groups)
    # t2 < 5 hides t too (its partner in outer); t hidden would be a + b, so a part of t is hidden as well.
    assert {"t2", "t"} <= hidden and ({"a", "b"} & hidden)


def test_suppression_cascades_across_groups() -> None:
    # Rows are suites, columns statuses, with row and column totals: a 2-way table.
    v = {("L", "d"): 3, ("L", "c"): 20, ("L", "t"): 23, ("B", "d"): 9, ("B", "c"): 30, ("B", "t"): 39,
         ("A", "d"): 12, ("A", "c"): 50, ("A", "t"): 62}
    groups = [group((r, "t"), [(r, "d"), (r, "c")]) for r in "LBA"]
    groups += [group(("A", c), [("L", c), ("B", c)]) for c in "dct"]
    hidden = suppress(v, groups)
    assert_protected(v, groups, hidden)
    assert ("L", "d") in hidden and ("L", "c") in hidden and ("B", "d") in hidden


def test_rates_are_withheld_with_their_numerator_or_denominator() -> None:
    values = {"n": 3, "d": 40, "n2": 10}
    hidden = suppress(values, [])
    assert rate("n", "d", values, hidden) is None
    assert rate("n2", "d", values, hidden) == 0.25


def assert_protected(values: dict, groups: list, hidden: set) -> None:
    for k, v in values.items():
        if v < 5:
            assert k in hidden
    for g in groups:
        withheld = [p for p in g.parts if p in hidden]
        if g.total in hidden:
            assert withheld, g
        elif withheld:
            assert len(withheld) >= 2 and sum(values[p] for p in withheld) >= 5, g


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), min_size=3, max_size=3), min_size=1, max_size=5))
def test_no_withheld_cell_can_be_recovered_from_any_row_or_column(table: list[list[int]]) -> None:
    values: dict = {}
    for r, row in enumerate(table):
        for c, v in enumerate(row):
            values[(r, c)] = v
        values[(r, "t")] = sum(row)
    for c in [*range(3), "t"]:
        values[("all", c)] = sum(values[(r, c)] for r in range(len(table)))
    groups = [group((r, "t"), [(r, c) for c in range(3)]) for r in [*range(len(table)), "all"]]
    groups += [group(("all", c), [(r, c) for r in range(len(table))]) for c in [*range(3), "t"]]
    assert_protected(values, groups, suppress(values, groups))


def test_groups_without_parts_or_fully_withheld_terminate() -> None:
    assert suppress({"t": 0}, [group("t", [])]) == {"t"}
    assert suppress({"t": 3, "a": 1, "b": 2}, [group("t", ["a", "b"])]) == {"t", "a", "b"}
