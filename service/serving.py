"""What the service serves, and its reload: the model registry, the inference workers, one batcher per model.

`reload` re-reads the models folder without a restart (SIGHUP or `POST /admin/reload`): it loads changed and new
runs, starts workers that serve the new set, then swaps them in. Nothing in flight fails: requests for a removed
model drain on the old workers before the swap, and batches running at the swap finish on the old workers. A run
whose new files fail to load keeps serving its previous version; if the new workers cannot start, the old set stays.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from translate import default_workers

from service.batching import Batcher
from service.inference import Inference
from service.registry import Registry
from service.schemas import ReloadReport
from service.settings import Settings

log = logging.getLogger(__name__)


class Serving:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.registry = Registry()
        self.batchers: dict[str, Batcher] = {}
        self.inference: Inference | None = None
        # N service processes share the cores: each gets its share, so that together they do not oversubscribe them
        self.workers = settings.workers or max(1, default_workers() // settings.processes)
        self._free_workers = asyncio.Semaphore(self.workers)  # shared by every model's batcher
        self._reloading = asyncio.Lock()

    async def start(self) -> None:
        """Load every run, start the workers and the batchers; then the service is ready."""
        registry = await asyncio.to_thread(self._load, None)
        if registry.translators:
            self.inference = Inference(self.settings, registry, self.workers)
            await self.inference.start()
        for name in registry.translators:
            self._add_batcher(name)
        self.registry = registry
        registry.loaded = True
        log.info("ready: %d model(s) loaded, %d failed", len(registry.translators), len(registry.errors))

    async def reload(self) -> ReloadReport:
        """Re-read the models folder and serve what it holds now (one reload at a time)."""
        async with self._reloading:
            old = self.registry
            new = await asyncio.to_thread(self._load, old)
            report = ReloadReport(
                added=sorted(new.translators.keys() - old.translators.keys()),
                replaced=sorted(n for n in new.translators.keys() & old.translators.keys()
                                if new.translators[n] is not old.translators[n]),
                removed=sorted(old.translators.keys() - new.translators.keys()),
                unchanged=sorted(n for n in new.translators.keys() & old.translators.keys()
                                 if new.translators[n] is old.translators[n]),
                failed={n: e for n, e in new.errors.items()},
            )
            if report.added or report.replaced or report.removed:
                try:
                    await self._swap(new, report.removed)
                except Exception as e:  # the workers could not start: keep serving the old set
                    log.exception("reload failed; still serving the previous models")
                    report.failed["*"] = f"the new workers could not start ({e}); still serving the previous models"
                    return report
            else:
                new.loaded, self.registry = True, new  # nothing to restart; the errors may have changed
            log.info("reloaded: %s", report)
            return report

    async def _swap(self, new: Registry, removed: list[str]) -> None:
        async def drain_removed() -> None:  # new requests get 404; accepted ones finish on the old workers
            batchers = [self.batchers.pop(name) for name in removed]
            await asyncio.gather(*(batcher.stop() for batcher in batchers))

        if self.inference is None:  # nothing was served: no workers to replace
            self.inference = Inference(self.settings, new, self.workers)
            await self.inference.start()
        elif new.translators:
            await self.inference.replace(new, before_swap=drain_removed)
        else:  # every run removed: the idle old workers stay
            await drain_removed()
        new.loaded, self.registry = True, new
        for name in new.translators.keys() - self.batchers.keys():
            self._add_batcher(name)

    def _load(self, previous: Registry | None) -> Registry:
        s, registry = self.settings, Registry()
        registry.load(s.models_dir, s.device, s.engine, s.quantize, previous=previous)
        return registry

    def _add_batcher(self, name: str) -> None:
        s = self.settings
        batcher = Batcher(
            name, partial(self.inference.translate, name), self._free_workers, s.max_batch_size,
            s.batch_wait_ms / 1000, s.max_queue, s.max_wait_ms / 1000, self.workers,
        )
        batcher.start()
        self.batchers[name] = batcher

    async def stop(self) -> None:
        """Finish every accepted request, then stop the workers."""
        await asyncio.gather(*(b.stop() for b in self.batchers.values()))
        if self.inference is not None:
            self.inference.shutdown()
