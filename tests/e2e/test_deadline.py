"""`--max-seconds` is a deadline for the whole run, backend call included (real subprocesses).

A fake Gemini server that stalls (`--fault slow=300*99`: every generation sleeps 300 s) runs as its own
process; `pixloop run` runs as another. What is bounded, and by how much:

- the run itself, from the first progress line (the plan step) to the finalize line, by wall clock inside
  the pixloop process: at most max_seconds + GRACE;
- the report's `elapsed_seconds` (active time, what the budget counts): at most max_seconds + GRACE;
- the whole process, interpreter start and model imports included: at most max_seconds + STARTUP.
Without the deadline the first case would wait 4 x 180 s (read_timeout x max_attempts).
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PIXLOOP = [sys.executable, "-m", "agent.interfaces.cli"]
GRACE = 2.5
"""Seconds past max_seconds the run may take to stop, write the report and say so."""
STARTUP = 10.0
"""Seconds a pixloop process may take on top of that to start (interpreter, imports) and exit."""
ILLEGIBLE = 'An elegant minimal poster, subtle tone-on-tone, busy texture, that says "GRAND OPENING"'


def start_fake(*faults: str) -> tuple[subprocess.Popen, str]:
    args = [*PIXLOOP, "fake-server", "gemini"]
    for f in faults:
        args += ["--fault", f]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            seen.append(line)
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if m:
                return proc, m.group(1)
        if proc.poll() is not None:
            break
    stop(proc)
    raise AssertionError(f"the fake server did not start: {''.join(seen)}")


def stop(proc: subprocess.Popen) -> None:
    """Kill the fake server's process group (it started its own session)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def fake_server(request: pytest.FixtureRequest) -> Iterator[str]:
    proc, url = start_fake(*request.param)
    try:
        yield url
    finally:
        stop(proc)


def run_pixloop(url: str, out: Path, prompt: str, max_seconds: float) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "GEMINI_API_KEY": "test-key"}
    env.pop("GOOGLE_API_KEY", None)
    t0 = time.monotonic()
    proc = subprocess.run([*PIXLOOP, "run", prompt, "--backend", "gemini", "--base-url", url,
                           "--max-seconds", str(max_seconds), "--out", str(out), "--json"],
                          capture_output=True, text=True, env=env, timeout=max_seconds + 120)
    return proc, time.monotonic() - t0


def progress_span(stderr: str) -> float:
    """Seconds from the first progress line (plan) to the finalize line, as the pixloop process timed them."""
    stamps = {m.group(2): float(m.group(1)) for m in re.finditer(r"^\[\s*([\d.]+)s\] (\w+)", stderr, re.M)}
    assert "plan" in stamps and "finalize" in stamps, stderr
    return stamps["finalize"] - stamps["plan"]


@pytest.mark.parametrize("fake_server", [("slow=300*99",)], indirect=True)
def test_a_stalled_first_generation_ends_at_max_seconds_with_nothing_to_deliver(fake_server: str,
                                                                               tmp_path: Path) -> None:
    max_seconds = 5.0
    proc, wall = run_pixloop(fake_server, tmp_path / "run", 'A poster that says "HI"', max_seconds)

    assert proc.returncode == 4, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "failed" and report["stop_reason"] == "max_seconds" and report["final"] is None
    assert report["candidates"] == [] and "time budget" in report["error"]
    assert "pixloop:" in proc.stderr and "did not deliver iteration 1 within the time budget" in proc.stderr
    span = progress_span(proc.stderr)
    print(f"max_seconds {max_seconds}: run {span:.2f} s (plan to finalize), elapsed_seconds "
          f"{report['elapsed_seconds']:.2f}, process {wall:.2f} s")
    assert span <= max_seconds + GRACE
    assert max_seconds - 0.5 <= report["elapsed_seconds"] <= max_seconds + GRACE
    assert wall <= max_seconds + STARTUP
    assert not (tmp_path / "run" / "final.png").exists()


@pytest.mark.parametrize("fake_server", [("slow=0.01", "slow=300*99")], indirect=True)
def test_a_stall_after_a_first_candidate_ends_at_max_seconds_and_delivers_it(fake_server: str, tmp_path: Path,
                                                                            delivered_from: Any) -> None:
    # the first image fails OCR (tone-on-tone text), so the loop asks for a second one, which stalls;
    # the budget leaves room for a second round after the first (~2 s on this machine), so the stall is what ends it
    max_seconds = 10.0
    proc, wall = run_pixloop(fake_server, tmp_path / "run", ILLEGIBLE, max_seconds)

    assert proc.returncode == 3, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "below_threshold" and report["stop_reason"] == "max_seconds"
    assert report["final"]["candidate"] == "c1" and [c["id"] for c in report["candidates"]] == ["c1"]
    assert "did not deliver iteration 2 within the time budget" in report["error"]
    delivered_from(tmp_path / "run" / "final.png", tmp_path / "run" / "candidates" / "01-c1.png")
    span = progress_span(proc.stderr)
    print(f"max_seconds {max_seconds}: run {span:.2f} s (plan to finalize), elapsed_seconds "
          f"{report['elapsed_seconds']:.2f}, process {wall:.2f} s")
    assert span <= max_seconds + GRACE
    assert max_seconds - 0.5 <= report["elapsed_seconds"] <= max_seconds + GRACE
    assert wall <= max_seconds + STARTUP
