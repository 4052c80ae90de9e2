"""Imports every domain's tables so `Base.metadata` is complete (for Alembic and tests)."""

from screening.audit import models as audit_models
from screening.auth import models as auth_models
from screening.db import Base
from screening.model import models as model_models
from screening.retention import models as retention_models
from screening.routes import models as route_models
from screening.screens import models as screen_models

__all__ = [
    "Base", "audit_models", "auth_models", "model_models", "retention_models", "route_models", "screen_models",
]
