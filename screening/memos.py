"""Memos kept with the artifact their values are derived from (a model's `ModelBundle.derived`, a rulebook's
`Rulebook.derived`): made on first use, and dropped with the artifact, so a new model or new rules never
meet an entry derived from the old."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


def kept_with(derived: dict[Any, Any], key: Hashable, make: Callable[[], T]) -> T:
    """The memo under `key` in an artifact's `derived` dict, made by `make` the first time it is asked for."""
    memo: T | None = derived.get(key)
    if memo is None:
        memo = derived[key] = make()
    return memo
