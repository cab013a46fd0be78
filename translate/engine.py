"""Our decoding engine: length-sorted batches of token ids, searched by `translate.decoding`, laid out on the cores.

On a small CPU the fastest layout is one single-threaded worker per core, each decoding whole batches: two small
matmuls side by side beat one matmul split over two threads (measured: CTranslate2's best layout here too). The
workers are forked processes where that is safe (a process with no other threads, on Linux): the search's many
small tensor operations each take Python's lock, so worker threads in one process leave a quarter of the CPU idle
waiting for it (measured: 21-27 % idle with threads, 0 % with processes). Elsewhere they are threads.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor

import torch

from translate.data import make_src, token_batches
from translate.decoding import Hypothesis, SearchConfig, search
from translate.memory import keep_freed_memory
from translate.models import Seq2Seq
from translate.tokenizer import PAD_ID

log = logging.getLogger(__name__)

_FORKED: TorchEngine | None = None  # the engine a forked worker process decodes with (set around the fork)


def pin_threads(threads: int) -> None:
    """Torch threads for the operations the calling thread runs (a worker's initializer)."""
    torch.set_num_threads(threads)


def default_workers() -> int:
    """One worker per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class TorchEngine:
    """Searches batches of token ids with a model; `workers` > 1 shares the batches among single-threaded workers."""

    def __init__(self, model: Seq2Seq, device: torch.device, workers: int = 1, inference_only: bool = False):
        """`inference_only`: the model serves nothing but searches (a `Translator`'s, not a training run's), so they
        run in torch's inference mode, without autograd's bookkeeping on each tensor (measured interleaved at beam
        5: a lone sentence 25.4 -> 22.4 ms and 22.8 -> 19.7 ms, eight 95.2 -> 84.0 ms and 82.8 -> 80.8 ms). The
        hypotheses' attention tensors are then inference tensors: read them, or copy them, outside inference mode."""
        self.model, self.device, self.workers = model, device, max(1, workers)
        self.inference_only = inference_only
        keep_freed_memory()  # each step's logits are megabytes: reuse them rather than page-fault them back
        self._pool: Executor | _ForkedWorkers | None = None
        self.layout = "1 worker"
        if self.workers > 1 and device.type == "cpu":
            self._pool, self.layout = self._start_workers()

    def _start_workers(self) -> tuple[Executor | _ForkedWorkers, str]:
        if hasattr(os, "fork") and threading.active_count() == 1:
            workers = _ForkedWorkers(self, self.workers)
            weakref.finalize(self, workers.close)
            return workers, f"{self.workers} processes x 1 thread"
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="decode", initializer=pin_threads, initargs=(1,))
        weakref.finalize(self, pool.shutdown, wait=False)
        return pool, f"{self.workers} threads x 1 thread"

    def search(
        self, src_ids: Sequence[Sequence[int]], cfg: SearchConfig, need_attention: bool, max_tokens: int = 4096,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[Hypothesis]]:
        lengths = [len(s) + 1 for s in src_ids]
        budget = self._budget(lengths, max_tokens, cfg.beam_size)
        batches = [b.tolist() for b in token_batches(lengths, budget, seed=0, epoch=0, shuffle=False)]
        results: list[list[Hypothesis]] = [[] for _ in src_ids]
        tasks = [(batch, [src_ids[i] for i in batch], cfg, need_attention) for batch in _costliest_first(batches)]
        if self._pool is None or len(tasks) == 1:
            done = map(self.decode_batch, tasks)
        elif isinstance(self._pool, _ForkedWorkers):
            done = self._pool.map(tasks)
        else:
            done = (future.result() for future in [self._pool.submit(self.decode_batch, task) for task in tasks])
        for batch, hyps in done:
            for i, h in zip(batch, hyps):
                results[i] = h
            if progress is not None:
                progress(len(batch))
        return results

    def _budget(self, lengths: list[int], max_tokens: int, beam_size: int) -> int:
        """Padded source tokens per batch: max_tokens, or 3 * max_tokens / beam_size for a beam (beam_size rows a
        sentence, which share its encoder keys/values: measured at beam 5 with 2 int8 workers, 819 source tokens a
        batch decode 2,413 tok/s, 1,638 2,817 and 3,276 3,174 on the Transformer; the recurrent models peak between
        1,638 and 3,276), shrunk so the batches come in a multiple of the workers (5 batches on 2 workers leave one
        worker idle a fifth of the time)."""
        budget = max_tokens if beam_size == 1 else max(3 * max_tokens // beam_size, 1)
        if self._pool is None:
            return budget
        total = sum(lengths)
        batches = -(-total // budget)
        batches = -(-batches // self.workers) * self.workers
        return max(max(lengths, default=1), -(-total // batches))

    def decode_batch(self, task) -> tuple[list[int], list[list[Hypothesis]]]:
        batch, ids, cfg, need_attention = task
        with torch.inference_mode(self.inference_only):
            src = make_src(ids).to(self.device)  # (B, S)
            return batch, search(self.model, src, src != PAD_ID, cfg, need_attention=need_attention)


class _ForkedWorkers:
    """Worker processes forked from this one, so they inherit the model, fed batches over pipes.

    No helper thread runs in this process (a ProcessPoolExecutor's would make every later fork unsafe), and one
    caller at a time feeds them.
    """

    def __init__(self, engine: TorchEngine, n: int):
        global _FORKED
        ctx = multiprocessing.get_context("fork")
        self.lock = threading.Lock()
        self.conns, self.procs = [], []
        _FORKED = engine
        try:
            for _ in range(n):
                here, there = ctx.Pipe()
                proc = ctx.Process(target=_serve, args=(there,), daemon=True, name="translate-decode")
                proc.start()
                there.close()
                self.conns.append(here)
                self.procs.append(proc)
        finally:
            _FORKED = None

    def map(self, tasks: list) -> Iterator:
        """Results as the workers finish them (any order); each worker takes the next task when it is done."""
        with self.lock:
            pending, busy = collections.deque(tasks), []
            try:
                for conn in self.conns:
                    if pending:
                        conn.send(pending.popleft())
                        busy.append(conn)
                while busy:
                    for conn in multiprocessing.connection.wait(busy):
                        busy.remove(conn)
                        result = _receive(conn)
                        if pending:
                            conn.send(pending.popleft())
                            busy.append(conn)
                        yield result
            finally:  # a failed or abandoned call: its other workers' results must not reach the next call
                for conn in busy:
                    with contextlib.suppress(Exception):
                        conn.recv()

    def close(self) -> None:
        for conn, proc in zip(self.conns, self.procs):
            with contextlib.suppress(OSError):
                conn.send(None)
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()


def _serve(conn) -> None:
    """A worker process: decode each task it is sent, with one thread, until told to stop."""
    pin_threads(1)
    engine = _FORKED
    while (task := conn.recv()) is not None:
        try:
            conn.send(engine.decode_batch(task))
        except Exception as e:  # the caller raises it
            conn.send(e)


def _receive(conn):
    try:
        result = conn.recv()
    except EOFError:
        raise RuntimeError("a decoding worker process died (out of memory?); see its exit status") from None
    if isinstance(result, Exception):
        raise result
    return result


def _costliest_first(batches: list[list[int]]) -> list[list[int]]:
    """Batches by descending size, so the workers finish together rather than one waiting on a late big batch.

    token_batches returns them by ascending source length; its last (longest) batches cost the most per sentence.
    """
    return list(reversed(batches))
