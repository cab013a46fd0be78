"""The HTTP API through Litestar's test client, on real tiny models trained in this test session."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from litestar.testing import TestClient
from openapi_spec_validator import validate

from service.app import create_app
from service.settings import Settings

SENTENCES = ["Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.", "Ein Hund.", "Ein kleines Mädchen klettert in ein Spielhaus aus Holz."]


def wait_ready(client) -> None:
    deadline = time.monotonic() + 60
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, client.get("/ready").json()
        time.sleep(0.05)


@pytest.fixture(scope="module")
def client(models_dir):
    with TestClient(create_app(Settings(models_dir=models_dir))) as c:
        wait_ready(c)
        yield c


def test_health_and_ready(client):
    assert client.get("/health").json() == {"status": "ok", "pid": os.getpid()}
    ready = client.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["models"] == ["lstm", "lstm-attn", "transformer"]
    assert "broken" in body["errors"] and "not a readable checkpoint" in body["errors"]["broken"]


def test_not_ready_before_models_load(models_dir):
    client = TestClient(create_app(Settings(models_dir=models_dir)))  # not a context manager: no lifespan, no models
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "loading" and ready.headers["retry-after"]
    r = client.post("/v1/translate", json={"model": "lstm", "text": "Hallo"})
    assert r.status_code == 503 and r.headers["retry-after"]


def test_models(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert set(models) == {"lstm", "lstm-attn", "transformer"}
    m = models["transformer"]
    assert (m["arch"], m["src_lang"], m["tgt_lang"]) == ("transformer", "de", "en") and m["parameters"] > 10_000
    assert m["metrics"]["validation"]["bleu"] > 90 and m["metrics"]["validation"]["split"] == "val"


@pytest.mark.parametrize("model", ["lstm", "lstm-attn", "transformer"])
def test_translate_with_attention_shapes(client, model):
    r = client.post("/v1/translate", json={"model": model, "texts": SENTENCES, "beam_size": 3, "return_attention": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == model and body["elapsed_ms"] > 0 and len(body["translations"]) == 3
    first = body["translations"][0]
    assert first["text"] == "Two young, White males are outside near many bushes."  # memorised training pair
    for t in body["translations"]:
        if model == "lstm":
            assert t["attention"] is None
        else:
            assert len(t["attention"]) == len(t["tgt_tokens"])
            assert all(len(row) == len(t["src_tokens"]) for row in t["attention"])


def test_single_text_empty_text_and_batch_equals_one_by_one(client):
    batch = client.post("/v1/translate", json={"model": "transformer", "texts": SENTENCES + [""]}).json()["translations"]
    singles = [client.post("/v1/translate", json={"model": "transformer", "text": s}).json()["translations"][0] for s in SENTENCES]
    assert [t["text"] for t in batch[:3]] == [t["text"] for t in singles]
    assert batch[3] == {"text": "", "src_tokens": [], "tgt_tokens": [], "attention": None, "score": 0.0}


def test_alternatives_are_the_next_best_with_scores(client):
    r = client.post("/v1/translate", json={"model": "transformer", "texts": SENTENCES[:2], "alternatives": 3, "beam_size": 2})
    assert r.status_code == 200, r.text
    for t in r.json()["translations"]:
        texts = [t["text"]] + [a["text"] for a in t["alternatives"]]
        assert len(texts) == 4 and len(set(texts)) == 4  # the beam widened to 4: four different hypotheses
        assert all(a["score"] < 0 for a in t["alternatives"]) and t["score"] < 0  # log-probabilities
    plain = client.post("/v1/translate", json={"model": "transformer", "text": SENTENCES[0]}).json()["translations"][0]
    assert "alternatives" not in plain


def test_compare(client):
    r = client.post("/v1/compare", json={"text": SENTENCES[1]})
    assert r.status_code == 200
    results = {x["model"]: x for x in r.json()["results"]}
    assert set(results) == {"lstm", "lstm-attn", "transformer"}
    assert results["lstm"]["translations"][0]["attention"] is None
    assert len(results["lstm-attn"]["translations"][0]["attention"]) == len(results["lstm-attn"]["translations"][0]["tgt_tokens"])
    some = client.post("/v1/compare", json={"text": "Ein Hund.", "models": ["transformer"], "beam_size": 1}).json()
    assert [x["model"] for x in some["results"]] == ["transformer"]


@pytest.mark.parametrize("body,status,needle", [
    ({"model": "nope", "text": "Hallo"}, 404, "unknown model 'nope'; known: lstm, lstm-attn, transformer"),
    ({"model": "lstm", "texts": ["a"] * 65}, 422, "max_texts 64"),
    ({"model": "lstm", "texts": ["a" * 2001]}, 422, "max_chars 2000"),
    ({"model": "lstm", "text": "a", "beam_size": 17}, 422, "max_beam 16"),
    ({"model": "lstm", "text": "a", "beam_size": 0}, 400, "Validation failed"),
    ({"model": "lstm", "texts": "not a list"}, 400, "Validation failed"),
    ({"model": "lstm", "text": "a", "colour": "red"}, 400, "Validation failed"),
    ({"model": "lstm"}, 400, "either 'texts'"),
    ({"model": "lstm", "text": "a", "texts": ["b"]}, 400, "either 'texts'"),
])
def test_errors(client, body, status, needle):
    r = client.post("/v1/translate", json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"] + str(r.json().get("extra", ""))


def test_malformed_json_and_unknown_model_list(client):
    r = client.post("/v1/translate", content=b'{"model": "lstm", "text": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = client.post("/v1/compare", json={"text": "a", "models": ["lstm", "gpt"]})
    assert r.status_code == 404 and r.json()["extra"]["known"] == ["lstm", "lstm-attn", "transformer"]


def test_control_characters_and_surrogates(client):
    for raw in ['{"model": "transformer", "text": "Ein\\u0000 Hund\\u0007\\u001b[31m"}',
                '{"model": "transformer", "text": "Ein \\ud800 Hund"}']:
        r = client.post("/v1/translate", content=raw.encode(), headers={"content-type": "application/json"})
        assert r.status_code in (200, 400), r.text
    assert client.post("/v1/translate", json={"model": "lstm", "text": "Ein Hund."}).status_code == 200  # still serving


def test_body_size_and_queue_limits(models_dir):
    with TestClient(create_app(Settings(models_dir=models_dir, max_body_bytes=200, max_queue=2))) as c:
        wait_ready(c)
        r = c.post("/v1/translate", json={"model": "lstm", "text": "x" * 500})
        assert r.status_code == 413
        r = c.post("/v1/translate", json={"model": "lstm", "texts": ["a", "b", "c"]})
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["detail"]


def test_concurrent_requests_share_batches(live_server):
    import httpx

    batcher = live_server.app.dependencies["batchers"].dependency()["transformer"]
    before = batcher.batches
    bodies = [{"model": "transformer", "text": s, "beam_size": 2} for s in SENTENCES * 6]
    with httpx.Client(base_url=live_server.url, timeout=60) as http, ThreadPoolExecutor(18) as pool:
        responses = list(pool.map(lambda b: http.post("/v1/translate", json=b), bodies))
    assert all(r.status_code == 200 for r in responses)
    texts = [r.json()["translations"][0]["text"] for r in responses]
    assert texts == texts[:3] * 6  # grouping never mixes up whose result is whose
    assert batcher.batches - before < len(responses)  # 18 concurrent requests, fewer model calls


def test_openapi_schema_validates(client):
    schema = client.get("/schema/openapi.json").json()
    validate(schema)
    assert {"/health", "/ready", "/v1/models", "/v1/translate", "/v1/compare"} <= set(schema["paths"])


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"] and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/style.css").status_code == 200


def test_requests_that_cannot_start_in_time_get_503_at_once(models_dir):
    """One worker, one text a batch, a 30 ms deadline: of 24 concurrent requests the ones a batch did not take in
    time are refused with 503 and Retry-After, the rest translated; nothing else."""
    import httpx

    from tests.service.conftest import LiveServer

    settings = Settings(models_dir=models_dir, workers=1, max_batch_size=1, max_wait_ms=30)
    text = " ".join(SENTENCES * 8)  # long: each request keeps the only worker busy a while
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=60) as http, \
            ThreadPoolExecutor(24) as pool:
        responses = list(pool.map(
            lambda _: http.post("/v1/translate", json={"model": "transformer", "text": text, "beam_size": 5}), range(24)
        ))
        codes = [r.status_code for r in responses]
        assert set(codes) == {200, 503}, codes
        refused = [r for r in responses if r.status_code == 503]
        assert all(r.headers["retry-after"] == "1" and "overloaded" in r.json()["detail"] for r in refused)
        assert all(r.json()["extra"]["max_wait_ms"] == 30 for r in refused)
        batcher = server.app.dependencies["batchers"].dependency()["transformer"]
        assert batcher.batches == codes.count(200)  # refused requests never reached the model
        metrics = http.get("/metrics").text
        line = next(x for x in metrics.splitlines() if x.startswith("translate_refused_requests_total{")
                    and 'reason="Overloaded"' in x)
        assert float(line.split()[-1]) >= len(refused)
        assert http.post("/v1/translate", json={"model": "transformer", "text": "Ein Hund."}).status_code == 200


def test_metrics_count_requests_batches_tokens_and_refusals(live_server):
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    def samples(http) -> dict:
        text = http.get("/metrics").text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        before = samples(http)
        r = http.post("/v1/translate", json={"model": "transformer", "texts": SENTENCES, "beam_size": 2})
        assert r.status_code == 200
        tokens = sum(len(t["tgt_tokens"]) for t in r.json()["translations"])
        assert http.post("/v1/translate", json={"model": "nope", "text": "a"}).status_code == 404
        after = samples(http)
    delta = lambda key: after.get(key, 0) - before.get(key, 0)  # noqa: E731 (the server may have served other tests)
    model = (("model", "transformer"),)
    assert delta(("translate_output_tokens_total", model)) == tokens
    assert delta(("translate_texts_total", model)) == 3
    assert delta(("translate_batch_texts_count", model)) >= 1 and delta(("translate_batch_texts_sum", model)) == 3
    ok = [k for k in after if k[0] == "translate_http_requests_total" and ("path", "/v1/translate") in k[1]]
    assert {dict(k[1])["status_code"] for k in ok} >= {"200", "404"}
    assert any(k[0] == "translate_http_request_duration_seconds_bucket" for k in after)
    assert ("translate_queue_texts", model) in after


def test_request_ids_are_kept_or_made_and_logged(client, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="service.access"):
        given = client.post("/v1/translate", json={"model": "lstm", "text": "Ein Hund."}, headers={"X-Request-ID": "abc-123"})
        made = client.get("/health")
        forged = client.get("/health", headers={"X-Request-ID": "x\n2026 ERROR fake line"})
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32 and forged.headers["x-request-id"] != "x\n2026 ERROR fake line"
    lines = [(r.getMessage(), r.request_id) for r in caplog.records if r.name == "service.access"]
    assert any(line.startswith("POST /v1/translate 200") and rid == "abc-123" for line, rid in lines), lines
    assert any(rid == made.headers["x-request-id"] for _, rid in lines)


def test_a_killed_inference_process_is_replaced(models_dir):
    """A worker process that dies (the OOM killer, a crash) costs no request: the pool is replaced, the batch retried."""
    import os
    import signal

    import httpx

    from tests.service.conftest import LiveServer

    with LiveServer(Settings(models_dir=models_dir, workers=1)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        body = {"model": "transformer", "text": SENTENCES[0]}
        first = http.post("/v1/translate", json=body)
        assert first.status_code == 200
        inference = server.app.dependencies["batchers"].dependency()["transformer"].translate.func.__self__
        before = set(inference._executor._processes)
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        again = http.post("/v1/translate", json=body)
        assert again.status_code == 200 and again.json()["translations"] == first.json()["translations"]
        assert set(inference._executor._processes).isdisjoint(before)


def test_a_client_that_disconnects_leaves_the_queue(models_dir):
    """Its texts are never translated: the job is dropped while it waits for a worker (here, the only one, kept
    busy by another model's long request)."""
    import httpx
    from prometheus_client import REGISTRY

    from tests.service.conftest import LiveServer

    def texts() -> float:
        return REGISTRY.get_sample_value("translate_texts_total", {"model": "lstm"}) or 0.0

    def gone() -> float:
        return REGISTRY.get_sample_value("translate_refused_requests_total", {"status": "499", "reason": "ClientGone"}) or 0.0

    def started() -> float:
        return REGISTRY.get_sample_value("translate_batch_texts_count", {"model": "transformer"}) or 0.0

    long_request = {"model": "transformer", "texts": [" ".join(SENTENCES * 8)] * 8, "beam_size": 16}
    with LiveServer(Settings(models_dir=models_dir, workers=1, max_wait_ms=60_000)) as server, \
            ThreadPoolExecutor(1) as pool:
        texts_before, gone_before, started_before = texts(), gone(), started()
        busy = pool.submit(httpx.post, f"{server.url}/v1/translate", json=long_request, timeout=120)
        deadline = time.monotonic() + 10
        while started() == started_before:  # the long batch holds the only worker
            assert time.monotonic() < deadline, "the long request did not start"
            time.sleep(0.01)
        with pytest.raises(httpx.ReadTimeout):  # the client gives up after 0.3 s, while the long batch runs
            httpx.post(f"{server.url}/v1/translate", json={"model": "lstm", "texts": ["Ein Hund."] * 3}, timeout=0.3)
        assert not busy.done(), "the long request ended too soon to keep the worker busy"
        deadline = time.monotonic() + 10
        while gone() == gone_before:
            assert time.monotonic() < deadline, "the disconnect was not noticed"
            time.sleep(0.05)
        assert busy.result().status_code == 200
        r = httpx.post(f"{server.url}/v1/translate", json={"model": "lstm", "text": "Ein Hund."}, timeout=30)
        assert r.status_code == 200
        assert texts() == texts_before + 1  # only the last request's text was translated


def test_a_language_pair_instead_of_a_model(client):
    by_pair = client.post("/v1/translate", json={"source": "de", "target": "en", "text": SENTENCES[0]})
    assert by_pair.status_code == 200 and by_pair.json()["model"] in {"lstm", "lstm-attn", "transformer"}
    auto = client.post("/v1/translate", json={"source": "auto", "target": "en", "text": SENTENCES[0]})
    assert auto.status_code == 200 and auto.json()["model"] == by_pair.json()["model"]
    unserved = client.post("/v1/translate", json={"source": "de", "target": "fr", "text": "Hallo"})
    assert unserved.status_code == 404 and "served pairs: de-en" in unserved.json()["detail"]
    for body in ({"model": "lstm", "source": "de", "target": "en", "text": "x"}, {"source": "de", "text": "x"},
                 {"text": "x"}):
        r = client.post("/v1/translate", json=body)
        assert r.status_code == 400 and "'source' and 'target'" in str(r.json()), (body, r.text)
