"""Data-parallel training with real torchrun processes on gloo: two processes take the same steps as one process
accumulating two micro-batches, and a killed two-process run resumes to the same weights."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tiny import tiny_config
from translate.checkpoint import load_checkpoint

STEPS = 6
TOLERANCE = 1e-5  # largest weight difference allowed: the sums of gradients are ordered differently, nothing else


@pytest.fixture(scope="module")
def settings(tiny_corpus, tmp_path_factory):
    """A tiny Transformer with dropout on, small batches (several per update), no validation before the end."""
    raw = tiny_config("transformer", tiny_corpus, max_steps=STEPS, eval_every=0, max_tokens=300, eval_sentences=8,
                      threads=1)
    raw["model"] = {**raw["model"], "dropout": 0.2}
    path = tmp_path_factory.mktemp("ddp") / "config.json"
    path.write_text(json.dumps(raw))
    return path


def _translate(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "translate", *args], env=env, capture_output=True, text=True,
                          timeout=300, **kwargs)


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "translate", *args]


@pytest.fixture(scope="module")
def one_process(settings, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "run"
    done = _translate("train", "--config", str(settings), "--accum", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def two_processes(settings, tmp_path_factory):
    out = tmp_path_factory.mktemp("two") / "run"
    done = _translate("train", "--config", str(settings), "--nproc", "2", "--out", str(out))  # the torchrun shortcut
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # the field after the state: the parent's pid
            found.append(int(stat.parent.name))
    return found


def _max_difference(a, b) -> float:
    wa, wb = load_checkpoint(a / "last.pt").weights, load_checkpoint(b / "last.pt").weights
    assert wa.keys() == wb.keys()
    return max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)


def test_two_processes_take_the_steps_of_one_accumulating_two(one_process, two_processes):
    two, stdout = two_processes
    assert stdout.count('"stopped"') == 1  # only the main process printed the summary
    summary = json.loads((two / "summary.json").read_text())
    single = json.loads((one_process / "summary.json").read_text())
    assert (summary["step"], summary["world_size"], single["world_size"]) == (STEPS, 2, 1)
    assert summary["global_batch_tokens"] == single["global_batch_tokens"] == 600
    config = json.loads((two / "config.json").read_text())
    assert config["launch"] == {"world_size": 2, "accum": 1, "global_batch_tokens": 600}
    log = [json.loads(line) for line in (two / "log.jsonl").read_text().splitlines()]
    assert log[-1]["world_size"] == 2 and log[-1]["global_batch_tokens"] == 600
    assert summary["train_tokens_per_s"] > 0
    # Had the processes taken the same batches, or other ones, the weights would differ by far more.
    assert _max_difference(one_process, two) < TOLERANCE


def test_killed_two_process_run_resumes(settings, two_processes, tmp_path):
    out = tmp_path / "run"
    raw = json.loads(settings.read_text())
    # Slow validations (beam 16 over all 64 pairs: ~1.7 s each here) leave the test seconds, not a few steps'
    # milliseconds, to kill the run after its second checkpoint and before its third (step 6, where it would end).
    raw["train"].update(max_steps=1000, eval_every=2, eval_beam=16, eval_sentences=64)
    killed_settings = tmp_path / "config.json"
    killed_settings.write_text(json.dumps(raw))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_torchrun("train", "--config", str(killed_settings), "--out", str(out)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # until two validations (steps 2 and 4) are saved
            log = out / "log.jsonl"
            if log.exists() and len(log.read_text().splitlines()) >= 2:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no second validation within 4 minutes")
    finally:
        for pid in [*_children(proc.pid), proc.pid]:  # both processes and torchrun, without a chance to save
            os.kill(pid, signal.SIGKILL)  # (torchrun starts its workers in sessions of their own)
        proc.wait()
    saved = load_checkpoint(out / "last.pt").train_state["step"]
    assert 2 <= saved < STEPS
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(_torchrun("train", "--out", str(out), "--resume", "--max-steps", str(STEPS)), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["step"], summary["world_size"]) == (STEPS, 2)
    assert _max_difference(out, two_processes[0]) < TOLERANCE
