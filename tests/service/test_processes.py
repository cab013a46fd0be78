"""The states the service processes behind one port publish for each other (`service.processes`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from service.processes import ProcessBoard
from service.schemas import ProcessState

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def board_of(folder: Path, pid: int) -> ProcessBoard:
    """The board as the process `pid` sees it."""
    board = ProcessBoard(folder, expected=2)
    board.pid = pid
    return board


def test_ready_only_when_every_process_is(tmp_path):
    me = ProcessBoard(tmp_path, expected=2)
    me.publish("loading", [])
    assert me.read() == [ProcessState(me.pid, "loading", [])]
    me.publish("ready", ["a"])
    assert not me.all_ready(me.read())  # one of two

    with subprocess.Popen(SLEEPER) as peer:
        board_of(tmp_path, peer.pid).publish("ready", ["a"])
        assert me.all_ready(me.read()) and me.others() == [peer.pid]
        peer.kill()
    # Killed outright, it never withdrew: it reads as exited, is not ready, and is not signalled.
    assert ProcessState(peer.pid, "exited", ["a"]) in me.read() and not me.all_ready(me.read())
    assert me.others() == []

    with subprocess.Popen(SLEEPER) as successor:
        board_of(tmp_path, successor.pid).publish("loading", [])  # its first publication clears the exited one
        assert {(s.pid, s.status) for s in me.read()} == {(me.pid, "ready"), (successor.pid, "loading")}
        successor.kill()
    me.withdraw()
    assert me.pid not in {s.pid for s in me.read()}
    assert not list(tmp_path.glob("*.tmp"))
