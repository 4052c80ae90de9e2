"""The hot lane: the tablet's commonest taps served without FastAPI's per-request machinery.

FastAPI does a great deal for every request before a route's own code runs: it walks the included
routers to match the path, reads and JSON-decodes the body, solves the route's dependency graph and
validates each parameter. For the three routes a tablet calls on every tap (read a screen, patch its
answers, read its assessment), that was as much CPU as the minimal endpoint of bench/ costs in all.

`HotLane` is one route placed first in the app's routes. For each hot `APIRoute` it holds what FastAPI
worked out when the route was declared: the path pattern, the methods, the one dependency (a
`HotTransact`, which checks the bearer token) and the body model. A request on the happy path is
matched with that pattern, its dependency is called, its body is validated straight from the JSON
bytes by the route's own Pydantic model, and the route's own endpoint function runs. Nothing is
declared twice: the endpoints, dependencies, body models and OpenAPI entries are the routes' own.

Anything off the happy path goes to FastAPI itself, so every error answer is the one FastAPI gives:
a body that fails validation (or is not JSON, or is empty) is replayed into the route's own handler,
which then does everything in its own order (the token included), and a request whose content type
is not JSON, or whose method the route does not take, is not matched here at all. With a valid body,
errors that the dependency or the endpoint raise (401, 403, 404, 409, 422 from the service's own
checks) go to the app's exception handlers as they would from the route. While the app has any
`dependency_overrides` (a test's), the lane steps aside and FastAPI serves everything, overrides included.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, get_type_hints

from fastapi import FastAPI, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

_JSON = (b"application/json",)


@dataclass(frozen=True)
class _Lane:
    route: APIRoute
    call: Callable[..., Awaitable[Response]]
    dependency: Callable[[Request], Awaitable[Any]]
    dependency_name: str
    body_name: str
    body_model: type[BaseModel] | None
    methods: frozenset[str]

    def parse(self, scope: Scope, path: str) -> dict[str, Any] | None:
        match = self.route.path_regex.match(path)
        if match is None or scope["method"] not in self.methods:
            return None
        if self.body_model is not None and not _is_json(scope):
            return None  # FastAPI's own handling decides what a non-JSON body means
        convert = self.route.param_convertors
        return {name: convert[name].convert(value) for name, value in match.groupdict().items()}


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() in _JSON
    return False


def _lane_of(route: APIRoute) -> _Lane:
    """What FastAPI resolved for `route` at declaration, checked to be a shape the lane serves exactly."""
    dependant = route.dependant
    if (dependant.query_params or dependant.header_params or dependant.cookie_params or len(dependant.dependencies) != 1
            or len(dependant.body_params) > 1 or route.dependencies):
        raise ValueError(f"{route.path}: the hot lane serves routes with path parameters, at most one JSON body and "
                         "one dependency only")
    returns = get_type_hints(route.endpoint).get("return")
    if not inspect.iscoroutinefunction(route.endpoint) or not (isinstance(returns, type) and issubclass(returns, Response)):
        raise ValueError(f"{route.path}: the hot lane runs `async def` endpoints that build their own Response only")
    dependency = dependant.dependencies[0]
    call = dependency.call
    function = call if inspect.isfunction(call) else type(call).__call__  # a function, or an instance (HotTransact)
    if (call is None or dependency.name is None or not inspect.iscoroutinefunction(function)
            or list(inspect.signature(call).parameters) != [dependency.request_param_name]):
        raise ValueError(f"{route.path}: the hot lane needs one async dependency that takes only the request")
    body_name, body_model = "", None
    if dependant.body_params:
        field = dependant.body_params[0]
        if (not (isinstance(field.field_info.annotation, type) and issubclass(field.field_info.annotation, BaseModel))
                or getattr(field.field_info, "embed", None)):
            raise ValueError(f"{route.path}: the hot lane validates a Pydantic model body only, not embedded in another")
        body_name, body_model = field.name, field.field_info.annotation
    return _Lane(route, route.endpoint, call, dependency.name, body_name, body_model, frozenset(route.methods or ()))


class HotLane(BaseRoute):
    """One route, first in the app's routes, serving the happy path of the given routes (see module doc)."""

    def __init__(self, routes: Iterable[APIRoute], overrides: dict[Callable[..., Any], Callable[..., Any]]) -> None:
        self.lanes = tuple(_lane_of(route) for route in routes)
        self.overrides = overrides  # the app's own dict, which tests fill and empty

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and not self.overrides:
            path = get_route_path(scope)
            for lane in self.lanes:
                params = lane.parse(scope, path)
                if params is not None:
                    # "route" as FastAPI sets it: the request middleware labels metrics and logs with its path.
                    return Match.FULL, {"endpoint": lane.call, "path_params": params, "route": lane.route,
                                        "screening.lane": lane}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane: _Lane = scope["screening.lane"]
        request = Request(scope, receive, send)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            values = dict(scope["path_params"])
            # In FastAPI's order: the body is read and decoded before the dependency runs (so a body that is not
            # JSON is answered as such even without a token), and validated after it.
            if lane.body_model is not None:
                raw = await request.body()
                try:
                    values[lane.body_name] = lane.body_model.model_validate_json(raw)
                except ValidationError:
                    # Not the happy path: FastAPI handles the request from the start, in its own order.
                    await lane.route.handle(scope, _replay(raw), send)
                    return
            values[lane.dependency_name] = await lane.dependency(request)
            response = await lane.call(**values)
            await response(scope, receive, send)

        # As Starlette's request_response does: the app's exception handlers answer what the route raises.
        await wrap_app_handling_exceptions(app, request)(scope, receive, send)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def install(app: FastAPI, endpoints: Iterable[Callable[..., Any]]) -> HotLane:
    """Put a `HotLane` for the routes of `endpoints` first in `app`'s routes (after every router is included)."""
    wanted = set(endpoints)
    routes = [r for r in _api_routes(app.router.routes) if r.endpoint in wanted]
    missing = wanted - {r.endpoint for r in routes}
    if missing:
        raise ValueError(f"no route for {sorted(f.__name__ for f in missing)}")
    lane = HotLane(routes, app.dependency_overrides)
    app.router.routes.insert(0, lane)
    return lane


def _api_routes(routes: Iterable[BaseRoute]) -> Iterable[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI >= 0.16x keeps included routers as routes
            yield from _api_routes(route.original_router.routes)
