"""Fixtures for the HTTP service: a folder of real tiny runs (plus a broken one) and a live server."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import uvicorn

from service.app import create_app
from service.settings import Settings


@pytest.fixture(scope="session")
def models_dir(trained_runs, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for arch, (run, _) in trained_runs.items():
        (folder / arch).symlink_to(run, target_is_directory=True)
    (folder / "broken").mkdir()
    (folder / "broken" / "best.pt").write_bytes(b"not a checkpoint")
    return folder


class LiveServer:
    """uvicorn serving the app on 127.0.0.1 in a thread, on a free port."""

    def __init__(self, settings: Settings):
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not (self.server.started and self.server.servers):
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        import httpx

        while httpx.get(f"{self.url}/ready").status_code != 200:  # models load in the background
            if time.monotonic() > deadline:
                raise RuntimeError("models did not load")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def live_server(models_dir):
    # Low limits keep fuzzed requests quick on tiny models.
    with LiveServer(Settings(models_dir=models_dir, max_texts=4, max_chars=200, max_beam=5)) as server:
        yield server
