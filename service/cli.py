"""`translate serve`: registered as a plugin command, so the library's CLI never imports the service."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from translate import CHECKPOINTS


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="serve every run in a folder over HTTP (API + comparison page)")
    s.add_argument("--models", required=True, help=f"folder of run folders (each with {CHECKPOINTS})")
    s.add_argument("--host", default=None, help="address to bind (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="port (default: 8000)")
    s.add_argument("--workers", type=int, default=None,
                   help="inference workers shared by the models, one thread each (default: one per core)")
    s.add_argument("--engine", choices=("torch", "ctranslate2"), default=None,
                   help="ctranslate2: Transformers run on CTranslate2 (exported on first use), others on ours")
    s.add_argument("--quantize", choices=("none", "int8", "bf16"), default=None,
                   help="reduced precision for inference (default: none)")
    s.add_argument("--device", default=None, help="auto | cpu | cuda (default: cpu)")
    s.add_argument("--api-keys-file", default=None,
                   help="require API keys: one per line (or TRANSLATE_API_KEYS=k1,k2; keys never go on the command line)")
    s.add_argument("--rate-limit", default=None, help="requests per key (per address without keys), e.g. 60/minute")
    s.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app
    from service.requests_log import RequestIdFilter
    from service.settings import Settings

    settings = Settings.from_env(
        models_dir=Path(args.models), host=args.host, port=args.port, workers=args.workers, device=args.device,
        engine=args.engine, quantize=args.quantize, rate_limit=args.rate_limit,
        api_keys_file=Path(args.api_keys_file) if args.api_keys_file else None,
    )
    if not settings.models_dir.is_dir():
        raise ValueError(f"models folder not found: {settings.models_dir}")
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    service_log = logging.getLogger("service")
    service_log.setLevel(logging.INFO)
    service_log.addHandler(handler)
    service_log.propagate = False  # one line per record, in this format
    print(f"serving {settings.models_dir} at http://{settings.host}:{settings.port}/ (API docs: /schema; "
          f"kill -HUP {os.getpid()} reloads the models)", flush=True)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level="info", timeout_graceful_shutdown=30,
        access_log=False,  # service.access logs each request with its ID instead
    )
    return 0
