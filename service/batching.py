"""Groups concurrent requests to one model into shared batches, so throughput rises with load.

Each model has one `Batcher`: requests queue their texts; a loop takes the first waiting job, lets others join
for a short window (or until the batch is full), and translates jobs with the same search settings together on
a bounded worker-thread pool. The event loop never runs a model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from translate import Translation

from service.errors import QueueFull

log = logging.getLogger(__name__)

TranslateFn = Callable[[Sequence[str], int, bool], list[Translation]]  # (texts, beam_size, return_attention)


@dataclass
class _Job:
    texts: list[str]
    beam_size: int
    return_attention: bool
    future: asyncio.Future = field(repr=False)

    @property
    def key(self) -> tuple[int, bool]:
        return self.beam_size, self.return_attention


class Batcher:
    def __init__(
        self, name: str, translate: TranslateFn, executor: Executor, max_batch: int, wait_s: float, max_queue: int
    ):
        self.name, self.translate, self.executor = name, translate, executor
        self.max_batch, self.wait_s, self.max_queue = max_batch, wait_s, max_queue
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.waiting = 0  # texts queued or being translated
        self.batches = 0  # batches run, for tests and logs
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish every job already accepted, then stop."""
        await self.queue.join()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, texts: list[str], beam_size: int, return_attention: bool) -> list[Translation]:
        if self.waiting + len(texts) > self.max_queue:
            raise QueueFull(self.name)
        self.waiting += len(texts)
        job = _Job(texts, beam_size, return_attention, asyncio.get_running_loop().create_future())
        self.queue.put_nowait(job)
        try:
            return await job.future
        finally:
            self.waiting -= len(texts)

    async def _collect(self) -> list[_Job]:
        """The first waiting job plus those that join within the window, up to max_batch texts."""
        jobs = [await self.queue.get()]
        size = len(jobs[0].texts)
        deadline = asyncio.get_running_loop().time() + self.wait_s
        while size < self.max_batch:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                job = self.queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(self.queue.get(), remaining)
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect()
            try:
                groups: dict[tuple[int, bool], list[_Job]] = {}
                for job in jobs:
                    groups.setdefault(job.key, []).append(job)
                for (beam_size, attention), group in groups.items():
                    texts = [t for job in group for t in job.texts]
                    try:
                        results = await loop.run_in_executor(self.executor, self.translate, texts, beam_size, attention)
                        self.batches += 1
                    except Exception as e:  # a failing batch fails its requests, never the loop
                        log.exception("translation batch failed")
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
                for _ in jobs:
                    self.queue.task_done()
