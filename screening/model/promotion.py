"""Which model the service serves, and promoting a new one.

Order of precedence: ``SCREENING_MODEL_DIR`` when set (an operator's explicit choice), else the active
promoted model recorded in the database, else the default shipped in ``models/default``.

A promoted model's files are kept in the database with its record (`ModelFile`). Each instance serves its own
copy under its data folder, written out from the database at start where the copy is missing or is not the
artifact promoted: instances share the database and nothing else.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from screening.config import REPO_ROOT, Settings
from screening.db import utcnow
from screening.model.exceptions import ModelMismatchError
from screening.model.models import ModelFile, ModelVersion
from screening.model.service import MANIFEST, ModelBundle, load_model

SHIPPED_MODEL_DIR = REPO_ROOT / "models" / "default"
PROMOTED_SUBDIR = "models"


def active_version(session: Session) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.active.is_(True)))


def load_active(settings: Settings, session_factory: sessionmaker[Session]) -> tuple[ModelBundle, str]:
    """Load and verify the model to serve, and where the choice came from (configured, promoted or shipped); the
    error names the folder and what differs."""
    source = "configured"
    try:
        if settings.model_dir is not None:
            return load_model(settings.model_dir), source
        # The record only, in a session of its own: on SQLite a session holds the write lock, which no load of a
        # model should keep from the other workers and instances.
        with session_factory() as session:
            active = active_version(session)
        if active is not None:
            source = "promoted"
            return _promoted(settings, session_factory, active), source
        source = "shipped"
        return load_model(SHIPPED_MODEL_DIR), source
    except ModelMismatchError as exc:
        raise ModelMismatchError(f"refusing to start with the {source} model: {exc}") from exc


def _promoted(settings: Settings, session_factory: sessionmaker[Session], version: ModelVersion) -> ModelBundle:
    """The promoted model from this instance's copy, written out from the database first where the copy is missing
    or is not the artifact promoted (promoted from another host, or a file of it changed since)."""
    folder = settings.data_dir / version.path
    folder.parent.mkdir(parents=True, exist_ok=True)
    # The workers of one host start at once: one looks at the copy and writes it out while the others wait.
    with _locked(folder.parent / ".lock"):
        with contextlib.suppress(ModelMismatchError):
            bundle = load_model(folder)
            if bundle.sha256 == version.sha256:
                return bundle
        with session_factory() as session:
            files = [(name, content) for name, content in session.execute(
                select(ModelFile.name, ModelFile.content).where(ModelFile.model_version_id == version.id))]
        if not files:
            # Promoted before its files were kept in the database (migration 0008): its folder is all there is.
            return _the_promoted(load_model(folder), version, folder)
        return _write_out(folder, files, version)


def _write_out(folder: Path, files: Sequence[tuple[str, bytes]], version: ModelVersion) -> ModelBundle:
    """The database's copy written out in place of `folder`'s, verified before it replaces anything."""
    new = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, content in files:
            (new / Path(name).name).write_bytes(content)
        try:
            _the_promoted(load_model(new), version, new)
        except ModelMismatchError as exc:
            raise ModelMismatchError(f"the database's copy of {version.version} is refused: {exc}") from exc
        if folder.exists():
            old = new.with_name(new.name + ".old")
            folder.rename(old)
            shutil.rmtree(old)
        new.rename(folder)
    finally:
        shutil.rmtree(new, ignore_errors=True)
    return _the_promoted(load_model(folder), version, folder)


def _the_promoted(bundle: ModelBundle, version: ModelVersion, where: Path) -> ModelBundle:
    if bundle.sha256 != version.sha256:
        raise ModelMismatchError(f"model at {where} refused: manifest sha256 {bundle.sha256[:12]}..., promoted "
                                 f"{version.version} has {version.sha256[:12]}...")
    return bundle


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def promote(session: Session, settings: Settings, source: Path, promoted_by: str) -> ModelVersion:
    """Verify an artifact, copy it under the data folder and into the database, and make it the active model.

    The copy is verified again, so what is recorded is what will be served. Promoting a version that
    is already known re-activates it (after checking the stored copy is the same artifact), and stores its
    files in the database if they are not there yet (promoted before migration 0008).
    """
    candidate = load_model(source)
    row = session.scalar(select(ModelVersion).where(ModelVersion.version == candidate.version))
    if row is not None and row.sha256 != candidate.sha256:
        raise ModelMismatchError(f"version {candidate.version} was promoted before as a different artifact (manifest "
                                 f"sha256 {row.sha256[:12]}...); refusing to overwrite")
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
    if session.scalar(select(ModelFile.name).where(ModelFile.model_version_id == row.id).limit(1)) is None:
        session.add_all(ModelFile(model_version_id=row.id, name=path.name, content=path.read_bytes())
                        for path in sorted(dest.iterdir()) if path.is_file())
        session.flush()
    return row


def stored_versions(session: Session) -> set[int]:
    """The ids of the promoted versions whose files are in the database (all but those promoted before 0008)."""
    return set(session.scalars(select(ModelFile.model_version_id).distinct()))


def list_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())))
