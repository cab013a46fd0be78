"""How the batcher shares workers among concurrent requests: a real `Batcher` on a real event loop, given a translate
function that takes a fixed time per batch (the scheduling is under test here, not the model: tests/service/test_api.py
and test_process.py run real models behind it)."""

from __future__ import annotations

import asyncio
import time

from translate import Translation

from service.batching import Batcher

BATCH_S = 0.05  # what one batch takes, whatever its size


def _batcher(workers: int, sizes: list[int], wait_s: float = 0.005) -> Batcher:
    async def translate(texts: list[str], beam: int, attention: bool, n_best: int) -> list[Translation]:
        sizes.append(len(texts))
        await asyncio.sleep(BATCH_S)
        return [Translation(text=t, src_tokens=[], tgt_tokens=[], score=0.0) for t in texts]

    return Batcher("m", translate, asyncio.Semaphore(workers), max_batch=32, wait_s=wait_s, max_queue=512,
                   worker_count=workers)


def test_closed_loop_clients_split_evenly_between_workers():
    """16 clients that each send their next request once answered: with 2 workers they settle into two batches of
    8 side by side, never one batch of 16 on one worker while the other idles."""
    sizes: list[int] = []

    async def main() -> None:
        batcher = _batcher(2, sizes)
        batcher.start()
        stop = time.monotonic() + 12 * BATCH_S

        async def client(i: int) -> None:
            while time.monotonic() < stop:
                assert await batcher.submit([f"text {i}"], 5, False) == [
                    Translation(text=f"text {i}", src_tokens=[], tgt_tokens=[], score=0.0)]  # its own result

        await asyncio.gather(*(client(i) for i in range(16)))
        await batcher.stop()

    asyncio.run(main())
    assert len(sizes) >= 16, sizes
    assert set(sizes) == {8}, sizes


def test_a_lone_request_does_not_wait_out_the_window():
    """One request in flight is its batch's whole fair share: it starts at once, not after the joining window."""
    latencies: list[float] = []

    async def main() -> None:
        batcher = _batcher(2, [], wait_s=1.0)
        batcher.start()
        for _ in range(3):
            began = time.monotonic()
            await batcher.submit(["one text"], 5, False)
            latencies.append(time.monotonic() - began)
        await batcher.stop()

    asyncio.run(main())
    assert max(latencies) < BATCH_S + 0.5, latencies  # the 1 s window would have been waited out


def test_requests_in_flight_join_one_batch_per_worker():
    """Three requests at once on one worker: one batch of three (the fair share of 3 texts among 1 worker)."""
    sizes: list[int] = []

    async def main() -> None:
        batcher = _batcher(1, sizes)
        batcher.start()
        await asyncio.gather(*(batcher.submit([f"t{i}"], 5, False) for i in range(3)))
        await batcher.stop()

    asyncio.run(main())
    assert sizes == [3]
