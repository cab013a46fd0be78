"""The service as operators run it: `translate serve` in its own process, reloaded, loaded and stopped.

Short and bounded: tiny models, one inference worker, seconds per test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, models: Path, log: Path, *args: str, **env: str):
        self.port, self.log = free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "translate", "serve", "--models", str(models), "--port", str(self.port), "--workers", "1",
               *args]
        with open(log, "w") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{self.url}/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def served(url: str) -> dict[str, str]:
    return {m["name"]: m["arch"] for m in httpx.get(f"{url}/v1/models", timeout=30).json()["models"]}


def test_reload_adds_replaces_keeps_and_removes_without_failing_a_request(trained_runs, tmp_path):
    runs = {arch: run for arch, (run, _) in trained_runs.items()}
    models = tmp_path / "models"
    shutil.copytree(runs["lstm"], models / "a")
    server = ServerProcess(models, tmp_path / "server.log")
    statuses: list[int] = []
    stop = threading.Event()

    def keep_translating() -> None:  # requests in flight through every reload
        with httpx.Client(base_url=server.url, timeout=60) as http:
            while not stop.is_set():
                statuses.append(http.post("/v1/translate", json={"model": "a", "text": TEXT, "beam_size": 3}).status_code)

    traffic = threading.Thread(target=keep_translating)
    traffic.start()
    try:
        assert served(server.url) == {"a": "lstm"}
        # A new run, picked up on SIGHUP.
        shutil.copytree(runs["transformer"], models / "b")
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while "b" not in served(server.url):
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.2)
        assert served(server.url) == {"a": "lstm", "b": "transformer"}
        r = httpx.post(f"{server.url}/v1/translate", json={"model": "b", "text": TEXT}, timeout=60)
        assert r.status_code == 200 and r.json()["translations"][0]["text"].startswith("Two young")

        # A changed run (retrained as another architecture), replaced through the admin endpoint.
        for name in ("config.json", "best.pt"):
            shutil.copy(runs["lstm-attn"] / name, models / "a" / f"{name}.tmp")
            os.replace(models / "a" / f"{name}.tmp", models / "a" / name)
        report = httpx.post(f"{server.url}/admin/reload", timeout=120).json()
        assert report["replaced"] == ["a"] and report["unchanged"] == ["b"] and report["added"] == []
        assert served(server.url) == {"a": "lstm-attn", "b": "transformer"}

        # A run whose new files are broken keeps serving its previous version.
        (models / "a" / "best.pt").write_bytes(b"half a checkpoint")
        report = httpx.post(f"{server.url}/admin/reload", timeout=120).json()
        assert "serving the previous version" in report["failed"]["a"] and report["replaced"] == []
        assert served(server.url) == {"a": "lstm-attn", "b": "transformer"}
        assert "previous version" in httpx.get(f"{server.url}/ready").json()["errors"]["a"]

        # A removed run is dropped; the kept old version of "a" moves to the new workers with it.
        shutil.rmtree(models / "b")
        report = httpx.post(f"{server.url}/admin/reload", timeout=120).json()
        assert report["removed"] == ["b"]
        assert httpx.post(f"{server.url}/v1/translate", json={"model": "b", "text": TEXT}).status_code == 404
        r = httpx.post(f"{server.url}/v1/translate", json={"model": "a", "text": TEXT, "return_attention": True}, timeout=60)
        assert r.status_code == 200 and r.json()["translations"][0]["attention"]  # still the lstm-attn version
    finally:
        stop.set()
        traffic.join(timeout=60)
        assert server.stop() == 0
    assert len(statuses) > 10 and set(statuses) == {200}, statuses


def test_sigterm_drains_accepted_requests(trained_runs, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "transformer").symlink_to(trained_runs["transformer"][0], target_is_directory=True)
    server = ServerProcess(models, tmp_path / "server.log", TRANSLATE_MAX_BATCH_SIZE="4")
    results: list[int] = []

    def one() -> None:
        body = {"model": "transformer", "texts": [TEXT] * 8, "beam_size": 5}
        results.append(httpx.post(f"{server.url}/v1/translate", json=body, timeout=60).status_code)

    clients = [threading.Thread(target=one) for _ in range(12)]
    for c in clients:
        c.start()
    time.sleep(0.5)  # the requests are in: queued or decoding
    code = server.stop()
    for c in clients:
        c.join(timeout=60)
    assert code == 0 and results == [200] * 12, (code, results)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/health", timeout=2)


def test_load_script_gives_only_200_and_503(trained_runs, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "transformer").symlink_to(trained_runs["transformer"][0], target_is_directory=True)
    # Small batches and a short deadline, so that tiny models on one worker are overloaded by 128 clients.
    env = {**os.environ, "TRANSLATE_MAX_WAIT_MS": "100", "TRANSLATE_WORKERS": "1", "TRANSLATE_MAX_BATCH_SIZE": "2"}
    run = subprocess.run(
        [sys.executable, "scripts/load_service.py", "--models", str(models), "--clients", "4,128", "--seconds", "4",
         "--warmup", "1", "--no-backoff"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| 128 |")]
    assert len(rows) == 1 and "200: " in rows[0] and "503: " in rows[0], run.stdout  # overloaded, and refused fast
    statuses = rows[0].split("|")[3]
    assert {part.split(":")[0].strip() for part in statuses.split(",")} == {"200", "503"}, run.stdout


def running(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(check, what: str, log: Path, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what}\n{log.read_text()[-3000:]}"
        time.sleep(0.1)
    return result


def test_processes_share_one_port_and_are_ready_only_together(trained_runs, tmp_path):
    models, states = tmp_path / "models", tmp_path / "tmp"
    models.mkdir(), states.mkdir()
    (models / "transformer").symlink_to(trained_runs["transformer"][0], target_is_directory=True)
    server = ServerProcess(models, tmp_path / "server.log", "--processes", "2", TMPDIR=str(states))
    try:
        body = httpx.get(f"{server.url}/ready").json()
        pids = {p["pid"] for p in body["processes"] if p["status"] == "ready"}
        assert len(pids) == 2 and body["status"] == "ready", body

        def answered_by_both() -> bool:  # a new connection each time: the kernel hands it to either process
            answered.update(httpx.get(f"{server.url}/health").json()["pid"] for _ in range(20))
            return answered == pids

        answered: set[int] = set()
        wait_for(answered_by_both, f"/health answered only by {answered} of {pids}", server.log)

        # One process killed outright: /ready says 503, naming it (then its successor), until the successor uvicorn
        # starts has loaded the models; the killed one's inference worker does not outlive it.
        victim = min(pids)
        workers = [int(p) for p in Path(f"/proc/{victim}/task/{victim}/children").read_text().split()]
        os.kill(victim, signal.SIGKILL)
        refusal = wait_for(lambda: (r := httpx.get(f"{server.url}/ready")).status_code == 503 and r.json(), "no 503",
                           server.log)
        not_ready = [(p["pid"], p["status"]) for p in refusal["processes"] if p["status"] != "ready"]
        assert refusal["status"] == "waiting for processes" and not_ready, refusal
        assert all(p == (victim, "exited") or (p[0] not in pids and p[1] == "loading") for p in not_ready), refusal
        # (A process killed while uvicorn's supervisor waits for its health check's answer is replaced only after
        # the check's timeout, 30 s by default: see test_a_process_that_dies_during_its_health_check_is_replaced.)
        body = wait_for(lambda: (r := httpx.get(f"{server.url}/ready")).status_code == 200 and r.json(), "no 200",
                        server.log, seconds=90)
        assert len(body["processes"]) == 2 and victim not in {p["pid"] for p in body["processes"]}, body
        wait_for(lambda: not any(map(running, workers)), f"inference workers {workers} outlived their server", server.log)

        r = httpx.post(f"{server.url}/v1/translate", json={"model": "transformer", "text": TEXT}, timeout=60)
        assert r.status_code == 200 and r.json()["translations"][0]["text"].startswith("Two young"), r.text
    finally:
        assert server.stop() == 0
    assert list(states.iterdir()) == []  # the states' folder is gone


def test_a_process_that_dies_during_its_health_check_is_replaced(trained_runs, tmp_path):
    """uvicorn's supervisor asks each process whether it is alive and waits for the answer; a process that dies
    before answering (here: stopped, then killed) must neither be reported ready while it lies unreaped, nor hold up
    the supervisor past the health check's timeout (`process_liveness_s`; it used to wait out the 300 s allowed for
    starting a process, not replacing it and not hearing SIGTERM meanwhile)."""
    models, states = tmp_path / "models", tmp_path / "tmp"
    models.mkdir(), states.mkdir()
    (models / "transformer").symlink_to(trained_runs["transformer"][0], target_is_directory=True)
    server = ServerProcess(models, tmp_path / "server.log", "--processes", "2", TMPDIR=str(states),
                           TRANSLATE_PROCESS_LIVENESS_S="3")
    try:
        pids = {p["pid"] for p in httpx.get(f"{server.url}/ready").json()["processes"]}
        victim = min(pids)
        os.kill(victim, signal.SIGSTOP)
        time.sleep(1)  # the supervisor's next health check waits for the stopped process's answer
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        assert httpx.get(f"{server.url}/ready").status_code == 503  # dead, though not yet collected by its parent
        wait_for(lambda: httpx.get(f"{server.url}/ready").status_code == 200, "not replaced", server.log, seconds=60)
        assert time.monotonic() - killed < 45, "replaced only after the start-up timeout"
    finally:
        stopping = time.monotonic()
        assert server.stop() == 0
    assert time.monotonic() - stopping < 30
