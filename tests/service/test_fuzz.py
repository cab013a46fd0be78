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
