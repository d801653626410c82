"""One writer per run folder.

A run holds an exclusive `flock` on `run.lock` in its folder for as long as it writes there. A second
writer (a second `--resume` of a running thread, a new run into the same folder) is refused with a message
saying who holds it. The kernel releases the lock when its process dies, so a lock left by a killed
process is stale by construction: the next writer takes it over (and says so in the run's events).
The lock file keeps the holder's pid, host, thread and start time, for the messages.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from agent.models.errors import RunFolderError

LOCK_FILE = "run.lock"


class RunLock:
    """`with RunLock(run_dir, thread_id):` — the folder's single writer, or RunFolderError."""

    def __init__(self, run_dir: str | Path, thread_id: str):
        self.path = Path(run_dir) / LOCK_FILE
        self.thread_id = thread_id
        self.previous: dict[str, Any] | None = None
        """What a stale lock said about its (dead) holder, when this lock took one over."""
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise _in_use(self.path.parent, holder) from None
        self.previous = _read(fd) or None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "thread_id": self.thread_id,
                  "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def refuse_if_in_use(run_dir: str | Path) -> None:
    """Raise RunFolderError when a live process writes `run_dir`, without taking or changing its lock (a
    stale lock's record is left for the writer that takes it over)."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _in_use(path.parent, _read(fd)) from None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _in_use(run_dir: Path, holder: dict[str, Any]) -> RunFolderError:
    return RunFolderError(f"{run_dir} is in use: run {holder.get('thread_id', '?')!r} is being written by process "
                          f"{holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('since', '?')}; "
                          "wait for it to finish (or stop it) before resuming or starting another run there")


def _read(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        value = json.loads(data) if data.strip() else {}
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


__all__ = ["LOCK_FILE", "RunLock", "refuse_if_in_use"]
