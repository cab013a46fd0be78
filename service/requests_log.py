"""Request IDs and the access log: every request carries an `X-Request-ID` (the client's, or a new one), echoed in
the response and in every log line written while it is handled.

A client's ID is kept when it is short and plain (letters, digits, `._:-`, at most 128): anything else could forge
log lines, and is replaced. The ID lives in a context variable, so log lines from the request's own task (the
access line, errors) carry it through `RequestIdFilter`; a batch that fails names the IDs of the requests in it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
_PLAIN = re.compile(r"[A-Za-z0-9._:-]{1,128}")

log = logging.getLogger("service.access")


class RequestIdFilter(logging.Filter):
    """Gives every record a `request_id` attribute (`-` outside a request) for the log format."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


log.addFilter(RequestIdFilter())  # the access lines carry it whatever handler records them


class RequestIdMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        given = dict(scope["headers"]).get(HEADER.lower().encode(), b"").decode("latin-1")
        request_id = given if _PLAIN.fullmatch(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        status, start = 0, time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)[HEADER] = request_id
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        finally:
            ms = (time.perf_counter() - start) * 1000
            caller = scope.get("auth") or "-"  # the API key's ID (service.access), never the key
            log.info("%s %s %d %.1f ms %s", scope["method"], scope["path"], status, ms, caller)
            REQUEST_ID.reset(token)


def log_to_stderr(with_pid: bool = False) -> None:
    """The service's log lines on stderr, each with its request ID (and the process ID, where several serve)."""
    service_log = logging.getLogger("service")
    if any(isinstance(h, logging.StreamHandler) for h in service_log.handlers):
        return  # set up already in this process
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    where = " %(process)d" if with_pid else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s{where} %(name)s [%(request_id)s] %(message)s"))
    service_log.setLevel(logging.INFO)
    service_log.addHandler(handler)
    service_log.propagate = False  # one line per record, in this format
