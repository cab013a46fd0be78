"""The Litestar application: `create_app(settings)`.

Models load once, in a background thread started by the lifespan, so `/health` answers at once and `/ready`
says 503 until loading is done. SIGHUP (or `POST /admin/reload`) reloads the models folder and the keys file
(`service.serving`). Shutdown lets every accepted request finish before the workers stop.

With `processes` > 1 (`translate serve --processes N`, `create_app_from_env` in each of uvicorn's processes) a
process starts accepting connections only once its models are loaded, so the port never hands a request to a
process still loading, and uvicorn's rolling restart on SIGHUP retires a process only once its successor is ready.
Each process publishes its state (`service.processes`) for `/ready`, and `POST /admin/reload` reloads them all.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.exceptions import TooManyRequestsException
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.static_files import create_static_files_router

from service.access import ApiKeys, access_middleware
from service.errors import ServiceError, error_response, rate_limited
from service.libretranslate import LibreTranslateController
from service.processes import ProcessBoard
from service.request import ServiceRequest
from service.requests_log import RequestIdMiddleware, log_to_stderr
from service.routes import STATIC, AdminController, HealthController, TranslationController, index
from service.schemas import ReloadReport, complete_openapi
from service.serving import Serving
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
    """The service; raises ValueError or OSError for settings it cannot serve with (a bad rate limit, no keys file)."""
    serving = Serving(settings)
    keys = ApiKeys.configured(settings.api_keys, settings.api_keys_file)
    board = ProcessBoard.of(settings)  # None for a single process

    def publish() -> None:
        if board is not None:
            board.publish(serving.registry.status, sorted(serving.registry.translators))

    async def reload() -> ReloadReport:
        """The models folder and the keys file, as they are now (SIGHUP and POST /admin/reload)."""
        problem = None
        if keys is not None:
            try:
                keys.reread(settings.api_keys)
            except OSError as e:
                log.error("the keys file could not be read; the previous keys stay: %s", e)
                problem = f"could not be read ({e}); the previous keys stay"
        report = await serving.reload()
        publish()
        if problem is not None:
            report.failed["keys file"] = problem
        return report

    async def reload_everywhere() -> ReloadReport:
        """POST /admin/reload: this process reloads and reports; the others reload the same way, on SIGHUP."""
        others = board.reload_others() if board is not None else []
        report = await reload()
        report.signalled = others
        return report

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        loading = loop.create_task(serving.start())
        loading.add_done_callback(_report_failure)  # /ready stays 503; the log says why
        reloads: set[asyncio.Task] = set()
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: reloads.add(loop.create_task(reload())))
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread (tests), or no SIGHUP here
            log.debug("no SIGHUP reload in this process; POST /admin/reload still works")
        if board is not None:  # after the SIGHUP handler: the others may signal a process once it is on the board
            publish()
            await asyncio.wait([loading])  # accept connections only when loaded (see the module's docstring)
            publish()
        try:
            yield
        finally:
            if board is not None:
                board.withdraw()
            await asyncio.gather(loading, *reloads, return_exceptions=True)
            await serving.stop()  # drain accepted work

    metrics = PrometheusConfig(app_name="translate", prefix="translate_http", group_path=True, exclude=["/metrics"])
    app = Litestar(
        route_handlers=[
            HealthController, TranslationController, AdminController, LibreTranslateController, index,
            MetricsController,
            create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
        ],
        dependencies={
            "registry": Provide(lambda: serving.registry, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "batchers": Provide(lambda: serving.batchers, sync_to_thread=False),
            "reload": Provide(lambda: reload_everywhere, sync_to_thread=False),
            "board": Provide(lambda: board, sync_to_thread=False),
            "keys": Provide(lambda: keys, sync_to_thread=False),
        },
        lifespan=[lifespan],
        request_class=ServiceRequest,
        middleware=[RequestIdMiddleware(), metrics.middleware, *access_middleware(keys, settings.rate_limit)],
        cors_config=CORSConfig(allow_origins=origins) if (origins := settings.cors_origins.split(",")) != [""] else None,
        exception_handlers={ServiceError: error_response, TooManyRequestsException: rate_limited},
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="translate", version="0.1.0", path="/schema"),
    )
    complete_openapi(app.openapi_schema, settings.max_texts, settings.max_chars, settings.max_beam)
    return app


def create_app_from_env() -> Litestar:
    """The app of each process of `translate serve --processes N`: uvicorn calls this in every process it starts,
    and the settings come from the TRANSLATE_* variables `translate serve` set (`Settings.to_env`)."""
    settings = Settings.from_env()
    log_to_stderr(with_pid=settings.processes > 1)  # a fresh process: the parent's logging setup is not inherited
    return create_app(settings)
