"""Responses that the hot routes serialise themselves.

A route that returns a schema object makes FastAPI dump it to a dict, validate the dict against the
response model and serialise the result. The hot routes build their schema from rows the service has
just read and checked, so they serialise it once, with the schema's own serialiser; the response
model stays on the route for the API docs and for the contract tests, which check every response
against it.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel

JSON = "application/json"


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    return Response(type(model).__pydantic_serializer__.to_json(model), status_code=status_code, media_type=JSON)


def json_response(body: bytes, status_code: int = 200) -> Response:
    """A body already serialised from a schema (a memoised one: see `screening.model.assessments`)."""
    return Response(body, status_code=status_code, media_type=JSON)
