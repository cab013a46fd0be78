"""`translate serve`: registered as a plugin command, so the library's CLI never imports the service."""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

from translate import CHECKPOINTS


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="serve every run in a folder over HTTP (API + comparison page)")
    s.add_argument("--models", required=True, help=f"folder of run folders (each with {CHECKPOINTS})")
    s.add_argument("--host", default=None, help="address to bind (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="port (default: 8000)")
    s.add_argument("--processes", type=int, default=None,
                   help="service processes sharing the port (uvicorn's worker processes), each loading every model; "
                        "/ready answers 200 only when all are ready; kill -HUP restarts them one by one, each "
                        "taking over when its models are loaded; POST /admin/reload reloads them all (default: 1)")
    s.add_argument("--workers", type=int, default=None,
                   help="inference workers per service process, shared by its models, one thread each "
                        "(default: one per core, divided among the --processes: max(1, cores // processes))")
    s.add_argument("--engine", choices=("torch", "ctranslate2"), default=None,
                   help="ctranslate2: Transformers run on CTranslate2 (exported on first use), others on ours")
    s.add_argument("--quantize", choices=("none", "int8", "bf16"), default=None,
                   help="reduced precision for inference: int8 (CPU) or bf16 (GPUs, and CPUs with AVX-512 BF16 or AMX) "
                        "(default: none)")
    s.add_argument("--device", default=None, help="auto | cpu | cuda (default: cpu)")
    s.add_argument("--api-keys-file", default=None,
                   help="require API keys: one per line (or TRANSLATE_API_KEYS=k1,k2; keys never go on the command line)")
    s.add_argument("--rate-limit", default=None, help="requests per key (per address without keys), e.g. 60/minute")
    s.set_defaults(func=serve)


# How long uvicorn's rolling restart (SIGHUP with --processes N) waits for a new process to load its models before
# it gives up and keeps the old one (its health checks wait `Settings.process_liveness_s`: service.processes).
PROCESS_START_TIMEOUT_S = 300


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app
    from service.processes import Supervisor
    from service.requests_log import log_to_stderr
    from service.settings import Settings

    settings = Settings.from_env(
        models_dir=Path(args.models), host=args.host, port=args.port, processes=args.processes, workers=args.workers,
        device=args.device, engine=args.engine, quantize=args.quantize, rate_limit=args.rate_limit,
        api_keys_file=Path(args.api_keys_file) if args.api_keys_file else None,
    )
    if not settings.models_dir.is_dir():
        raise ValueError(f"models folder not found: {settings.models_dir}")
    log_to_stderr(with_pid=settings.processes > 1)
    server_options = dict(
        host=settings.host, port=settings.port, log_level="info", timeout_graceful_shutdown=30,
        access_log=False,  # service.access logs each request with its ID instead
    )
    if settings.processes == 1:
        print(f"serving {settings.models_dir} at http://{settings.host}:{settings.port}/ (API docs: /schema; "
              f"kill -HUP {os.getpid()} reloads the models)", flush=True)
        uvicorn.run(create_app(settings), **server_options)
        return 0
    # N processes: uvicorn starts, watches and restarts them; each builds its app from the environment they inherit.
    with tempfile.TemporaryDirectory(prefix="translate-processes-") as states:
        settings = dataclasses.replace(settings, processes_dir=Path(states))
        create_app(settings)  # bad settings (keys file, rate limit) fail here once, not in every process
        os.environ.update(settings.to_env())
        print(f"serving {settings.models_dir} at http://{settings.host}:{settings.port}/ with {settings.processes} "
              f"processes (API docs: /schema; kill -HUP {os.getpid()} restarts them one by one, each loading the "
              f"models afresh; POST /admin/reload reloads them all in place)", flush=True)
        config = uvicorn.Config(
            "service.app:create_app_from_env", factory=True, workers=settings.processes,
            timeout_worker_healthcheck=PROCESS_START_TIMEOUT_S, **server_options,
        )
        Supervisor(config, [config.bind_socket()], settings.process_liveness_s).run()
    return 0
