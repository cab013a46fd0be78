"""The service processes behind one port (`translate serve --processes N`): each publishes its state, all read them.

uvicorn runs the N processes and shares the port between them; nothing else connects them. So that `/ready`,
wherever it lands, answers 200 only when all N have their models, each process writes its `ProcessState` to a
folder the parent made (one file per process id, replaced atomically) whenever its state changes, and `/ready` reads
them all. A file whose process has died says "exited" until the process uvicorn starts in its place clears it.
`Supervisor` is uvicorn's supervisor of the processes, with a shorter health check (see its docstring).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from pathlib import Path

import msgspec
from uvicorn import Config
from uvicorn.supervisors import Multiprocess

from service.schemas import ProcessState
from service.settings import Settings

log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether the process has exited and waits for its parent to collect it: it still exists for kill(pid, 0)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux): kill(pid, 0) is all there is to go on
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class Supervisor(Multiprocess):
    """uvicorn's supervisor of the N processes, with a health check shorter than its wait for a process to start.

    uvicorn uses one timeout for both: how long a rolling restart waits for a new process to load its models
    (minutes, for large models), and how long a health check waits for a process to answer. A process that dies
    between the check's question and its answer (the OOM killer, a crash) never answers, and the pipe never closes
    (the supervisor holds both of its ends), so the supervisor would wait out the whole start-up timeout: minutes in
    which the dead process is not replaced and SIGTERM goes unheard. Here the health check waits `liveness_s`."""

    def __init__(self, config: Config, sockets: list[socket.socket], liveness_s: float):
        super().__init__(config, sockets)
        self.liveness_s = liveness_s

    def keep_subprocess_alive(self) -> None:
        start_timeout = self.config.timeout_worker_healthcheck
        self.config.timeout_worker_healthcheck = self.liveness_s
        try:
            super().keep_subprocess_alive()
        finally:
            self.config.timeout_worker_healthcheck = start_timeout


class ProcessBoard:
    """The states of the service processes sharing one port, in `folder`; `expected` of them should be ready."""

    def __init__(self, folder: Path, expected: int):
        self.folder, self.expected = Path(folder), expected
        self.pid = os.getpid()

    @classmethod
    def of(cls, settings: Settings) -> ProcessBoard | None:
        """The board of the `settings.processes` processes; None when there is one."""
        if settings.processes == 1:
            return None
        if settings.processes_dir is None:
            raise ValueError("processes > 1 needs processes_dir, the folder where they publish their states")
        return cls(settings.processes_dir, settings.processes)

    def publish(self, status: str, models: list[str]) -> None:
        """This process's state now; the first publication also clears the files of processes that died."""
        path = self.folder / f"{self.pid}.json"
        if not path.exists():
            for state in self.read():
                if state.status == "exited":
                    (self.folder / f"{state.pid}.json").unlink(missing_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(ProcessState(self.pid, status, models)))
        os.replace(tmp, path)  # readers see the old state or the new one, never half a file

    def withdraw(self) -> None:
        """This process is stopping: it no longer counts."""
        (self.folder / f"{self.pid}.json").unlink(missing_ok=True)

    def read(self) -> list[ProcessState]:
        """Every published state, by process id; a process that died without withdrawing reads as "exited"."""
        states = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                state = msgspec.json.decode(path.read_bytes(), type=ProcessState)
            except FileNotFoundError:  # withdrawn while we looked
                continue
            except msgspec.DecodeError as e:  # not ours; os.replace means never half of ours
                log.warning("ignoring %s: %s", path, e)
                continue
            states.append(state if _alive(state.pid) else ProcessState(state.pid, "exited", state.models))
        return sorted(states, key=lambda s: s.pid)

    def all_ready(self, states: list[ProcessState]) -> bool:
        """At least `expected` ready: a rolling restart briefly runs one more."""
        return sum(s.status == "ready" for s in states) >= self.expected

    def others(self) -> list[int]:
        """The other live processes' ids."""
        return [s.pid for s in self.read() if s.pid != self.pid and s.status != "exited"]

    def reload_others(self) -> list[int]:
        """Sends SIGHUP to the other processes: each reloads its models in place (`create_app`). Their ids."""
        others = self.others()
        for pid in others:
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:  # exited since it was read
                pass
        return others
