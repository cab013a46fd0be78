"""Service settings: frozen, from flags or TRANSLATE_* environment variables, every limit configurable."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from translate import decode_settings

ENV_PREFIX = "TRANSLATE_"


@dataclass(frozen=True)
class Settings:
    models_dir: Path = Path("runs")  # every run folder (or .pt file) under it is served
    host: str = "127.0.0.1"
    port: int = 8000
    processes: int = 1  # service processes sharing the port (uvicorn's workers), each with its own models and workers
    processes_dir: Path | None = None  # where the processes publish their states (`translate serve` makes it)
    process_liveness_s: float = 30.0  # with processes > 1: a process that does not answer a health check by then is replaced
    workers: int = 0  # inference worker processes (threads on a GPU) per service process; 0: its share of the cores
    device: str = "cpu"  # auto | cpu | cuda
    engine: str = "torch"  # torch (every architecture) | ctranslate2 (Transformers; the others stay on torch)
    quantize: str = "none"  # none | int8 | bf16: reduced precision for inference
    max_body_bytes: int = 1_000_000  # larger request bodies get 413
    max_texts: int = 64  # texts per request (422 beyond)
    max_chars: int = 2_000  # characters per text (422 beyond)
    max_beam: int = 16  # beam_size above this gets 422
    max_batch_size: int = 32  # texts one model translates in one batch
    batch_wait_ms: float = 5.0  # how long a batch waits for more requests to join it
    max_queue: int = 512  # texts waiting per model; beyond it requests get 503 with Retry-After
    max_wait_ms: float = 1000.0  # a request no batch has started by then gets 503 with Retry-After
    api_keys: str = field(default="", repr=False)  # comma-separated; with keys (or a keys file) requests need one
    api_keys_file: Path | None = None  # one key per line ('#' comments); read at start and on reload
    cors_origins: str = ""  # comma-separated origins browser clients may call from (* for any); empty: no CORS
    rate_limit: str = ""  # e.g. 60/minute: requests per key (per client address without keys); empty: no limit

    def __post_init__(self) -> None:
        if self.processes < 1:
            raise ValueError(f"processes must be at least 1, not {self.processes}")
        if self.process_liveness_s <= 0:
            raise ValueError(f"process_liveness_s must be positive, not {self.process_liveness_s}")
        if self.batch_wait_ms >= self.max_wait_ms:  # every request would wait out the deadline in the batch window
            raise ValueError(f"batch_wait_ms ({self.batch_wait_ms}) must be below max_wait_ms ({self.max_wait_ms})")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """TRANSLATE_MODELS_DIR, TRANSLATE_MAX_TEXTS, ...: one variable per field; `overrides` (flags) win."""
        environ = os.environ if environ is None else environ
        names = {f"{ENV_PREFIX}{f.name.upper()}": f.name for f in dataclasses.fields(cls)}
        values = {names[var]: raw for var, raw in environ.items() if var in names}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return decode_settings(cls, values, "service", spell=lambda key: f"{ENV_PREFIX}{key.upper()}")

    def to_env(self) -> dict[str, str]:
        """These settings as the variables `from_env` reads: how `translate serve` hands them to its processes."""
        return {f"{ENV_PREFIX}{f.name.upper()}": str(value) for f in dataclasses.fields(self)
                if (value := getattr(self, f.name)) is not None}
