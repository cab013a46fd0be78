"""LibreTranslate-compatible endpoints beside our `/v1` API, so existing LibreTranslate clients work unchanged.

`POST /translate`, `POST /detect`, `GET /languages` and `GET /frontend/settings` take what LibreTranslate takes
(JSON, or form bodies as its Python client and web page send them; fields it does not know are ignored, as
LibreTranslate does) and answer in its shapes, errors included (`{"error": "..."}`). A request names a language
pair, not a model: the pair is routed to the best served model for it (`Registry.route`), and `source: auto` is
detected among the served source languages (`service.detection`). With API keys configured, these routes take the
key in an `api_key` field as well as in `Authorization: Bearer`, and answer 403 without a valid one, as
LibreTranslate does. They follow LibreTranslate's API documentation and stay out of our OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency

from service.access import ApiKeys, bearer_token
from service.batching import Batcher
from service.detection import detect
from service.errors import BadRequest, Forbidden, LimitExceeded, NotReady, ServiceError, UnsupportedPair
from service.registry import Registry
from service.request import ServiceRequest
from service.routes import check_limits, detect_source
from service.settings import Settings

NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech"}
BEAM = 5


class TranslateBody(msgspec.Struct):
    q: str | list[str]
    target: str
    source: str = "auto"
    format: str = "text"
    alternatives: int = 0
    api_key: str = ""


class DetectBody(msgspec.Struct):
    q: str
    api_key: str = ""


def lt_error(request: Request, exc: ServiceError) -> Response:
    status = 400 if isinstance(exc, UnsupportedPair) else exc.status_code  # LibreTranslate: "x is not supported"
    return Response({"error": exc.detail}, status_code=status, headers=exc.headers)


async def read_body(request: ServiceRequest, struct: type[msgspec.Struct]) -> Any:
    """A JSON or form body as `struct`; BadRequest naming what is wrong."""
    if request.headers.get("content-type", "").startswith("application/json"):
        raw = await request.json()
    else:
        form = await request.form()
        raw = {key: form.getall(key) if len(form.getall(key)) > 1 else form.get(key) for key in form.keys()}
    try:
        return msgspec.convert(raw, struct, strict=False)
    except msgspec.ValidationError as e:
        raise BadRequest(f"Invalid request: {e}") from None


def check_key(keys: ApiKeys | None, request: Request, api_key: str) -> None:
    if keys is None:
        return
    presented = api_key or bearer_token(request)
    if not presented or keys.identify(presented) is None:
        raise Forbidden("Invalid API key" if presented else "Please provide an API key (api_key)")


def pick_source(source: str, texts: list[str], registry: Registry) -> tuple[str, dict[str, Any] | None]:
    """The source language, and LibreTranslate's `detectedLanguage` when it was `auto`."""
    if source != "auto":
        return source, None
    language, p = detect_source(texts, registry)
    return language, {"confidence": round(100 * p, 1), "language": language}


class LibreTranslateController(Controller):
    include_in_schema = False
    exception_handlers = {ServiceError: lt_error}

    @post("/translate", status_code=200)
    async def translate(
        self, request: ServiceRequest, registry: NamedDependency[Registry], settings: NamedDependency[Settings],
        batchers: NamedDependency[dict[str, Batcher]], keys: NamedDependency[ApiKeys | None],
    ) -> dict[str, Any]:
        body: TranslateBody = await read_body(request, TranslateBody)
        check_key(keys, request, body.api_key)
        if body.format not in ("text", "html"):
            raise BadRequest(f"Invalid request: format must be text or html, not {body.format!r}")
        if body.format == "html":
            raise BadRequest("format html is not supported: send the text without markup (format text)")
        texts = [body.q] if isinstance(body.q, str) else body.q
        n_best = body.alternatives + 1
        if body.alternatives < 0 or n_best > settings.max_beam:
            raise LimitExceeded(f"alternatives must be 0 to {settings.max_beam - 1}", "max_beam", settings.max_beam)
        beam = max(BEAM, n_best)
        check_limits(settings, texts, beam)
        source, detected = pick_source(body.source, texts, registry)
        name = registry.route(source, body.target)
        results = await request.unless_disconnected(batchers[name].submit(texts, beam, False, n_best))
        out: dict[str, Any] = {"translatedText": [r.text for r in results] if isinstance(body.q, list) else results[0].text}
        if detected is not None:
            out["detectedLanguage"] = [detected] * len(texts) if isinstance(body.q, list) else detected
        if body.alternatives:
            alternatives = [[a.text for a in r.alternatives] for r in results]
            out["alternatives"] = alternatives if isinstance(body.q, list) else alternatives[0]
        return out

    @post("/detect", status_code=200)
    async def detect(
        self, request: ServiceRequest, registry: NamedDependency[Registry], keys: NamedDependency[ApiKeys | None],
    ) -> list[dict[str, Any]]:
        body: DetectBody = await read_body(request, DetectBody)
        check_key(keys, request, body.api_key)
        if not registry.loaded:
            raise NotReady()
        ranked = detect(body.q, registry.source_languages())
        return [{"confidence": round(100 * p, 1), "language": code} for code, p in ranked]

    @get("/languages")
    async def languages(self, registry: NamedDependency[Registry]) -> list[dict[str, Any]]:
        if not registry.loaded:
            raise NotReady()
        targets: dict[str, list[str]] = {}
        for source, target in registry.pairs():
            targets.setdefault(source, []).append(target)
        return [{"code": s, "name": NAMES.get(s, s), "targets": sorted(t)} for s, t in sorted(targets.items())]

    @get("/frontend/settings")
    async def frontend_settings(
        self, registry: NamedDependency[Registry], settings: NamedDependency[Settings],
        keys: NamedDependency[ApiKeys | None],
    ) -> dict[str, Any]:
        target = next(iter(sorted({t for _, t in registry.pairs()})), "en") if registry.loaded else "en"
        return {
            "charLimit": settings.max_chars, "frontendTimeout": 500, "suggestions": False, "filesTranslation": False,
            "supportedFilesFormat": [], "apiKeys": keys is not None, "keyRequired": keys is not None,
            "language": {"source": {"code": "auto", "name": "Auto Detect"},
                         "target": {"code": target, "name": NAMES.get(target, target)}},
        }
