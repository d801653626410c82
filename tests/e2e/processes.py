"""Helpers for tests that drive pixloop in other processes: wait for what a running process writes, read it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    """Poll `predicate` until it holds (fails the test after `timeout` seconds): what another process writes
    cannot be awaited."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def events_text(run_dir: Path) -> str:
    """The run's events.jsonl so far ('' before it exists)."""
    path = run_dir / "events.jsonl"
    return path.read_text() if path.exists() else ""


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL a process started with start_new_session=True, its whole group, if it still runs."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def kill_once_checkpointed(proc: subprocess.Popen[str], run_dir: Path) -> None:
    """SIGKILL a run mid-way, once candidate c1 is checkpointed (its check has started: durability "sync")."""
    wait_for(lambda: '"event": "check", "candidate": "c1"' in events_text(run_dir))
    kill(proc)
