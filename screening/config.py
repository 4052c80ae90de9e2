"""One `Settings` object for the whole service, read from `SCREENING_*` environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRET = "change-me-development-only-never-use-in-production"  # noqa: S105 - the value production refuses
REPO_ROOT = Path(__file__).resolve().parent.parent


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCREENING_", extra="ignore")

    environment: Environment = Field(default=Environment.development, description="`production` refuses placeholder secrets.")
    data_dir: Path = Field(default=Path("./var"), description="Where the SQLite database and promoted models live.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite file in data_dir.")
    secret_key: SecretStr = Field(default=SecretStr(PLACEHOLDER_SECRET), description="Signs bearer tokens.")
    person_key: SecretStr = Field(
        default=SecretStr(PLACEHOLDER_SECRET), description="Keys the hash of person references and export ids."
    )
    person_key_previous: list[SecretStr] = Field(
        default_factory=list,
        description="Earlier person keys, newest first (JSON list), kept after a rotation so repeat contacts "
        "still link; matched old rows are re-keyed to `person_key` as people are seen again.",
    )
    mcn_min_contacts: int = Field(
        default=3, ge=1, description="Multiple and complex needs: contacts in 12 months, this one included."
    )
    mcn_min_domains: int = Field(
        default=2, ge=1, description="Multiple and complex needs: need domains recorded across those contacts."
    )
    mcn_housing_with_any: bool = Field(
        default=True, description="Multiple and complex needs: a housing need with any other need is enough."
    )
    token_ttl_seconds: int = Field(default=1800, ge=60, le=86400, description="Lifetime of a bearer token.")
    instruments_dir: Path | None = Field(default=None, description="A site's extra or replacement instrument files.")
    routes_dir: Path | None = Field(
        default=None, description="A site's `rules.yaml` and/or `directory.yaml`, replacing the shipped ones."
    )
    model_dir: Path | None = Field(default=None, description="Model artifact to serve; default: the active promoted one.")
    migrate_on_start: bool = Field(default=True, description="Run migrations when `serve` starts.")
    db_pool_size: int = Field(default=10, ge=1, description="Connections per worker (PostgreSQL).")
    db_concurrency: int | None = Field(
        default=None, ge=1,
        description="Requests per worker whose database work runs at once on the tablet's hot routes; the rest "
        "wait their turn without holding a thread. Default: 1 on SQLite (it runs one write transaction at a time "
        "anyway), 4 on PostgreSQL.",
    )
    page_size_max: int = Field(default=200, ge=1)
    max_request_bytes: int = Field(default=1_000_000, ge=1024, description="Larger request bodies answer 413.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed cross-site; none by default.")
    login_max_failures: int = Field(default=5, ge=1, description="Failed logins per user per window before 429.")
    login_window_seconds: int = Field(default=900, ge=1)
    login_ip_max_failures: int = Field(
        default=20, ge=1, description="Failed logins from one address per window before 429 (several staff share a NAT)."
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token a Prometheus scraper presents to /metrics; loopback needs none."
    )
    log_json: bool = Field(default=True, description="One JSON object per log line (false: plain text).")
    log_level: str = Field(default="INFO", description="Level of the service's logs.")
    log_requests: bool = Field(default=True, description="Log one line per request: route template, status, time.")
    retention_days: int = Field(default=2555, ge=1, description="Personal data kept this long (7 years by default).")
    fhir_base_url: str = Field(
        default="https://ld-screening.invalid/fhir",
        description="Base of the canonical URLs in FHIR exports (Questionnaires, code systems); set per site.",
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secret_in_production(self) -> Settings:
        if self.environment is Environment.production:
            for name in ("secret_key", "person_key"):
                value = getattr(self, name).get_secret_value()
                if value == PLACEHOLDER_SECRET or len(value) < 32:
                    raise ValueError(
                        f"SCREENING_{name.upper()} must be set to a random value of at least 32 characters in production"
                    )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'screening.db').resolve()}"
