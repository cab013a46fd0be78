"""Property-based fuzzing of the live API from its own OpenAPI schema: no input may cause a 5xx.

Schemathesis generates valid and invalid requests for every operation; the run is bounded by example count.
"""

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

EXAMPLES = 40  # per operation and mode: bounds the run to well under a minute on tiny models


def test_no_server_errors(live_server):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /v1/translate", "POST /v1/compare", "GET /v1/models", "GET /health", "GET /ready"} <= labels
    seen: dict[str, set[int]] = {}
    for op in operations:
        # Operations without parameters or body have no invalid inputs to generate.
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if op.method.upper() == "POST" else (GenerationMode.POSITIVE,)
        for mode in modes:

            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(case=op.as_strategy(generation_mode=mode))
            def check(case):
                response = case.call(base_url=live_server.url, timeout=60)
                seen.setdefault(op.label, set()).add(response.status_code)
                assert response.status_code < 500, f"{op.label} -> {response.status_code}: {response.text[:300]}"

            check()
    assert seen["POST /v1/translate"] & {400, 404, 422}  # invalid requests were made and refused


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
