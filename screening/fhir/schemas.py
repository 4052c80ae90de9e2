"""The FHIR R4 `QuestionnaireResponse` the import accepts.

Every element R4 defines is accepted (those the import does not use are read and ignored); anything
else is refused, as FHIR's JSON rules require. The answer's `value[x]` types are all declared, so a
wrongly typed answer reaches the import, which names the item's linkId in its error.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FHIR_MEDIA_TYPE = "application/fhir+json"


class _Element(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="Element id (ignored).")
    extension: list[dict[str, Any]] | None = Field(default=None, description="Extensions (ignored).")


class CodingIn(_Element):
    system: str | None = Field(default=None, description="Code system; when given it must be the option's.")
    version: str | None = Field(default=None, description="Code system version (ignored).")
    code: str | None = Field(default=None, description="The answer option's code, as in the Questionnaire.")
    display: str | None = Field(default=None, description="Display text (ignored).")
    userSelected: bool | None = Field(default=None, description="Ignored.")


class AnswerIn(_Element):
    valueBoolean: bool | None = Field(default=None, description="Answer to a yes/no (`boolean`) item.")
    valueCoding: CodingIn | None = Field(default=None, description="Answer to a `choice` item: one answer option.")
    valueDecimal: Any = Field(default=None, description="Not used by any item; refused.")
    valueInteger: Any = Field(default=None, description="Not used by any item; refused.")
    valueDate: Any = Field(default=None, description="Not used by any item; refused.")
    valueDateTime: Any = Field(default=None, description="Not used by any item; refused.")
    valueTime: Any = Field(default=None, description="Not used by any item; refused.")
    valueString: Any = Field(default=None, description="Not used by any item; refused.")
    valueUri: Any = Field(default=None, description="Not used by any item; refused.")
    valueAttachment: Any = Field(default=None, description="Not used by any item; refused.")
    valueQuantity: Any = Field(default=None, description="Not used by any item; refused.")
    valueReference: Any = Field(default=None, description="Not used by any item; refused.")
    modifierExtension: list[dict[str, Any]] | None = Field(default=None, description="Refused if present.")
    item: list[ItemIn] | None = Field(default=None, description="Nested items (none of our items nest).")

    def values(self) -> dict[str, Any]:
        """The value[x] elements that are present."""
        return {k: v for k, v in self if k.startswith("value") and v is not None}


class ItemIn(_Element):
    linkId: str = Field(description="The item id (the Questionnaire item's linkId).")
    definition: str | None = Field(default=None, description="Ignored.")
    text: str | None = Field(default=None, description="Item text (ignored: the definition's wording is ours).")
    answer: list[AnswerIn] | None = Field(
        default=None, description="At most one answer; no answer leaves the item as it is."
    )
    item: list[ItemIn] | None = Field(default=None, description="Items of a group (flattened).")
    modifierExtension: list[dict[str, Any]] | None = Field(default=None, description="Refused if present.")


class QuestionnaireResponseIn(_Element):
    """A FHIR R4 QuestionnaireResponse for one of the service's Questionnaires."""

    resourceType: Literal["QuestionnaireResponse"] = Field(description="Must be `QuestionnaireResponse`.")
    meta: dict[str, Any] | None = Field(default=None, description="Ignored.")
    implicitRules: str | None = Field(default=None, description="Refused if present: we cannot honour other rules.")
    language: str | None = Field(default=None, description="Ignored.")
    text: dict[str, Any] | None = Field(default=None, description="Narrative (ignored).")
    contained: list[dict[str, Any]] | None = Field(default=None, description="Ignored.")
    modifierExtension: list[dict[str, Any]] | None = Field(default=None, description="Refused if present.")
    identifier: dict[str, Any] | None = Field(default=None, description="Ignored.")
    basedOn: list[dict[str, Any]] | None = Field(default=None, description="Ignored.")
    partOf: list[dict[str, Any]] | None = Field(default=None, description="Ignored.")
    questionnaire: str = Field(
        description="Canonical URL of the instrument's Questionnaire, as served by "
        "`GET /api/v1/instruments/{id}/fhir` (a `|version` suffix is allowed)."
    )
    status: Literal["in-progress", "completed", "amended", "entered-in-error", "stopped"] = Field(
        description="Response status; `entered-in-error` is refused (it must not fill a screen)."
    )
    subject: dict[str, Any] | None = Field(default=None, description="Ignored: the screen in the URL is the subject.")
    encounter: dict[str, Any] | None = Field(default=None, description="Ignored.")
    authored: str | None = Field(default=None, description="Ignored: the server records when it stored the answers.")
    author: dict[str, Any] | None = Field(default=None, description="Ignored: the signed-in user is recorded.")
    source: dict[str, Any] | None = Field(default=None, description="Ignored.")
    item: list[ItemIn] = Field(default_factory=list, description="Answered items; linkIds are item ids.")


AnswerIn.model_rebuild()
ItemIn.model_rebuild()
