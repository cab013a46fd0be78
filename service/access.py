"""Who may call the service: optional API keys and per-caller rate limits.

Keys are off by default. With keys configured (TRANSLATE_API_KEYS, comma-separated, and/or a keys file, one per
line), every route except the open ones below needs `Authorization: Bearer KEY`, else 401. A key is only ever
named by its ID (`key-` and 8 hex digits of its SHA-256) in logs and rate-limit buckets, never itself.

Rate limits (TRANSLATE_RATE_LIMIT, e.g. `60/minute`) are Litestar's own middleware, counted per key ID, or per
client address without keys; a request over the limit gets 429 with Retry-After (`service.errors.rate_limited`).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address
from litestar.types import ASGIApp

from service.errors import Unauthorized

OPEN = ["^/health$", "^/ready$", "^/$", "^/static/", "^/schema"]  # the page and the API docs hold no data
LIBRETRANSLATE = ["^/translate$", "^/detect$", "^/languages$", "^/frontend/settings$"]  # check keys themselves
UNLIMITED = [*OPEN, "^/metrics$"]
UNITS = ("second", "minute", "hour", "day")


def key_id(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


class ApiKeys:
    def __init__(self, keys: set[str], keys_file: Path | None = None):
        self._keys = [k.encode() for k in sorted(keys)]
        self.keys_file = keys_file

    @classmethod
    def configured(cls, keys: str, keys_file: Path | None) -> ApiKeys | None:
        """The configured keys, or None when there are none (the service is open)."""
        found = {k.strip() for k in keys.split(",") if k.strip()}
        if keys_file is not None:
            lines = (line.split("#", 1)[0].strip() for line in keys_file.read_text().splitlines())
            found.update(line for line in lines if line)
        return cls(found, keys_file) if found else None

    def reread(self, keys: str) -> None:
        """On reload: the keys of the variable and the keys file as they are now. A file that cannot be read raises
        and keeps the old keys; so does a reload that finds no key at all (a reload never opens the service)."""
        new = ApiKeys.configured(keys, self.keys_file)
        self._keys = new._keys if new is not None else self._keys

    def identify(self, presented: str) -> str | None:
        """The key's ID if it is one of the keys; every key is compared in constant time."""
        matches = [hmac.compare_digest(presented.encode(), key) for key in self._keys]
        return key_id(presented) if any(matches) else None


def bearer_token(connection: ASGIConnection) -> str:
    """The KEY of an `Authorization: Bearer KEY` header, or ""."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    def __init__(self, app: ASGIApp, keys: ApiKeys):
        super().__init__(app, exclude=OPEN + LIBRETRANSLATE)
        self.keys = keys

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        token = bearer_token(connection)
        if not token:
            raise Unauthorized("this service needs an API key: send 'Authorization: Bearer KEY'")
        identity = self.keys.identify(token)
        if identity is None:
            raise Unauthorized("invalid API key")
        return AuthenticationResult(user=identity, auth=identity)


def caller(connection: ASGIConnection) -> str:
    """Whom a rate limit counts: the API key's ID, else the client's address."""
    return connection.scope.get("auth") or get_remote_address(connection)


def parse_rate(rate: str) -> tuple[str, int]:
    """`60/minute` -> ("minute", 60); ValueError for anything else."""
    count, _, unit = rate.partition("/")
    if unit not in UNITS or not count.strip().isdigit() or int(count) < 1:
        raise ValueError(f"rate_limit must look like 60/minute (units: {', '.join(UNITS)}), not {rate!r}")
    return unit, int(count)


def access_middleware(keys: ApiKeys | None, rate_limit: str) -> list[DefineMiddleware]:
    """Authentication first (so the limit can count per key), then the rate limit."""
    middleware = [DefineMiddleware(ApiKeyMiddleware, keys=keys)] if keys is not None else []
    if rate_limit:
        config = RateLimitConfig(rate_limit=parse_rate(rate_limit), exclude=UNLIMITED, identifier_for_request=caller)
        middleware.append(config.middleware)
    return middleware
