"""The Litestar application: `create_app(settings)`.

Models load once, in a background thread started by the lifespan, so `/health` answers at once and `/ready`
says 503 until loading is done. Shutdown lets every accepted request finish before the workers stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.static_files import create_static_files_router
from translate import default_workers

from service.batching import Batcher
from service.errors import ServiceError, error_response
from service.inference import Inference
from service.registry import Registry
from service.request import ServiceRequest
from service.requests_log import RequestIdMiddleware
from service.routes import STATIC, HealthController, TranslationController, index
from service.settings import Settings

log = logging.getLogger(__name__)


def _report_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the models could not be served", exc_info=task.exception())


class MetricsController(PrometheusController):
    """GET /metrics: Prometheus text format (requests and latency by route and status, and `service.metrics`)."""

    path = "/metrics"
    include_in_schema = False


def create_app(settings: Settings) -> Litestar:
    registry = Registry()
    batchers: dict[str, Batcher] = {}

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        workers = settings.workers or default_workers()
        free_workers = asyncio.Semaphore(workers)
        inference: Inference | None = None

        async def load() -> None:
            nonlocal inference
            s = settings
            await asyncio.to_thread(registry.load, s.models_dir, s.device, s.engine, s.quantize)
            if registry.translators:
                inference = Inference(settings, registry, workers)
                await inference.start()
            for name in registry.translators:
                batcher = Batcher(
                    name, partial(inference.translate, name), free_workers, settings.max_batch_size,
                    settings.batch_wait_ms / 1000, settings.max_queue, settings.max_wait_ms / 1000,
                )
                batcher.start()
                batchers[name] = batcher
            registry.loaded = True
            log.info("ready: %d model(s) loaded, %d failed", len(registry.translators), len(registry.errors))

        loop = asyncio.get_running_loop()
        loading = loop.create_task(load())
        loading.add_done_callback(_report_failure)  # /ready stays 503; the log says why
        try:
            yield
        finally:
            await asyncio.gather(loading, return_exceptions=True)
            await asyncio.gather(*(b.stop() for b in batchers.values()))  # drain accepted work
            if inference is not None:
                inference.shutdown()

    metrics = PrometheusConfig(app_name="translate", prefix="translate_http", group_path=True, exclude=["/metrics"])
    return Litestar(
        route_handlers=[
            HealthController, TranslationController, index, MetricsController,
            create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
        ],
        dependencies={
            "registry": Provide(lambda: registry, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "batchers": Provide(lambda: batchers, sync_to_thread=False),
        },
        lifespan=[lifespan],
        request_class=ServiceRequest,
        middleware=[RequestIdMiddleware(), metrics.middleware],
        exception_handlers={ServiceError: error_response},
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="translate", version="0.1.0", path="/schema"),
    )
