"""Overload test of the HTTP service: status codes, latency, throughput and memory at 16 vs. 256 clients.

Starts `translate serve` as a separate process on 127.0.0.1 (loopback only), warms it up, then keeps N clients
busy for a fixed time per row, each sending one Multi30k test sentence per request (beam 5) and, after a 503,
waiting the Retry-After it was given (`--no-backoff`: retry at once). Prints one table measured in this run: the
status codes, requests/s answered 200, latency of the 200s, and the server's memory (its own process, and with its
inference workers) before and after each row. The bound to check: p99 of the 200s at most max_wait_ms plus one
batch, a batch's time at that load being the p99 of the server's own `translate_batch_seconds` over the row.
Repeating the last count (16,256,256) shows whether memory stays flat once the connections are warm.

    .venv/bin/python scripts/load_service.py --models runs --model transformer-de-en --clients 16,256,256 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service_client import add_common_args, free_port, run_clients, sentences, start_server


def rss_mb(pid: int) -> tuple[float, float]:
    """(this process, this process and its children) resident memory in MB, from /proc."""

    def one(p: int) -> float:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    own = one(pid)
    return own, own + sum(one(int(c)) for c in children)


def batch_buckets(url: str, model: str) -> dict[float, float]:
    """The server's histogram of batch times for `model`: upper bound (s) -> cumulative count."""
    out = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        if family.name == "translate_batch_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket") and sample.labels["model"] == model:
                    out[float(sample.labels["le"])] = sample.value
    return out


def quantile_ms(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """Prometheus's histogram_quantile over the batches of one row (linear within the bucket)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] == 0:
        return float("nan")
    rank, lower, below = q * counts[-1], 0.0, 0.0
    for bound, count in zip(bounds, counts):
        if count >= rank:
            upper = bound if bound != float("inf") else lower
            return 1000 * (lower + (upper - lower) * (rank - below) / max(count - below, 1e-9))
        lower, below = bound, count
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--clients", default="16,256,256", help="comma-separated concurrent client counts (default: 16,256,256)")
    p.add_argument("--seconds", type=float, default=60, help="load time per row (default: 60)")
    p.add_argument("--warmup", type=float, default=10, help="warm-up time at the first client count (default: 10)")
    p.add_argument("--no-backoff", action="store_true", help="after a 503, retry at once instead of after Retry-After")
    p.add_argument("--serve-args", default="", help="extra `translate serve` flags, e.g. '--quantize int8'")
    args = p.parse_args()

    texts = sentences(args.data)
    max_wait_ms = float(os.environ.get("TRANSLATE_MAX_WAIT_MS", 1000))
    max_batch = int(os.environ.get("TRANSLATE_MAX_BATCH_SIZE", 32))
    clients = [int(c) for c in args.clients.split(",")]
    port = free_port()
    proc = start_server(Path(args.models), port, max_batch, args.serve_args.split())
    url = f"http://127.0.0.1:{port}"
    try:
        model = args.model or httpx.get(f"{url}/v1/models").json()["models"][0]["name"]
        asyncio.run(run_clients(url, model, texts, clients[0], args.warmup, args.beam, not args.no_backoff))
        print(f"model {model}, beam {args.beam}, max_wait_ms {max_wait_ms:.0f}, max batch {max_batch} texts, "
              f"{args.seconds:.0f} s per row, backoff {'off' if args.no_backoff else 'on'}, {os.cpu_count()} CPUs\n")
        print("| clients | req/s (200) | statuses | p50 ms | p99 ms | max ms | batch p99 ms | bound ms "
              "| server RSS MB | with workers MB |")
        print("|---:|---:|---|---:|---:|---:|---:|---:|---|---|")
        rows = []
        for c in clients:
            before, buckets = rss_mb(proc.pid), batch_buckets(url, model)
            r = asyncio.run(run_clients(url, model, texts, c, args.seconds, args.beam, not args.no_backoff))
            after, batch_p99 = rss_mb(proc.pid), quantile_ms(0.99, buckets, batch_buckets(url, model))
            r["bound"] = max_wait_ms + batch_p99  # waiting at most the deadline, then one batch at this load
            rows.append((c, r))
            codes = ", ".join(f"{code}: {n}" for code, n in sorted(r["statuses"].items()))
            print(f"| {c} | {r['rps']:.1f} | {codes} | {r['p50']:.0f} | {r['p99']:.0f} | {r['max']:.0f} | "
                  f"{batch_p99:.0f} | {r['bound']:.0f} | {before[0]:.0f} → {after[0]:.0f} | "
                  f"{before[1]:.0f} → {after[1]:.0f} |", flush=True)
        (least, low), (most, high) = min(rows, key=lambda row: row[0]), rows[-1]
        print(f"\n{most} clients (last row): statuses {sorted(high['statuses'])}; p99 of the 200s {high['p99']:.0f} ms "
              f"vs max_wait_ms + a batch's p99 {high['bound']:.0f} ms: {'within' if high['p99'] <= high['bound'] else 'OVER'}; "
              f"throughput {high['rps'] / low['rps']:.2f}x of {least} clients")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
