"""The Litestar application: `create_app(settings)`.

Models load once, in a background thread started by the lifespan, so `/health` answers at once and `/ready`
says 503 until loading is done. Shutdown lets every accepted request finish before the workers stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.static_files import create_static_files_router

from service.batching import Batcher
from service.errors import ServiceError, error_response
from service.registry import Registry
from service.routes import STATIC, HealthController, TranslationController, index
from service.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> Litestar:
    registry = Registry()
    batchers: dict[str, Batcher] = {}

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="inference")
        loop = asyncio.get_running_loop()

        async def load() -> None:
            await loop.run_in_executor(executor, registry.load, settings.models_dir, settings.device)
            for name, translator in registry.translators.items():
                batcher = Batcher(
                    name, lambda texts, beam, attention, t=translator: t.translate(texts, beam_size=beam, return_attention=attention),
                    executor, settings.max_batch_size, settings.batch_wait_ms / 1000, settings.max_queue,
                )
                batcher.start()
                batchers[name] = batcher
            log.info("ready: %d model(s) loaded, %d failed", len(registry.translators), len(registry.errors))

        loading = loop.create_task(load())
        try:
            yield
        finally:
            await asyncio.gather(loading, return_exceptions=True)
            await asyncio.gather(*(b.stop() for b in batchers.values()))  # drain accepted work
            executor.shutdown(wait=True)

    return Litestar(
        route_handlers=[
            HealthController, TranslationController, index,
            create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
        ],
        dependencies={
            "registry": Provide(lambda: registry, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "batchers": Provide(lambda: batchers, sync_to_thread=False),
        },
        lifespan=[lifespan],
        exception_handlers={ServiceError: error_response},
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="translate", version="0.1.0", path="/schema"),
    )
