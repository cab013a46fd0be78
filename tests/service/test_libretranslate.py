"""The LibreTranslate-compatible endpoints, through LibreTranslate's official Python client and the requests its
web page sends (form bodies with fields of its own), against a live server of real tiny de->en models."""

from __future__ import annotations

import json
import urllib.error

import httpx
import pytest
from libretranslatepy import LibreTranslateAPI

from service.settings import Settings
from tests.service.conftest import LiveServer

PAIR = "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche."  # a memorised training pair


def test_official_client(live_server):
    lt = LibreTranslateAPI(live_server.url + "/")
    assert lt.languages() == [{"code": "de", "name": "German", "targets": ["en"]}]
    assert lt.detect(PAIR)[0]["language"] == "de"
    assert lt.translate(PAIR, "de", "en").startswith("Two young")
    assert lt.translate(PAIR, "auto", "en").startswith("Two young")
    with pytest.raises(urllib.error.HTTPError) as refused:
        lt.translate("Un chien.", "fr", "en")
    assert refused.value.code == 400 and "de-en" in json.loads(refused.value.read())["error"]


def test_lists_alternatives_and_detected_language(live_server):
    body = {"q": [PAIR, "Ein Hund."], "source": "auto", "target": "en", "alternatives": 2}
    out = httpx.post(f"{live_server.url}/translate", json=body, timeout=60).json()
    assert len(out["translatedText"]) == 2 and out["translatedText"][0].startswith("Two young")
    assert [d["language"] for d in out["detectedLanguage"]] == ["de", "de"]
    assert len(out["alternatives"]) == 2 and all(len(a) == 2 for a in out["alternatives"])
    assert out["translatedText"][0] not in out["alternatives"][0]  # the next-best, not the best again


def test_web_page_form_request(live_server):
    """LibreTranslate's page posts FormData (multipart) with fields we do not use (`secret`): they are ignored."""
    fields = {"q": PAIR, "source": "de", "target": "en", "format": "text", "alternatives": "0", "api_key": "",
              "secret": "ABCDEFG"}
    r = httpx.post(f"{live_server.url}/translate", files={k: (None, v) for k, v in fields.items()}, timeout=60)
    assert r.status_code == 200 and r.json()["translatedText"].startswith("Two young")
    r = httpx.get(f"{live_server.url}/frontend/settings")
    assert r.status_code == 200 and r.json()["charLimit"] == 200 and r.json()["keyRequired"] is False


@pytest.mark.parametrize("body, status, needle", [
    ({"source": "de", "target": "en"}, 400, "q"),
    ({"q": "Hallo", "source": "de"}, 400, "target"),
    ({"q": "Hallo", "source": "de", "target": "en", "format": "html"}, 400, "html"),
    ({"q": "Hallo", "source": "de", "target": "en", "format": "pdf"}, 400, "format"),
    ({"q": "Hallo", "source": "de", "target": "fr"}, 400, "served pairs"),
    ({"q": "Hallo", "source": "de", "target": "en", "alternatives": 9}, 422, "alternatives"),
    ({"q": "x" * 201, "source": "de", "target": "en"}, 422, "max_chars"),
])
def test_errors_in_libretranslate_shape(live_server, body, status, needle):
    r = httpx.post(f"{live_server.url}/translate", json=body, timeout=60)
    assert r.status_code == status and needle in r.json()["error"], r.text


def test_keys_in_the_body_or_header_and_cors(models_dir):
    settings = Settings(models_dir=models_dir, workers=1, api_keys="lt-key", cors_origins="https://example.org")
    with LiveServer(settings) as server:
        lt = LibreTranslateAPI(server.url + "/", api_key="lt-key")
        assert lt.translate(PAIR, "de", "en").startswith("Two young")
        for fields in ({}, {"api_key": "wrong"}):
            r = httpx.post(f"{server.url}/translate", json={"q": "Hallo", "source": "de", "target": "en", **fields})
            assert r.status_code == 403 and "API key" in r.json()["error"]
        r = httpx.post(f"{server.url}/translate", json={"q": "Hallo", "source": "de", "target": "en"},
                       headers={"Authorization": "Bearer lt-key"}, timeout=60)
        assert r.status_code == 200
        assert httpx.get(f"{server.url}/languages").status_code == 200  # open, as in LibreTranslate
        preflight = httpx.options(f"{server.url}/translate", headers={
            "Origin": "https://example.org", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code in (200, 204)
        assert preflight.headers["access-control-allow-origin"] == "https://example.org"
        other = httpx.get(f"{server.url}/languages", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


def test_every_served_pair_is_routed_and_auto_detected(trained_runs, reverse_run, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "de-en").symlink_to(trained_runs["transformer"][0], target_is_directory=True)
    (models / "en-de").symlink_to(reverse_run, target_is_directory=True)
    with LiveServer(Settings(models_dir=models, workers=1)) as server:
        lt = LibreTranslateAPI(server.url + "/")
        assert lt.languages() == [{"code": "de", "name": "German", "targets": ["en"]},
                                  {"code": "en", "name": "English", "targets": ["de"]}]
        assert lt.translate(PAIR, "de", "en").startswith("Two young")
        english = "Two young, White males are outside near many bushes."
        out = httpx.post(f"{server.url}/translate", json={"q": english, "source": "auto", "target": "de"}, timeout=60)
        assert out.status_code == 200 and out.json()["detectedLanguage"]["language"] == "en"
        assert lt.detect(english)[0]["language"] == "en" and lt.detect(PAIR)[0]["language"] == "de"
        refused = httpx.post(f"{server.url}/translate", json={"q": english, "source": "en", "target": "fr"})
        assert refused.status_code == 400 and "de-en, en-de" in refused.json()["error"]
