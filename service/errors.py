"""The service's domain errors and the one place that turns them into HTTP responses.

Route and batching code raises these; `create_app` maps every `ServiceError` through `error_response`, so status
codes, headers and the body shape (`{"status_code", "detail", "extra"}`, Litestar's own) are decided here only.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import TooManyRequestsException

from service.metrics import REFUSED


class ServiceError(Exception):
    """A request the service refuses, with the status code and headers that say why."""

    status_code = 400
    headers: dict[str, str] = {}

    def __init__(self, detail: str, extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.detail, self.extra = detail, extra


class BadRequest(ServiceError):
    status_code = 400


class UnknownModel(ServiceError):
    status_code = 404

    def __init__(self, name: str, known: list[str]):
        super().__init__(f"unknown model {name!r}; known: {', '.join(known) or 'none'}", {"known": known})


class UnsupportedPair(ServiceError):
    """No served model translates source -> target: 404 like an unknown model (LibreTranslate's routes say 400)."""

    status_code = 404

    def __init__(self, source: str, target: str, served: list[str]):
        super().__init__(f"{source} -> {target} is not served; served pairs: {', '.join(served) or 'none'}",
                         {"served": served})


class Forbidden(ServiceError):
    """LibreTranslate's answer to a missing or wrong `api_key` (our own API answers 401)."""

    status_code = 403


class Unauthorized(ServiceError):
    """API keys are configured and the request has none, or one that is not among them."""

    status_code = 401
    headers = {"WWW-Authenticate": 'Bearer realm="translate"'}


class ClientGone(ServiceError):
    """The client disconnected before its translation started: its texts left the queue (nginx's 499)."""

    status_code = 499

    def __init__(self) -> None:
        super().__init__("the client closed the connection")


class LimitExceeded(ServiceError):
    status_code = 422

    def __init__(self, detail: str, limit: str, maximum: int, **extra: Any):
        super().__init__(detail, {"limit": limit, "max": maximum, **extra})


class QueueFull(ServiceError):
    """More texts are waiting for this model than the service accepts."""

    status_code = 503
    headers = {"Retry-After": "1"}

    def __init__(self, model: str):
        super().__init__(f"model {model!r} is busy: too many texts waiting; retry shortly")


class Overloaded(ServiceError):
    """No batch could start this request within the deadline: answered now rather than after minutes of queueing."""

    status_code = 503

    def __init__(self, model: str, max_wait_s: float):
        super().__init__(
            f"model {model!r} is overloaded: the request could not start within {max_wait_s * 1000:.0f} ms; retry shortly",
            {"max_wait_ms": round(max_wait_s * 1000)},
        )
        self.headers = {"Retry-After": str(max(1, round(max_wait_s)))}


class RateLimited(ServiceError):
    """Too many requests from one key (or address) in the configured window; Litestar's rate limiter counts."""

    status_code = 429

    def __init__(self, headers: dict[str, str]):
        super().__init__(f"rate limit exceeded ({headers.get('RateLimit-Policy', '?')}); retry after "
                         f"{headers['Retry-After']} s", {"retry_after_s": int(headers["Retry-After"])})
        self.headers = headers


class NotReady(ServiceError):
    status_code = 503
    headers = {"Retry-After": "2"}

    def __init__(self) -> None:
        super().__init__("models are still loading")


def error_response(request: Request, exc: ServiceError) -> Response:
    if exc.status_code in (401, 429, 499, 503):  # refusals an operator watches (bad input is the client's business)
        REFUSED.labels(str(exc.status_code), type(exc).__name__).inc()
    body: dict[str, Any] = {"status_code": exc.status_code, "detail": exc.detail}
    if exc.extra is not None:
        body["extra"] = exc.extra
    return Response(body, status_code=exc.status_code, headers=exc.headers)


def rate_limited(request: Request, exc: TooManyRequestsException) -> Response:
    """Litestar's rate limiter refused the request: 429 in the service's shape, with Retry-After."""
    headers = dict(exc.headers or {})
    headers["Retry-After"] = str(max(1, int(headers.get("RateLimit-Reset", "1"))))
    return error_response(request, RateLimited(headers))

