"""Which model the service serves, and promoting a new one.

Order of precedence: ``SCREENING_MODEL_DIR`` when set (an operator's explicit choice), else the active
promoted model recorded in the database, else the default shipped in ``models/default``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from screening.config import REPO_ROOT, Settings
from screening.db import utcnow
from screening.model.exceptions import ModelMismatchError
from screening.model.models import ModelVersion
from screening.model.service import MANIFEST, ModelBundle, load_model

SHIPPED_MODEL_DIR = REPO_ROOT / "models" / "default"
PROMOTED_SUBDIR = "models"


def active_version(session: Session) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.active.is_(True)))


def resolve_model_dir(settings: Settings, session_factory: sessionmaker[Session]) -> tuple[Path, str]:
    """The artifact folder to serve and where the choice came from (configured, promoted or shipped)."""
    if settings.model_dir is not None:
        return settings.model_dir, "configured"
    with session_factory() as session:
        active = active_version(session)
        if active is not None:
            return settings.data_dir / active.path, "promoted"
    return SHIPPED_MODEL_DIR, "shipped"


def load_active(settings: Settings, session_factory: sessionmaker[Session]) -> tuple[ModelBundle, str]:
    """Load and verify the model to serve; the error names the folder and what differs."""
    path, source = resolve_model_dir(settings, session_factory)
    try:
        return load_model(path), source
    except ModelMismatchError as exc:
        raise ModelMismatchError(f"refusing to start with the {source} model: {exc}") from exc


def promote(session: Session, settings: Settings, source: Path, promoted_by: str) -> ModelVersion:
    """Verify an artifact, copy it under the data folder, and make it the active model.

    The copy is verified again, so what is recorded is what will be served. Promoting a version that
    is already known re-activates it (after checking the stored copy is the same artifact).
    """
    candidate = load_model(source)
    rel = Path(PROMOTED_SUBDIR) / candidate.version
    dest = settings.data_dir / rel
    if dest.exists():
        stored = load_model(dest)
        if stored.sha256 != candidate.sha256:
            raise ModelMismatchError(
                f"{dest} already holds a different artifact with version {candidate.version}; refusing to overwrite"
            )
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        names = [MANIFEST, *candidate.manifest["files"]]
        names += [p.name for p in source.iterdir() if p.suffix in {".md", ".png"}]
        tmp.mkdir()
        for name in names:
            shutil.copy2(source / name, tmp / name)
        load_model(tmp)
        tmp.rename(dest)
    session.execute(update(ModelVersion).values(active=False))
    row = session.scalar(select(ModelVersion).where(ModelVersion.version == candidate.version))
    metrics = {
        d: {k: m.get(k) for k in ("auroc", "baseline_auroc", "sensitivity", "specificity", "alert_rate", "threshold")}
        for d, m in candidate.manifest.get("metrics", {}).items()
    }
    if row is None:
        row = ModelVersion(
            version=candidate.version,
            sha256=candidate.sha256,
            path=str(rel),
            active=True,
            promoted_by=promoted_by,
            metrics=metrics,
        )
        session.add(row)
    else:
        row.active = True
        row.promoted_by = promoted_by
        row.promoted_at = utcnow()
    session.flush()
    return row


def list_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())))
