"""Requests/s of POST /v1/translate with 1 vs. N concurrent clients: batching on and off, and the code before.

Starts `translate serve` as a separate process on 127.0.0.1 for each setting, sends one sentence per request
(real Multi30k test sentences, round robin) for a fixed time per client count, and prints one table measured
in this run. Batching off (max batch 1) is one peer: the same server answering each request on its own. The other
is an older commit of this project (`--before-rev`), served from a copy of its tree by the same clients.

    .venv/bin/python scripts/bench_service.py --models runs --model transformer-de-en --seconds 20 \\
        --quantize int8 --before-rev 73f6552

(73f6552: the service before the decoder rewrite.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
from pathlib import Path

import httpx

from service_client import ROOT, add_common_args, free_port, run_clients, sentences, start_server


def measure(label: str, models: Path, max_batch: int, serve_args: list[str], model: str | None, texts: list[str],
            clients: list[int], seconds: float, beam: int, code: Path | None = None) -> tuple[str, list[tuple[int, dict]]]:
    port = free_port()
    proc = start_server(models, port, max_batch, serve_args, code)
    rows = []
    try:
        url = f"http://127.0.0.1:{port}"
        model = model or httpx.get(f"{url}/v1/models").json()["models"][0]["name"]
        asyncio.run(run_clients(url, model, texts, 1, 2, beam))  # warm-up
        for c in clients:
            r = asyncio.run(run_clients(url, model, texts, c, seconds, beam))
            rows.append((c, r))
            errors = sum(n for code, n in r["statuses"].items() if code != 200)
            print(f"{label:34s} clients={c:3d}  {r['rps']:7.1f} req/s  p50 {r['p50']:7.1f} ms  "
                  f"p95 {r['p95']:7.1f} ms  ({r['n']} ok, {errors} errors)", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return model, rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--clients", default="1,16", help="comma-separated concurrent client counts (default: 1,16)")
    p.add_argument("--seconds", type=float, default=20, help="load time per client count (default: 20)")
    p.add_argument("--engine", default="torch", help="serve --engine (default: torch)")
    p.add_argument("--quantize", default="none", help="serve --quantize (default: none)")
    p.add_argument("--before-rev", help="also serve this git revision of the project (default settings), batching on")
    p.add_argument("--no-batching-off", action="store_true", help="skip the batching-off rows")
    args = p.parse_args()
    serve_args = ["--engine", args.engine, "--quantize", args.quantize]
    texts, models = sentences(args.data), Path(args.models).resolve()
    clients = [int(c) for c in args.clients.split(",")]

    results: dict[str, dict[int, dict]] = {}
    settings = [] if args.no_batching_off else [("batching off (max 1)", 1)]
    for label, max_batch in [*settings, ("batching on (max 32)", 32)]:
        model, rows = measure(label, models, max_batch, serve_args, args.model, texts, clients, args.seconds, args.beam)
        results[label] = dict(rows)
    if args.before_rev:
        with tempfile.TemporaryDirectory() as tree:
            archive = subprocess.run(["git", "archive", args.before_rev], cwd=ROOT, check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
            label = f"before ({args.before_rev}), batching on"
            _, rows = measure(label, models, 32, [], args.model, texts, clients, args.seconds, args.beam, Path(tree))
            results[label] = dict(rows)

    print(f"\nmodel {model} ({' '.join(serve_args)}), beam {args.beam}, one sentence per request, "
          f"{args.seconds:.0f} s per row, {os.cpu_count()} CPUs, aiohttp clients")
    on = results["batching on (max 32)"]
    most, least = max(on), min(on)
    if "batching off (max 1)" in results:
        for c, r in on.items():
            off = results["batching off (max 1)"][c]["rps"]
            print(f"clients={c:3d}: batching on {r['rps']:.1f} req/s vs off {off:.1f} req/s ({r['rps'] / off:.2f}x)")
    if most != least:
        print(f"batching on: {most} clients / {least} client(s) = {on[most]['rps'] / on[least]['rps']:.2f}x")
    if args.before_rev:
        before = results[f"before ({args.before_rev}), batching on"][most]["rps"]
        print(f"batching on, {most} clients: {on[most]['rps']:.1f} req/s vs {before:.1f} before ({args.before_rev}) "
              f"= {on[most]['rps'] / before:.2f}x")


if __name__ == "__main__":
    main()
