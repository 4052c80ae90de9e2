"""Code systems, extension URLs and the LOINC codes the FHIR export uses, each with where it was checked.

Only codes we could look up on loinc.org are used; everything else gets a code from the service's own
code system (`{fhir_base_url}/CodeSystem/...`), so a receiving system never sees a guessed LOINC code.
"""

from __future__ import annotations

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ADMINISTRATIVE_GENDER = "http://hl7.org/fhir/administrative-gender"

# R4 core extension (itemWeight is its R5 successor): the points an answer option scores.
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
# Structured Data Capture (SDC) extensions. FHIR's own enableWhen can only compare one answer with a
# constant; AUDIT items 4-10 depend on the AUDIT-C *sum*, so that skip logic needs a FHIRPath expression.
SDC_CALCULATED = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
SDC_ENABLE_WHEN = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression"

# Panels (the Questionnaire.code) and total scores (the total item's code and the Observation.code).
# Checked on loinc.org:
#   44249-1 PHQ-9 quick depression assessment panel; 44261-6 PHQ-9 total score [Reported]
#     (https://loinc.org/44261-6, "Member of these panels: 44249-1").
#   69737-5 GAD-7 panel; 70274-6 GAD-7 total score [Reported.PHQ]
#     (https://loinc.org/69729-2 lists 70274-6; 69737-5 is the GAD-7 panel code given in the GAD-7
#     article's medical-test infobox, Wikipedia "Generalized Anxiety Disorder 7").
#   72109-2 AUDIT-C panel; 75626-2 Total score [AUDIT-C] (https://loinc.org/75626-2).
#   72110-0 AUDIT panel; 75624-7 Total score [AUDIT] (https://loinc.org/75624-7).
#   82666-9 DAST-10 panel; 82667-7 Total score [DAST-10], time aspect 12 months (https://loinc.org/82667-7).
# BJMHS, and the project's own question sets, have no LOINC codes: they use the local code system.
# A display is given only where the LOINC long name was seen (not for 69737-5).
PANEL_CODES: dict[str, tuple[str, str | None]] = {
    "phq9": ("44249-1", "PHQ-9 quick depression assessment panel [Reported.PHQ]"),
    "gad7": ("69737-5", None),
    "auditc": ("72109-2", "Alcohol Use Disorder Identification Test - Consumption [AUDIT-C]"),
    "audit": ("72110-0", "Alcohol Use Disorder Identification Test [AUDIT]"),
    "dast10": ("82666-9", "Drug Abuse Screening Test-10 [DAST-10]"),
}
TOTAL_CODES: dict[str, tuple[str, str]] = {
    "phq9": ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
    "gad7": ("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"),
    "auditc": ("75626-2", "Total score [AUDIT-C]"),
    "audit": ("75624-7", "Total score [AUDIT]"),
    "dast10": ("82667-7", "Total score [DAST-10]"),
}

# Item codes, in item order, from the PHQ-SADS panel listing (https://loinc.org/69729-2), which names
# each PHQ-9 and GAD-7 item with its code. AUDIT and DAST-10 item codes were not checked, so not used.
ITEM_CODES: dict[str, str] = {
    "phq9_1": "44250-9",  # Little interest or pleasure in doing things
    "phq9_2": "44255-8",  # Feeling down, depressed, or hopeless
    "phq9_3": "44259-0",  # Trouble falling or staying asleep, or sleeping too much
    "phq9_4": "44254-1",  # Feeling tired or having little energy
    "phq9_5": "44251-7",  # Poor appetite or overeating
    "phq9_6": "44258-2",  # Feeling bad about yourself
    "phq9_7": "44252-5",  # Trouble concentrating on things
    "phq9_8": "44253-3",  # Moving or speaking so slowly ... or being so fidgety
    "phq9_9": "44260-8",  # Thoughts that you would be better off dead, or of hurting yourself
    "gad7_1": "69725-0",  # Feeling nervous, anxious or on edge
    "gad7_2": "68509-9",  # Not being able to stop or control worrying
    "gad7_3": "69733-4",  # Worrying too much about different things
    "gad7_4": "69734-2",  # Trouble relaxing
    "gad7_5": "69735-9",  # Being so restless that it is hard to sit still
    "gad7_6": "69689-8",  # Becoming easily annoyed or irritable
    "gad7_7": "69736-7",  # Feeling afraid as if something awful might happen
}

# LOINC answer list LL358-3 (https://loinc.org/LL358-3): Not at all / Several days / More than half the
# days / Nearly every day, scoring 0-3, used by the PHQ-9 and GAD-7 items above.
LL358_3: tuple[tuple[str, str, int], ...] = (
    ("LA6568-5", "Not at all", 0),
    ("LA6569-3", "Several days", 1),
    ("LA6570-1", "More than half the days", 2),
    ("LA6571-9", "Nearly every day", 3),
)
ANSWER_LISTS: dict[str, tuple[tuple[str, str, int], ...]] = {"phq9": LL358_3, "gad7": LL358_3}


def local_system(base_url: str, name: str) -> str:
    """A code system or naming system of this service, under its FHIR base URL."""
    return f"{base_url.rstrip('/')}/{name}"
