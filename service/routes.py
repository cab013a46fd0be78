"""HTTP routes: health and readiness, models, translate, compare, reload, and the page.

Handlers raise the domain errors of `service.errors`; `create_app` maps them to responses. Every refusal a route
can give is documented in the OpenAPI schema (`refusals`), so clients and schemathesis know what to expect.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from litestar.response import File

from service.batching import Batcher
from service.detection import detect
from service.errors import BadRequest, LimitExceeded, NotReady
from service.processes import ProcessBoard
from service.registry import Registry
from service.request import ServiceRequest
from service.schemas import (
    Alternative, CompareRequest, CompareResponse, ErrorBody, ModelInfo, ModelsResponse, ReadyStatus, ReloadReport, Status,
    TranslateRequest, TranslateResponse, TranslationOut,
)
from service.settings import Settings

STATIC = Path(__file__).parent / "static"

REFUSALS = {
    400: "the body is not JSON of the documented shape",
    401: "API keys are configured and the request has no valid `Authorization: Bearer KEY`",
    404: "unknown model, or no served model for source -> target (the body lists what is served)",
    422: "a configured limit is exceeded (texts, characters, beam size): `extra` names it",
    429: "the caller's rate limit is used up: retry after `Retry-After` seconds",
    503: "models still loading, or the model is overloaded: retry after `Retry-After` seconds",
}


def refusals(*codes: int) -> dict[int, ResponseSpec]:
    return {code: ResponseSpec(ErrorBody, description=REFUSALS[code]) for code in codes}


def check_limits(settings: Settings, texts: list[str], beam_size: int) -> None:
    if len(texts) > settings.max_texts:
        raise LimitExceeded(f"too many texts: {len(texts)} > max_texts {settings.max_texts}", "max_texts", settings.max_texts)
    for i, text in enumerate(texts):
        if len(text) > settings.max_chars:
            raise LimitExceeded(
                f"text {i} has {len(text)} characters > max_chars {settings.max_chars}", "max_chars", settings.max_chars,
                index=i,
            )
    if beam_size > settings.max_beam:
        raise LimitExceeded(f"beam_size {beam_size} > max_beam {settings.max_beam}", "max_beam", settings.max_beam)


def detect_source(texts: list[str], registry: Registry) -> tuple[str, float]:
    """The served source language the texts are most likely in, and its probability (`service.detection`)."""
    if not registry.loaded:
        raise NotReady()
    ranked = detect(" ".join(texts), registry.source_languages())
    if not ranked:
        raise BadRequest("cannot detect the language: no source language is served")
    return ranked[0]


async def translate_with(
    request: ServiceRequest, batchers: dict[str, Batcher], name: str, texts: list[str], beam_size: int, attention: bool,
    n_best: int = 1,
) -> TranslateResponse:
    start = time.perf_counter()
    results = await request.unless_disconnected(batchers[name].submit(texts, beam_size, attention, n_best))
    return TranslateResponse(
        model=name,
        translations=[
            TranslationOut(r.text, r.src_tokens, r.tgt_tokens, r.attention, round(r.score, 4),
                           [Alternative(a.text, round(a.score, 4)) for a in r.alternatives])
            for r in results
        ],
        elapsed_ms=round((time.perf_counter() - start) * 1000, 2),
    )


class HealthController(Controller):
    @get("/health")
    async def health(self) -> Status:
        """This process is alive (with --processes N, only the one that answered)."""
        return Status("ok", os.getpid())

    @get("/ready", responses={503: ResponseSpec(
        ReadyStatus, description="loading, no model could be loaded, or (with --processes N) another process is not ready"
    )})
    async def ready(
        self, registry: NamedDependency[Registry], board: NamedDependency[ProcessBoard | None],
    ) -> Response[ReadyStatus]:
        if not registry.loaded:
            return Response(ReadyStatus("loading", [], {}), status_code=503, headers={"Retry-After": "2"})
        body = ReadyStatus(registry.status, sorted(registry.translators), registry.errors)
        if board is not None:  # every process behind this port, not only this one
            body.processes = board.read()
            if body.status == "ready" and not board.all_ready(body.processes):
                body.status = "waiting for processes"
                return Response(body, status_code=503, headers={"Retry-After": "2"})
        return Response(body, status_code=200 if body.status == "ready" else 503)


class TranslationController(Controller):
    path = "/v1"

    @get("/models", responses=refusals(401, 429, 503))
    async def models(self, registry: NamedDependency[Registry]) -> ModelsResponse:
        if not registry.loaded:
            raise NotReady()
        return ModelsResponse([
            ModelInfo(name, t.arch, t.src_lang, t.tgt_lang, t.parameters, registry.metrics(name))
            for name, t in sorted(registry.translators.items())
        ])

    @post("/translate", status_code=200, responses=refusals(400, 401, 404, 422, 429, 503))
    async def translate(
        self, request: ServiceRequest, data: JSONBody[TranslateRequest], registry: NamedDependency[Registry],
        settings: NamedDependency[Settings], batchers: NamedDependency[dict[str, Batcher]],
    ) -> TranslateResponse:
        if not registry.loaded:
            raise NotReady()
        texts, beam = data.all_texts, max(data.beam_size, data.alternatives + 1)
        check_limits(settings, texts, beam)
        if isinstance(data.model, str):
            registry.get(data.model)
            name = data.model
        else:
            source = detect_source(texts, registry)[0] if data.source == "auto" else data.source
            name = registry.route(source, data.target)
        return await translate_with(request, batchers, name, texts, beam, data.return_attention, data.alternatives + 1)

    @post("/compare", status_code=200, responses=refusals(400, 401, 404, 422, 429, 503))
    async def compare(
        self, request: ServiceRequest, data: JSONBody[CompareRequest], registry: NamedDependency[Registry],
        settings: NamedDependency[Settings], batchers: NamedDependency[dict[str, Batcher]],
    ) -> CompareResponse:
        if not registry.loaded:
            raise NotReady()
        names = data.models if data.models is not None else sorted(registry.translators)
        check_limits(settings, [data.text], data.beam_size)
        if len(names) > settings.max_texts:
            raise LimitExceeded(f"too many models: {len(names)}", "max_texts", settings.max_texts)
        for name in names:
            registry.get(name)
        results = await asyncio.gather(
            *(translate_with(request, batchers, n, [data.text], data.beam_size, True) for n in names)
        )
        return CompareResponse(data.text, list(results))


class AdminController(Controller):
    path = "/admin"

    @post("/reload", status_code=200, responses=refusals(401, 429))
    async def reload(self, reload: NamedDependency[Callable[[], Awaitable[ReloadReport]]]) -> ReloadReport:
        """Re-read the models folder and the keys file (as SIGHUP does): new runs are added, changed ones replaced,
        removed ones dropped; nothing in flight fails, and a run whose new files fail to load keeps serving its old
        version."""
        return await reload()


@get("/", include_in_schema=False)
async def index() -> File:
    return File(STATIC / "index.html", content_disposition_type="inline", media_type="text/html")
