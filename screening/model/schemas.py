"""API shapes of an assessment and of model artifacts (pinned in issue 3)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from screening.instruments.schemas import ScoreResult
from screening.routes.schemas import RecommendationRead


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ContributionRead(_Read):
    feature: str = Field(description="Feature name in the model's contract, e.g. `bjmhs_8` or `phq9_total`.")
    label: str = Field(description="The feature in plain words.")
    value: str = Field(description="The answer as a person reads it: the option chosen, yes/no, `not answered`.")
    contribution: float = Field(description="Exact SHAP value in log-odds: positive raises the probability.")


class MissingItemRead(_Read):
    item: str = Field(description="Item id that the model reads but the screen has not answered.")
    label: str = Field(description="The question in plain words.")


class DomainAssessmentRead(_Read):
    probability: float = Field(ge=0, le=1, description="Calibrated probability that a full assessment finds this need.")
    raw_score: float = Field(description="Calibrated log-odds; equals base_value plus the sum of contributions.")
    base_value: float = Field(description="Log-odds of an average screen in the training background.")
    threshold: float = Field(description="Probability at or above which a full assessment is suggested.")
    needs_assessment: bool = Field(description="Whether the probability meets the threshold.")
    contributions: list[ContributionRead] = Field(
        description="Every feature with a non-zero contribution, largest magnitude first."
    )
    missing: list[MissingItemRead] = Field(
        description="Questions this domain's model reads that were not answered (skip-logic items excluded)."
    )
    answered: int = Field(
        default=0,
        description="How many of this domain's own questions were answered. With none, the result rests on "
        "imputed values alone and should not be read as a suggestion.",
    )


class ModelRef(BaseModel):
    version: str = Field(description="Model version from its manifest.")
    sha256: str = Field(description="sha256 of the model's manifest, which pins every file's sha256.")


class AssessmentRead(BaseModel):
    model: ModelRef = Field(description="The model that produced this assessment (recorded with it).")
    domains: dict[str, DomainAssessmentRead] = Field(
        description="Per need domain: mental_health, learning_disability, substance_misuse."
    )
    instruments: list[ScoreResult] = Field(description="Scores of the instruments whose items are all answered.")
    recommendations: list[RecommendationRead] = Field(
        default_factory=list,
        description="Recommended diversion routes, most urgent first, each with its reasons, local service and "
        "decision: the same as `GET /screens/{id}/recommendations`, from the same reading of the screen.")


class DomainMetricsRead(BaseModel):
    auroc: float | None = Field(default=None, description="Held-out AUROC recorded at training.")
    baseline_auroc: float | None = Field(default=None, description="Held-out AUROC of the instrument rule.")
    sensitivity: float | None = Field(default=None, description="Held-out sensitivity at the threshold.")
    specificity: float | None = Field(default=None, description="Held-out specificity at the threshold.")
    alert_rate: float | None = Field(default=None, description="Share of screens that meet the threshold.")
    threshold: float | None = Field(default=None, description="Probability threshold for a full assessment.")


class ModelVersionRead(_Read):
    version: str = Field(description="Model version from its manifest.")
    sha256: str = Field(description="sha256 of the model's manifest.")
    active: bool = Field(description="Whether this is the active promoted model.")
    promoted_at: datetime = Field(description="When it was promoted (UTC).")
    promoted_by: str = Field(description="Who promoted it.")
    metrics: dict[str, DomainMetricsRead] = Field(description="Headline metrics per domain from its manifest.")


class ActiveModelRead(BaseModel):
    version: str = Field(description="Model version being served.")
    sha256: str = Field(description="sha256 of its manifest.")
    source: str = Field(description="`configured` (SCREENING_MODEL_DIR), `promoted` (database) or `shipped` default.")
    contract_hash: str = Field(description="Feature contract hash the model was verified against.")
    created_by: str | None = Field(default=None, description="The command that trained it.")
    thresholds: dict[str, float] = Field(description="Probability thresholds per domain.")
    metrics: dict[str, DomainMetricsRead] = Field(description="Held-out metrics per domain from its manifest.")
