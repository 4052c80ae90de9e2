"""The yardstick: a bare FastAPI endpoint that validates 50 integer fields and does nothing else.

Served with the same uvicorn settings as the service, so the ratios in bench/results.md show what
authentication, the database, the audit chain and the model cost on top of the framework itself.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, create_model

Fifty = create_model(  # type: ignore[call-overload]
    "Fifty",
    __config__=ConfigDict(extra="forbid"),
    **{f"f{i}": (int, Field(ge=0, le=1000)) for i in range(50)},
)


class Ack(BaseModel):
    total: int


app = FastAPI()


@app.post("/minimal", response_model=Ack)
async def minimal(body: Fifty) -> Ack:
    """Validate and answer: the cheapest endpoint the framework can serve."""
    return Ack(total=sum(body.model_dump().values()))


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
