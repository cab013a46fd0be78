"""Schemathesis hooks for tests/service/test_fuzz.py: half the generated bodies name a real model or pair.

Without them nearly every translate/compare request stops at 404 (schemathesis cannot guess model names), and the
checks never reach decoding. The models come from ST_MODELS (comma-separated).
"""

import os

import schemathesis

MODELS = [m for m in os.environ.get("ST_MODELS", "").split(",") if m]


def _real(name: object) -> object:
    return MODELS[len(name) % len(MODELS)] if isinstance(name, str) and MODELS and len(name) % 2 == 0 else name


@schemathesis.hook
def map_body(context, body):
    if isinstance(body, dict):
        if "model" in body:
            body["model"] = _real(body["model"])
        for field, real in (("source", "auto"), ("target", "en")):
            if isinstance(body.get(field), str) and len(body[field]) % 2 == 0:
                body[field] = real
        if isinstance(body.get("models"), list):
            body["models"] = [_real(name) for name in body["models"]]
    return body
