"""What the service benchmarks share: a `translate serve` process on loopback, and clients that load it.

The clients are aiohttp coroutines in one process: on these two shared cores the load generator must cost far less
CPU than the server it measures (16 httpx threads took a large share of a core, httpx's async pool ~75 % of one at
256 clients; aiohttp a few percent).
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
FALLBACK = ["Ein Hund rennt über die Wiese.", "Zwei Männer spielen Fußball.", "Eine Frau liest ein Buch im Park."]


def add_common_args(p) -> None:
    """The flags every service benchmark takes: what to serve, what to load it with."""
    p.add_argument("--models", default="runs", help="folder of runs to serve (default: runs)")
    p.add_argument("--model", help="run name to load (default: the first served)")
    p.add_argument("--beam", type=int, default=5, help="beam size of each request (default: 5)")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"), help="Multi30k folder for sentences")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sentences(data: str | Path, n: int = 500) -> list[str]:
    """The first Multi30k test sentences (German), or three fixed ones without the corpus."""
    test = Path(data) / "test_2016_flickr.de.gz"
    return gzip.open(test, "rt", encoding="utf-8").read().splitlines()[:n] if test.exists() else FALLBACK


def start_server(models: Path, port: int, max_batch: int, serve_args: list[str], code: Path | None = None
                 ) -> subprocess.Popen:
    """`translate serve` on 127.0.0.1:port, once ready; `code`: a source tree to run instead of this one."""
    env = {**os.environ, "TRANSLATE_MAX_BATCH_SIZE": str(max_batch)}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    cmd = [sys.executable, "-m", "translate", "serve", "--models", str(models), "--port", str(port), *serve_args]
    proc = subprocess.Popen(cmd, env=env, cwd=code or ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready")


async def run_clients(url: str, model: str, texts: list[str], clients: int, seconds: float, beam: int,
                      backoff: bool = True) -> dict:
    """`clients` clients, each sending one text per request for `seconds`; after a 503 a client waits its
    Retry-After (`backoff`) or retries at once. Statuses, requests/s answered 200 and their latency (ms)."""
    statuses: collections.Counter[int] = collections.Counter()
    ok_latencies: list[float] = []
    stop = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=clients)

    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as http:

        async def client(k: int) -> None:
            i = k
            while time.monotonic() < stop:
                body = {"model": model, "text": texts[i % len(texts)], "beam_size": beam}
                t0 = time.perf_counter()
                try:
                    async with http.post("/v1/translate", json=body) as r:
                        await r.read()
                except aiohttp.ClientError:
                    statuses[0] += 1  # 0: no answer (connection refused or dropped)
                    continue
                statuses[r.status] += 1
                if r.status == 200:
                    ok_latencies.append(time.perf_counter() - t0)
                elif backoff and "Retry-After" in r.headers:
                    await asyncio.sleep(min(float(r.headers["Retry-After"]), max(0.0, stop - time.monotonic())))
                i += clients

        start = time.monotonic()
        await asyncio.gather(*(client(k) for k in range(clients)))
        elapsed = time.monotonic() - start
    lat = sorted(ok_latencies)
    pct = (lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]) if lat else (lambda q: float("nan"))
    return {"statuses": dict(statuses), "rps": len(lat) / elapsed, "p50": pct(0.5), "p95": pct(0.95),
            "p99": pct(0.99), "max": 1000 * lat[-1] if lat else float("nan"), "n": len(lat)}
