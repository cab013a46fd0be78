"""Prometheus metrics that only the service knows: queue depth, batch sizes, tokens, refusals.

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
OUTPUT_TOKENS = Counter("translate_output_tokens", "Output pieces translated (EOS not counted), per model", ["model"])
TRANSLATED_TEXTS = Counter("translate_texts", "Texts translated, per model", ["model"])
REFUSED = Counter("translate_refused_requests", "Requests refused, by HTTP status and reason", ["status", "reason"])
