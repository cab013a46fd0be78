"""The page in a real browser: Debian's chromium, driven headless by Playwright, against a live server."""

import shutil

import pytest

from service.settings import Settings
from tests.service.conftest import LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    if not shutil.which("chromium"):
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    yield page
    page.close()


def test_translate_and_heatmaps_render(page, live_server, tmp_path):
    page.goto(live_server.url + "/")
    page.wait_for_selector("#models input[type=checkbox]")
    assert page.locator("#models input[type=checkbox]").count() == 3
    page.fill("#source", "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.")
    page.click("#go")
    page.wait_for_selector(".card .output")
    cards = page.locator(".card")
    assert cards.count() == 3
    outputs = {cards.nth(i).get_attribute("data-model"): cards.nth(i).locator(".output").inner_text() for i in range(3)}
    assert outputs["transformer"].startswith("Two young")
    heat = page.locator('.card[data-model="lstm-attn"] table.heatmap')
    assert heat.locator("tbody tr").count() > 3 and heat.locator("td").count() > 20
    assert page.locator('.card[data-model="lstm"] table.heatmap').count() == 0  # no attention to show
    # Hovering a target token highlights the source tokens it attended to.
    assert heat.locator("thead th.hot").count() == 0
    page.locator('.card[data-model="lstm-attn"] .output .tok').first.hover()
    assert heat.locator("tbody tr.active").count() == 1
    assert heat.locator("thead th.hot").count() >= 1
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'compare.png'}")
    assert (tmp_path / "compare.png").stat().st_size > 10_000
    # A phone-sized screen: the cards stack in one column.
    page.set_viewport_size({"width": 390, "height": 844})
    boxes = [cards.nth(i).bounding_box() for i in range(3)]
    assert boxes[0]["x"] == boxes[1]["x"] and boxes[1]["y"] > boxes[0]["y"]
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)


def test_with_api_keys_the_page_asks_for_one_and_translates(page, models_dir):
    with LiveServer(Settings(models_dir=models_dir, api_keys="page-key-1", workers=1)) as server:
        page.goto(server.url + "/")
        page.wait_for_selector("#key-row:not([hidden])")  # /v1/models answered 401: the page asks for a key
        assert "API key" in page.locator("#models-status").inner_text()
        page.fill("#api-key", "page-key-1")
        page.click("#use-key")
        page.wait_for_selector("#models input[type=checkbox]")
        assert page.locator("#key-row").is_hidden() and page.locator("#models input[type=checkbox]").count() == 3
        page.fill("#source", "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.")
        page.click("#go")
        page.wait_for_selector(".card .output")
        assert page.locator('.card[data-model="transformer"] .output').inner_text().startswith("Two young")
        page.reload()  # the key stays in this browser
        page.wait_for_selector("#models input[type=checkbox]")
        assert page.locator("#key-row").is_hidden()


def test_the_page_offers_each_language_pair(page, trained_runs, reverse_run, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for name, run in [("transformer", trained_runs["transformer"][0]), ("lstm", trained_runs["lstm"][0]),
                      ("reverse", reverse_run)]:
        (models / name).symlink_to(run, target_is_directory=True)
    with LiveServer(Settings(models_dir=models, workers=1)) as server:
        page.goto(server.url + "/")
        page.wait_for_selector("#models input[type=checkbox]")
        assert page.locator("#pair option").all_inner_texts() == ["de → en", "en → de"]
        assert page.locator("#models label:not([hidden])").count() == 2  # de -> en: transformer and lstm
        page.click("#go")
        page.wait_for_selector(".card .output")
        assert sorted(page.locator(".card").evaluate_all("cards => cards.map(c => c.dataset.model)")) == ["lstm", "transformer"]
        page.select_option("#pair", "en-de")
        assert page.locator("#models label:not([hidden])").count() == 1 and "(en → de)" in page.inner_text("#langs")
        page.fill("#source", "A dog runs.")
        page.click("#go")
        page.wait_for_selector('.card[data-model="reverse"]')
        assert page.locator(".card").count() == 1
