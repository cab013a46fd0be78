"""Prometheus metrics that only the service knows: queue depth, batch sizes and times, tokens, refusals.

Requests and their latency by route and status come from Litestar's Prometheus middleware (`create_app`); both use
prometheus-client's process-wide registry, which `/metrics` exposes. The worker processes keep no metrics: every
number here is counted in the server process.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUEUE_TEXTS = Gauge("translate_queue_texts", "Texts queued or being translated, per model", ["model"])
BATCH_TEXTS = Histogram(
    "translate_batch_texts", "Texts per batch given to a worker, per model", ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
BATCH_SECONDS = Histogram(
    "translate_batch_seconds", "Time a worker took to translate one batch (one search setting), per model", ["model"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0),
)
OUTPUT_TOKENS = Counter("translate_output_tokens", "Output pieces translated (EOS not counted), per model", ["model"])
TRANSLATED_TEXTS = Counter("translate_texts", "Texts translated, per model", ["model"])
REFUSED = Counter("translate_refused_requests", "Requests refused, by HTTP status and reason", ["status", "reason"])
