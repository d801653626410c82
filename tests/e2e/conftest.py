"""Fixtures of the e2e tier: a slow fake Gemini server in its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def slow_gemini(tmp_path: Path) -> Iterator[str]:
    """A fake Gemini server in its own process that takes 2 s per image; yields its URL."""
    env = {k: v for k, v in os.environ.items() if k != "PIXLOOP_CHECKPOINTER"}
    proc = subprocess.Popen([sys.executable, "-m", "agent.interfaces.cli", "fake-server", "gemini", "--latency", "2"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**env, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        yield line.split()[2]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
