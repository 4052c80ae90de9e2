"""Costs measured inside one process, without HTTP: model inference and explanation, court report PDF.

Filled in when the model and court-report code are part of the build (see `measure_all`).
"""

from __future__ import annotations


def measure_all(notes: list[str]) -> list[tuple[str, str, str, str]]:
    """(what, figure, goal, met) rows for the results table."""
    notes.append("Model inference and court report PDF: not measured (their code is not in this build).")
    return []
