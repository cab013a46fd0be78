"""Where the service's batches are computed: worker processes on the CPU, threads on a GPU.

On the CPU each worker is a process of its own that loads every served model once and decodes one batch at a time
with one thread: the search's many small tensor operations each take Python's lock, so worker threads inside the
server process wait on each other and on the event loop (scripts/bench_service.py, int8, beam 5, 16 clients:
53.8 req/s with two threads, 57.6-77.2 with two processes over several runs). A GPU is shared by threads of the server process instead
(one CUDA context). The workers are spawned (not forked: the server process already runs threads), ignore Ctrl-C
(the server stops them), and a pool whose process died is replaced, the batch retried once.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from translate import TranslateError, Translation, Translator, pin_threads, pick_device

from service.registry import Registry
from service.settings import Settings

log = logging.getLogger(__name__)

_WORKER_REGISTRY: Registry | None = None  # in a worker process: the models it serves


@dataclass(frozen=True)
class WorkerPlan:
    """What a worker process serves: runs to load from disk, and old versions the server kept (pickled over)."""

    settings: Settings
    paths: dict[str, Path]
    kept: dict[str, Translator]

    @classmethod
    def of(cls, settings: Settings, registry: Registry) -> WorkerPlan:
        paths = {name: path for name, path in registry.sources.items() if name not in registry.kept}
        return cls(settings, paths, {name: registry.translators[name] for name in registry.kept})


def _exit_with(parent: int) -> None:
    """Ends this worker when its server process is gone: a server killed outright (SIGKILL, the OOM killer) cannot
    stop its workers, and the pool's queue never closes under them; with --processes N uvicorn starts a new server
    process with workers of its own, so orphans would pile up, each holding every model."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _start_worker(plan: WorkerPlan) -> None:
    """A worker process's initializer: one thread, no Ctrl-C, the models loaded."""
    global _WORKER_REGISTRY
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    pin_threads(1)
    s, registry = plan.settings, Registry()
    for name, path in plan.paths.items():
        try:
            registry.translators[name] = Registry.load_one(path, s.device, s.engine, s.quantize)
        except (TranslateError, OSError, RuntimeError) as e:  # changed since the server loaded it: its batches fail
            log.error("worker %d: model %s failed to load: %s", os.getpid(), name, e)
    registry.translators.update(plan.kept)
    _WORKER_REGISTRY = registry


def _loaded() -> tuple[int, list[str]]:
    """This worker's process id and models (it has loaded them: the initializer runs before any call)."""
    time.sleep(0.05)  # keep this worker busy a moment, so the other calls of a round go to the others
    return os.getpid(), sorted(_WORKER_REGISTRY.translators) if _WORKER_REGISTRY else []


def _translate_in_worker(name: str, texts: list[str], beam_size: int, attention: bool, n_best: int) -> list[Translation]:
    return _translate_here(_WORKER_REGISTRY, name, texts, beam_size, attention, n_best)


def _translate_here(
    registry: Registry, name: str, texts: list[str], beam_size: int, attention: bool, n_best: int,
) -> list[Translation]:
    translator = registry.translators[name]
    return translator.translate(texts, beam_size=beam_size, return_attention=attention, n_best=n_best, split=True)


class Inference:
    """`workers` batches computed side by side, by processes (CPU) or threads of this process (GPU).

    `replace` swaps in workers serving a reloaded registry: the new ones load first, batches already running finish
    on the old ones, which stop afterwards.
    """

    def __init__(self, settings: Settings, registry: Registry, workers: int):
        self.settings, self.registry, self.workers = settings, registry, workers
        self.processes = pick_device(settings.device).type == "cpu"
        self.layout = f"{workers} {'processes' if self.processes else 'threads'} x 1 thread"
        self._executor: Executor | None = None

    def _new_executor(self, registry: Registry) -> Executor:
        if self.processes:
            return ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                initargs=(WorkerPlan.of(self.settings, registry),),
            )
        return ThreadPoolExecutor(self.workers, thread_name_prefix="inference", initializer=pin_threads, initargs=(1,))

    async def _started(self, registry: Registry) -> Executor:
        """New workers for `registry`, once each has loaded the models."""
        executor = self._new_executor(registry)
        if self.processes:
            loop, ready = asyncio.get_running_loop(), {}
            try:
                while len(ready) < self.workers:  # rounds of calls until every process has answered one
                    calls = (loop.run_in_executor(executor, _loaded) for _ in range(self.workers))
                    ready.update(await asyncio.gather(*calls))
            except BaseException:
                executor.shutdown(wait=False, cancel_futures=True)
                raise
            if any(names != sorted(registry.translators) for names in ready.values()):
                log.warning("worker processes loaded %s, the server %s", ready, sorted(registry.translators))
        return executor

    async def start(self) -> None:
        """Start every worker and wait until each has loaded the models (the server is not ready before)."""
        self._executor = await self._started(self.registry)
        log.info("inference: %s", self.layout)

    async def replace(self, registry: Registry, before_swap: Callable[[], Awaitable[None]]) -> None:
        """Serve `registry` from new workers, once they are ready and `before_swap` is done; the old workers finish
        their running batches, then stop."""
        executor = await self._started(registry)
        await before_swap()
        old, self._executor, self.registry = self._executor, executor, registry
        if old is not None:
            await asyncio.to_thread(old.shutdown, wait=True)

    async def translate(
        self, name: str, texts: list[str], beam_size: int, attention: bool, n_best: int = 1,
    ) -> list[Translation]:
        loop = asyncio.get_running_loop()
        if not self.processes:
            call = partial(_translate_here, self.registry, name, texts, beam_size, attention, n_best)
            return await loop.run_in_executor(self._executor, call)
        call = partial(_translate_in_worker, name, texts, beam_size, attention, n_best)
        executor = self._executor
        try:
            return await loop.run_in_executor(executor, call)
        except BrokenProcessPool:
            if self._executor is executor:  # the first batch to notice replaces the pool; the others reuse the new one
                log.error("an inference process died (out of memory?): starting new ones and retrying the batch once")
                self._executor = self._new_executor(self.registry)
                executor.shutdown(wait=False, cancel_futures=True)
            return await loop.run_in_executor(self._executor, call)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
