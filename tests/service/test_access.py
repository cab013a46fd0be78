"""API keys and rate limits through the real app (Litestar's test client), on real tiny models."""

from __future__ import annotations

import logging

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.test_api import wait_ready

OPEN = ["/health", "/ready", "/", "/static/app.js", "/schema/openapi.json"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.txt"
    path.write_text("# one key per line\nfile-key-1\n\n  file-key-2  # a comment\n")
    return path


@pytest.fixture(scope="module")
def client(models_dir, keys_file):
    settings = Settings(models_dir=models_dir, api_keys="alpha-key,beta-key,gamma-key", api_keys_file=keys_file,
                        rate_limit="5/minute")
    with TestClient(create_app(settings)) as c:
        c.headers.update(bearer("alpha-key"))
        wait_ready(c)
        c.headers.pop("Authorization")
        yield c


def test_open_routes_need_no_key(client):
    for path in OPEN:
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"Authorization": "Basic YWxwaGEta2V5Og=="},
                                     {"Authorization": "Bearer "}, {"Authorization": "alpha-key"}])
def test_requests_without_a_valid_key_get_401(client, headers):
    for method, path in [("GET", "/v1/models"), ("POST", "/v1/translate"), ("GET", "/metrics"),
                         ("POST", "/admin/reload")]:
        r = client.request(method, path, headers=headers, json={"model": "lstm", "text": "Hallo"})
        assert r.status_code == 401, (path, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer") and "key" in r.json()["detail"]


def test_keys_from_the_variable_and_the_file_work_and_never_reach_the_logs(client, caplog):
    with caplog.at_level(logging.DEBUG):
        for key in ["beta-key", "file-key-1", "file-key-2"]:
            r = client.post("/v1/translate", json={"model": "lstm", "text": "Ein Hund."}, headers=bearer(key))
            assert r.status_code == 200, r.text
        client.get("/v1/models", headers=bearer("wrong-secret"))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST /v1/translate 200" in text and "key-" in text  # the access lines name the caller by key ID
    for secret in ["beta-key", "file-key-1", "file-key-2", "wrong-secret"]:
        assert secret not in text


def test_rate_limit_per_key_with_retry_after(client):
    for _ in range(5):
        assert client.get("/v1/models", headers=bearer("gamma-key")).status_code == 200
    refused = client.get("/v1/models", headers=bearer("gamma-key"))
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["status_code"] == 429 and "rate limit" in refused.json()["detail"]
    assert client.get("/v1/models", headers=bearer("alpha-key")).status_code == 200  # another key: its own budget
    assert client.get("/health").status_code == 200  # open routes are not limited


def test_reload_rereads_the_keys_file(client, keys_file):
    keys_file.write_text("file-key-3\n")
    assert client.get("/v1/models", headers=bearer("file-key-3")).status_code == 401
    r = client.post("/admin/reload", headers=bearer("alpha-key"))
    assert r.status_code == 200 and set(r.json()["unchanged"]) == {"lstm", "lstm-attn", "transformer"}
    assert client.get("/v1/models", headers=bearer("file-key-3")).status_code == 200
    assert client.get("/v1/models", headers=bearer("file-key-1")).status_code == 401  # removed from the file
    assert client.get("/v1/models", headers=bearer("beta-key")).status_code == 200  # from the variable


def test_rate_limit_per_address_without_keys(models_dir):
    with TestClient(create_app(Settings(models_dir=models_dir, rate_limit="2/second"))) as c:
        codes = [c.get("/v1/models").status_code for _ in range(3)]
    assert codes[2] == 429 and set(codes[:2]) <= {200, 503}


@pytest.mark.parametrize("rate", ["lots", "5/fortnight", "0/minute", "-1/second"])
def test_bad_rate_limits_are_refused_at_start(models_dir, rate):
    with pytest.raises(ValueError, match="rate_limit"):
        create_app(Settings(models_dir=models_dir, rate_limit=rate))


def test_a_missing_keys_file_is_refused_at_start(models_dir, tmp_path):
    with pytest.raises(OSError):
        create_app(Settings(models_dir=models_dir, api_keys_file=tmp_path / "nope.txt"))
