"""The example Bundle shown in the documentation, built by the real export code from made-up answers.

`screening fhir-example` prints it; a test checks that the README (FHIR section) shows exactly this output, so the
documentation cannot drift from what the service sends.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from screening.fhir.bundle import Exporter, build_bundle
from screening.instruments.registry import Registry, load_registry
from screening.screens.models import Screen, ScreenStatus

# Made up: no real person. GAD-7 and AUDIT-C only, to keep the example short.
EXAMPLE_ANSWERS = {
    "gad7_1": 2, "gad7_2": 2, "gad7_3": 1, "gad7_4": 3, "gad7_5": 1, "gad7_6": 0, "gad7_7": 2,
    "audit_1": 2, "audit_2": 1, "audit_3": 1,
}


def example_bundle(registry: Registry | None = None) -> str:
    """The documented example: a final screen, exported pseudonymised, as indented JSON."""
    registry = registry or load_registry()
    at = datetime(2026, 3, 14, 2, 40, tzinfo=UTC)
    screen = Screen(
        id="00000000-0000-4000-8000-000000000001", custody_record="CR/00042/26", date_of_birth=date(1990, 5, 17),
        sex="female", custody_suite="Leeds Central", status=ScreenStatus.final.value, created_at=at,
        updated_at=at, finalised_at=at,
    )
    exporter = Exporter(base_url="https://ld-screening.invalid/fhir", person_key=b"documentation-example-key")
    bundle = build_bundle(registry, exporter, screen, EXAMPLE_ANSWERS, identified=False, generated_at=at)
    return json.dumps(bundle, indent=2, ensure_ascii=False)
