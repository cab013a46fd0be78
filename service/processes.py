"""The service processes behind one port (`translate serve --processes N`): each publishes its state, all read them.

uvicorn runs the N processes and shares the port between them; nothing else connects them. So that `/ready`,
wherever it lands, answers 200 only when all N have their models, each process writes its `ProcessState` to a
folder the parent made (one file per process id, replaced atomically) whenever its state changes, and `/ready` reads
them all. A file whose process has died says "exited" until the process uvicorn starts in its place clears it.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import msgspec

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
    return True


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
