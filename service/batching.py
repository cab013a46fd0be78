"""Groups concurrent requests to one model into shared batches, so throughput rises with load.

Each model has one `Batcher`: requests queue their texts; when an inference worker is free (the workers are shared
by all models, one per core: `service.inference`), the batcher takes the first waiting job, lets others join for a
short window (or until the batch holds its fair share, see `_gather`), and translates jobs with the same search
settings together on a worker. While one batch runs, the next one gathers, so every core decodes a batch of its own.
The event loop never runs a model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from translate import Translation

from service.errors import Overloaded, QueueFull
from service.metrics import BATCH_SECONDS, BATCH_TEXTS, OUTPUT_TOKENS, QUEUE_TEXTS, TRANSLATED_TEXTS
from service.requests_log import REQUEST_ID

log = logging.getLogger(__name__)

TranslateFn = Callable[[list[str], int, bool, int], Awaitable[list[Translation]]]  # (texts, beam, attention, n_best)


@dataclass
class _Job:
    texts: list[str]
    beam_size: int
    return_attention: bool
    n_best: int
    future: asyncio.Future = field(repr=False)
    request_id: str = "-"  # of the request that submitted it, for the logs
    started: asyncio.Event = field(default_factory=asyncio.Event, repr=False)  # set when its batch is dispatched
    abandoned: bool = False  # its client stopped waiting (deadline passed, or disconnected): skip it

    @property
    def key(self) -> tuple[int, bool, int]:
        return self.beam_size, self.return_attention, self.n_best


class Batcher:
    def __init__(
        self, name: str, translate: TranslateFn, workers: asyncio.Semaphore, max_batch: int, wait_s: float,
        max_queue: int, max_wait_s: float = 1.0, worker_count: int = 1,
    ):
        self.name, self.translate, self.workers, self.worker_count = name, translate, workers, worker_count
        self.max_batch, self.wait_s, self.max_queue, self.max_wait_s = max_batch, wait_s, max_queue, max_wait_s
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.waiting = 0  # texts queued or being translated
        self.batches = 0  # batches run, for tests and logs
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish every job already accepted, then stop."""
        await self.queue.join()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, texts: list[str], beam_size: int, return_attention: bool, n_best: int = 1) -> list[Translation]:
        """The translations, once a batch has run them; Overloaded if no batch took them within max_wait_s."""
        if self.waiting + len(texts) > self.max_queue:
            raise QueueFull(self.name)
        self.waiting += len(texts)
        QUEUE_TEXTS.labels(self.name).set(self.waiting)
        job = _Job(texts, beam_size, return_attention, n_best, asyncio.get_running_loop().create_future(), REQUEST_ID.get())
        self.queue.put_nowait(job)
        try:
            try:
                await asyncio.wait_for(job.started.wait(), self.max_wait_s)
            except asyncio.TimeoutError:
                if not job.started.is_set():
                    raise Overloaded(self.name, self.max_wait_s) from None
            return await job.future
        finally:
            if not job.started.is_set():  # deadline passed or the client went away (this task was cancelled)
                job.abandoned = True
            self.waiting -= len(texts)
            QUEUE_TEXTS.labels(self.name).set(self.waiting)

    async def _run(self) -> None:
        """Forever: a waiting job, a free worker, the jobs that join it, then the batch runs while the next gathers."""
        while True:
            first = await self.queue.get()
            if first.abandoned:
                self.queue.task_done()
                continue
            await self.workers.acquire()
            jobs = await self._gather(first)
            live = [job for job in jobs if not job.abandoned]  # clients that stopped waiting cost nothing
            for job in live:
                job.started.set()
            for _ in range(len(jobs) - len(live)):
                self.queue.task_done()
            if not live:
                self.workers.release()
                continue
            task = asyncio.get_running_loop().create_task(self._translate(live))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _gather(self, first: _Job) -> list[_Job]:
        """`first` plus the jobs waiting or joining within the window, up to max_batch texts or, sooner, the batch's
        fair share: the texts in flight (waiting, gathered and being translated) divided among the workers.

        The fair share keeps every worker busy on batches of even size. Without it, 16 closed-loop clients settled
        into uneven groups (one batch of 14 on one core while the other core translated 2 at a time, or one batch
        of 16 on one core while the other idled); with it they settle into two batches of 8, and a batch of a group
        whose last request has come in starts at once instead of waiting out the window."""
        jobs, size = [first], len(first.texts)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while size < min(self.max_batch, -(-self.waiting // self.worker_count)):
            remaining = deadline - loop.time()
            try:
                job = self.queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(self.queue.get(), remaining)
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            jobs.append(job)
            size += 0 if job.abandoned else len(job.texts)
        return jobs

    async def _translate(self, jobs: list[_Job]) -> None:
        """Run the jobs (one model call per search setting), hand out the results, free the worker."""
        try:
            groups: dict[tuple[int, bool, int], list[_Job]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            for (beam_size, attention, n_best), group in groups.items():
                texts = [t for job in group for t in job.texts]
                try:
                    BATCH_TEXTS.labels(self.name).observe(len(texts))
                    with BATCH_SECONDS.labels(self.name).time():
                        results = await self.translate(texts, beam_size, attention, n_best)
                    self.batches += 1
                    TRANSLATED_TEXTS.labels(self.name).inc(len(results))
                    OUTPUT_TOKENS.labels(self.name).inc(sum(len(r.tgt_tokens) for r in results))
                except Exception as e:  # a failing batch fails its requests, never the loop
                    log.exception("translation batch failed (requests %s)", ", ".join(job.request_id for job in group))
                    for job in group:
                        if not job.future.done():
                            job.future.set_exception(e)
                    continue
                start = 0
                for job in group:
                    if not job.future.done():  # the client may have gone away
                        job.future.set_result(results[start : start + len(job.texts)])
                    start += len(job.texts)
        finally:
            self.workers.release()
            for _ in jobs:
                self.queue.task_done()
