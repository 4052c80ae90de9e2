"""One pure-ASGI middleware: request id, latency histogram by route template, and the request log.

Pure ASGI rather than BaseHTTPMiddleware: it sits on every request, and the hot paths are measured
against a bare endpoint (see bench/).
"""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from screening.log_redaction import route_template
from screening.ops.logging import REQUEST_ID_KEY, RequestLog, request_id_var
from screening.ops.metrics import REQUEST_LATENCY, REQUESTS_IN_ERROR

log = logging.getLogger("screening.request")
# A caller's (e.g. the load balancer's) request id is kept only if it is short and plain.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestMiddleware:
    def __init__(self, app: ASGIApp, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests
        # Built with the middleware stack, on a worker's first request: after gunicorn's fork, so each
        # worker logs its own pid (the module is imported once, in the arbiter).
        self.pid = os.getpid()
        self.request_log = RequestLog(log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        # 128 random bits as 32 hex digits: a uuid4's randomness without building a UUID (a fifth of the cost).
        request_id = incoming if incoming and _SAFE_ID.match(incoming) else os.urandom(16).hex()
        token = request_id_var.set(request_id)
        scope[REQUEST_ID_KEY] = request_id
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            method = scope["method"]
            REQUEST_LATENCY.labels(method, route, str(status)).observe(elapsed)
            if status >= 500:
                REQUESTS_IN_ERROR.labels(method, route).inc()
            if self.log_requests:
                self.request_log(request_id, method, route, status, round(elapsed * 1000, 2), self.pid)
            request_id_var.reset(token)
