from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from screening.auth.dependencies import Authorize
from screening.auth.policy import Permission
from screening.auth.schemas import Principal
from screening.model.service import ModelBundle


def get_model(request: Request) -> ModelBundle:
    """The model verified and loaded in the app's lifespan."""
    bundle: ModelBundle = request.app.state.model
    return bundle


ModelDep = Annotated[ModelBundle, Depends(get_model)]
ModelReader = Annotated[Principal, Depends(Authorize(Permission.models_read))]
