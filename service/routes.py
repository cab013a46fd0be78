"""HTTP routes: health and readiness, models, translate, compare, and the page.

Handlers raise the domain errors of `service.errors`; `create_app` maps them to responses.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import File

from service.batching import Batcher
from service.errors import BadRequest, LimitExceeded, NotReady
from service.registry import Registry
from service.schemas import (
    CompareRequest, CompareResponse, ModelInfo, ModelsResponse, ReadyStatus, Status, TranslateRequest,
    TranslateResponse, TranslationOut,
)
from service.settings import Settings

STATIC = Path(__file__).parent / "static"


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


async def translate_with(
    batchers: dict[str, Batcher], name: str, texts: list[str], beam_size: int, attention: bool
) -> TranslateResponse:
    start = time.perf_counter()
    results = await batchers[name].submit(texts, beam_size, attention)
    return TranslateResponse(
        model=name,
        translations=[TranslationOut(r.text, r.src_tokens, r.tgt_tokens, r.attention) for r in results],
        elapsed_ms=round((time.perf_counter() - start) * 1000, 2),
    )


class HealthController(Controller):
    @get("/health")
    async def health(self) -> Status:
        return Status("ok")

    @get("/ready")
    async def ready(self, registry: NamedDependency[Registry]) -> Response[ReadyStatus]:
        if not registry.loaded:
            return Response(ReadyStatus("loading", [], {}), status_code=503, headers={"Retry-After": "2"})
        body = ReadyStatus("ready" if registry.translators else "no models", sorted(registry.translators), registry.errors)
        return Response(body, status_code=200 if registry.translators else 503)


class TranslationController(Controller):
    path = "/v1"

    @get("/models")
    async def models(self, registry: NamedDependency[Registry]) -> ModelsResponse:
        if not registry.loaded:
            raise NotReady()
        return ModelsResponse([
            ModelInfo(name, t.arch, t.src_lang, t.tgt_lang, t.parameters, registry.metrics(name))
            for name, t in sorted(registry.translators.items())
        ])

    @post("/translate", status_code=200)
    async def translate(
        self, data: JSONBody[TranslateRequest], registry: NamedDependency[Registry], settings: NamedDependency[Settings],
        batchers: NamedDependency[dict[str, Batcher]],
    ) -> TranslateResponse:
        if not registry.loaded:
            raise NotReady()
        if (data.texts is None) == (data.text is None):
            raise BadRequest("give either 'texts' (a list) or 'text' (one string)")
        texts = data.texts if data.texts is not None else [data.text]
        check_limits(settings, texts, data.beam_size)
        registry.get(data.model)
        return await translate_with(batchers, data.model, texts, data.beam_size, data.return_attention)

    @post("/compare", status_code=200)
    async def compare(
        self, data: JSONBody[CompareRequest], registry: NamedDependency[Registry], settings: NamedDependency[Settings],
        batchers: NamedDependency[dict[str, Batcher]],
    ) -> CompareResponse:
        if not registry.loaded:
            raise NotReady()
        names = data.models if data.models is not None else sorted(registry.translators)
        check_limits(settings, [data.text], data.beam_size)
        if len(names) > settings.max_texts:
            raise LimitExceeded(f"too many models: {len(names)}", "max_texts", settings.max_texts)
        for name in names:
            registry.get(name)
        results = await asyncio.gather(*(translate_with(batchers, n, [data.text], data.beam_size, True) for n in names))
        return CompareResponse(data.text, list(results))


@get("/", include_in_schema=False)
async def index() -> File:
    return File(STATIC / "index.html", content_disposition_type="inline", media_type="text/html")
