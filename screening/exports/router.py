from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from screening.audit import service as audit
from screening.auth.dependencies import Authorize
from screening.auth.policy import Permission
from screening.auth.schemas import Principal
from screening.dependencies import RegistryDep, SessionDep, SettingsDep
from screening.exports import service
from screening.exports.service import ExportFormat

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])
DataScientist = Annotated[Principal, Depends(Authorize(Permission.exports_read))]


@router.get(
    "/training-data",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
                     "description": "One row per final screen; see the README (security section) for the columns."}},
)
def training_data(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    registry: RegistryDep,
    user: DataScientist,
    format: Annotated[ExportFormat, Query(description="csv or parquet.")] = ExportFormat.csv,
) -> StreamingResponse:
    """Final screens, pseudonymised: keyed-hash person id, month, age band; no direct identifiers. Audited."""
    rows = service.count_rows(session)
    audit.record(session, user.actor, "export.training_data", "export", None, {"format": format.value, "rows": rows})
    body = service.stream(format, request.app.state.session_factory, registry, settings.person_key.get_secret_value())
    return StreamingResponse(
        body,
        media_type=service.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="training-data.{format.value}"'},
    )
