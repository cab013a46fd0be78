"""Hostile clients: schemathesis with all its checks, arbitrary text, and raw bytes, against a live server.

No input may cause a 5xx, and the OpenAPI schema must say what the server does (status codes, response shapes,
which requests it accepts and which it refuses).
"""

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings

EXAMPLES = 40  # per operation: bounds the run to seconds on tiny models


def test_schemathesis_all_checks(live_server):
    """`st run --checks all`: not_a_server_error, status-code and content-type conformance, response schema
    conformance, positive data acceptance and negative data rejection, on every operation; zero failures."""
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.service.schemathesis_hooks",
           "ST_MODELS": "lstm,lstm-attn,transformer", "PYTHONPATH": str(Path(__file__).parents[2])}
    st = Path(sys.executable).with_name("st")
    run = subprocess.run(
        [str(st), "run", f"{live_server.url}/schema/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES),
         "--seed", "1", "--no-color"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "6 selected / 6 total" in run.stdout and "No issues found" in run.stdout


def test_any_text_translates_or_is_refused_cleanly(live_server):
    """Schemathesis cannot guess model names; here arbitrary text goes to a real model."""
    import httpx
    from hypothesis import strategies as st

    with httpx.Client(base_url=live_server.url, timeout=60) as http:

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(texts=st.lists(st.text(max_size=200), min_size=1, max_size=4), beam=st.integers(1, 5),
               attention=st.booleans(), model=st.sampled_from(["lstm", "lstm-attn", "transformer"]))
        def check(texts, beam, attention, model):
            body = {"model": model, "texts": texts, "beam_size": beam, "return_attention": attention}
            r = http.post("/v1/translate", json=body)
            assert r.status_code == 200, r.text
            out = r.json()["translations"]
            assert len(out) == len(texts)
            assert all(t["text"] == "" for t, src in zip(out, texts) if not src.strip())

        check()


HOSTILE = {
    "invalid UTF-8 in a string": b'{"model": "transformer", "text": "\xff\xfe ein Hund"}',
    "lone surrogate escape": b'{"model": "transformer", "text": "\\ud800 ein Hund"}',
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep nesting in a field": b'{"model": "transformer", "text": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "huge number": b'{"model": "transformer", "text": "a", "beam_size": ' + b"9" * 5000 + b"}",
    "duplicate keys": b'{"model": "transformer", "text": "a", "text": 5}',
    "truncated": b'{"model": "transformer", "text": "a',
    "not an object": b'"ein Hund"',
    "NUL bytes": b'\x00\x00{"model": "transformer"}',
}


def test_hostile_bodies_get_a_4xx(live_server):
    """Bodies no JSON decoder can accept, or that decode to the wrong shape: a 4xx with a reason, never a 5xx."""
    import httpx

    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        for name, body in HOSTILE.items():
            for path in ("/v1/translate", "/v1/compare"):
                r = http.post(path, content=body, headers={"Content-Type": "application/json"})
                assert 400 <= r.status_code < 500, f"{name} -> {path}: {r.status_code} {r.text[:200]}"
                assert r.json()["detail"], name
        r = http.post("/v1/translate", content=HOSTILE["invalid UTF-8 in a string"],
                      headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "UTF-8" in r.json()["detail"]
        r = http.post("/v1/translate", content=HOSTILE["deep nesting"], headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "nested" in r.json()["detail"]


def test_arbitrary_bytes_never_get_a_5xx(live_server):
    """Random bytes under every content type a client might claim."""
    import httpx
    from hypothesis import strategies as st

    types = ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
             "application/octet-stream", "application/json; charset=latin-1", ""]
    with httpx.Client(base_url=live_server.url, timeout=60) as http:

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(body=st.binary(max_size=400) | st.text(max_size=200).map(str.encode),
               content_type=st.sampled_from(types), path=st.sampled_from(["/v1/translate", "/v1/compare"]))
        def check(body, content_type, path):
            headers = {"Content-Type": content_type} if content_type else {}
            r = http.post(path, content=body, headers=headers)
            assert r.status_code < 500, f"{path} {content_type!r} {body[:80]!r} -> {r.status_code}: {r.text[:200]}"

        check()
