"""Requests/s of POST /v1/translate with 1 vs. N concurrent clients, with request batching on and off.

Starts `translate serve` as a separate process on 127.0.0.1 for each setting, sends one sentence per request
(real Multi30k test sentences, round robin) for a fixed time per client count, and prints one table measured
in this run. Batching off (max batch 1) is the peer: the same server answering each request on its own.

    .venv/bin/python scripts/bench_service.py --models runs --model transformer-de-en --seconds 20 --before 28.1

(--before: 28.1 req/s, 16 clients, batching on, measured on this machine kind with commit 73f6552, the decoder
before the rewrite.)
"""

from __future__ import annotations

import argparse
import gzip
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models: Path, port: int, max_batch: int, serve_args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TRANSLATE_MAX_BATCH_SIZE": str(max_batch)}
    cmd = [sys.executable, "-m", "translate", "serve", "--models", str(models), "--port", str(port), *serve_args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def load(url: str, model: str, sentences: list[str], clients: int, seconds: float, beam: int) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            i = k
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = http.post("/v1/translate", json={"model": model, "text": sentences[i % len(sentences)], "beam_size": beam})
                dt = time.perf_counter() - t0
                with lock:
                    if r.status_code == 200:
                        latencies.append(dt)
                    else:
                        errors[0] += 1
                i += clients

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    lat = sorted(latencies)
    return {
        "rps": len(lat) / elapsed, "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))] if lat else float("nan"), "errors": errors[0], "n": len(lat),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="runs", help="folder of runs to serve (default: runs)")
    p.add_argument("--model", help="run name to load-test (default: the first served)")
    p.add_argument("--clients", default="1,16", help="comma-separated concurrent client counts (default: 1,16)")
    p.add_argument("--seconds", type=float, default=20, help="load time per client count (default: 20)")
    p.add_argument("--beam", type=int, default=5, help="beam size of each request (default: 5)")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"), help="Multi30k folder for sentences")
    p.add_argument("--engine", default="torch", help="serve --engine (default: torch)")
    p.add_argument("--quantize", default="none", help="serve --quantize (default: none)")
    p.add_argument("--before", type=float, help="req/s at the highest client count measured before (batching on)")
    args = p.parse_args()
    serve_args = ["--engine", args.engine, "--quantize", args.quantize]

    test = Path(args.data) / "test_2016_flickr.de.gz"
    sentences = gzip.open(test, "rt", encoding="utf-8").read().splitlines()[:500] if test.exists() else [
        "Ein Hund rennt über die Wiese.", "Zwei Männer spielen Fußball.", "Eine Frau liest ein Buch im Park."
    ]
    clients = [int(c) for c in args.clients.split(",")]
    rows = []
    for label, max_batch in [("batching off (max 1)", 1), ("batching on (max 32)", 32)]:
        port = free_port()
        proc = start_server(Path(args.models), port, max_batch, serve_args)
        try:
            url = f"http://127.0.0.1:{port}"
            model = args.model or httpx.get(f"{url}/v1/models").json()["models"][0]["name"]
            load(url, model, sentences, 1, 2, args.beam)  # warm-up
            for c in clients:
                r = load(url, model, sentences, c, args.seconds, args.beam)
                rows.append((label, c, r))
                print(f"{label:22s} clients={c:3d}  {r['rps']:7.1f} req/s  p50 {r['p50_ms']:7.1f} ms  "
                      f"p95 {r['p95_ms']:7.1f} ms  ({r['n']} ok, {r['errors']} errors)", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(f"\nmodel {model} ({' '.join(serve_args)}), beam {args.beam}, one sentence per request, "
          f"{args.seconds:.0f} s per row, {os.cpu_count()} CPUs")
    base = {c: r["rps"] for label, c, r in rows if label.startswith("batching off")}
    for label, c, r in rows:
        if label.startswith("batching on"):
            print(f"clients={c:3d}: batching on {r['rps']:.1f} req/s vs off {base[c]:.1f} req/s ({r['rps'] / base[c]:.2f}x)")
    on = {c: r["rps"] for label, c, r in rows if label.startswith("batching on")}
    most, least = max(on), min(on)
    if most != least:
        print(f"batching on: {most} clients / {least} client(s) = {on[most] / on[least]:.2f}x")
    if args.before:
        print(f"batching on, {most} clients: {on[most]:.1f} req/s vs {args.before:.1f} before = {on[most] / args.before:.2f}x")


if __name__ == "__main__":
    main()
