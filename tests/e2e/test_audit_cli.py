"""`pixloop audit verify`: a real offline run's events.jsonl verifies; a flipped verdict, a deleted line, or (with
PIXLOOP_AUDIT_KEY) a chain recomputed without the key is caught and named. The runs are real subprocesses."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.interfaces.cli import main
from agent.runtime.events import GENESIS, EventLog

REPO = Path(__file__).resolve().parents[2]
PIXLOOP = [sys.executable, "-m", "agent.interfaces.cli"]
FAILING = 'A poster that says "' + " ".join(f"WORD{i}" for i in range(120)) + '"'
"""Far too much text for the canvas: OCR fails, so the log holds `"passed": false` verdicts."""


def pixloop(*args: str, cwd: Path, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXLOOP_AUDIT")}
    env["PYTHONPATH"] = str(REPO)
    if key is not None:
        env["PIXLOOP_AUDIT_KEY"] = key
    return subprocess.run([*PIXLOOP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def make_run(tmp_path: Path, key: str | None = None) -> Path:
    proc = pixloop("run", FAILING, "--out", "run", "-q", "-n", "2", cwd=tmp_path, key=key)
    assert proc.returncode == 3, proc.stderr
    return tmp_path / "run" / "events.jsonl"


def failed_check_line(lines: list[str]) -> int:
    """0-based index of the first check event with a failed verdict."""
    return next(i for i, line in enumerate(lines) if '"event": "check"' in line and '"passed": false' in line)


def test_a_real_run_verifies_and_a_flipped_verdict_or_a_deleted_line_exits_3(tmp_path: Path) -> None:
    log = make_run(tmp_path)
    lines = log.read_text().splitlines()

    ok = pixloop("audit", "verify", "run", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip() == f"intact: {len(lines)} events, chain ok, HMAC not checked (PIXLOOP_AUDIT_KEY unset)"

    i = failed_check_line(lines)
    data = log.read_bytes()
    at = data.index(b'"passed": false', data.index(lines[i].encode()))
    log.write_bytes(data[:at] + b'"passed": true ' + data[at + len(b'"passed": false'):])  # one verdict flipped
    flipped = pixloop("audit", "verify", "run", cwd=tmp_path)
    assert flipped.returncode == 3, flipped.stdout + flipped.stderr
    assert f"run/events.jsonl: tampered: line {i + 1}: edited" in flipped.stdout

    log.write_text("".join(line + "\n" for j, line in enumerate(lines) if j != 2))
    deleted = pixloop("audit", "verify", "run", "--json", cwd=tmp_path)
    assert deleted.returncode == 3
    (report,) = json.loads(deleted.stdout)["logs"]
    assert report["ok"] is False and report["first_broken"] == 3 and "deleted or moved" in report["reason"]


def test_with_a_key_a_chain_recomputed_without_it_is_rejected(tmp_path: Path) -> None:
    key = "audit-key-for-this-test"
    log = make_run(tmp_path, key=key)
    assert pixloop("audit", "verify", "run", cwd=tmp_path, key=key).stdout.strip().endswith("chain ok, HMAC ok")

    # the forger's script: flip a verdict, then renumber and rehash every line (the macs cannot be recomputed)
    lines = log.read_text().splitlines()
    i = failed_check_line(lines)
    lines[i] = lines[i].replace('"passed": false', '"passed": true', 1)
    forged, prev = [], GENESIS
    for seq, line in enumerate(lines):
        obj = {**json.loads(line), "seq": seq, "prev": prev}
        forged.append(json.dumps(obj))
        prev = hashlib.sha256(forged[-1].encode()).hexdigest()
    log.write_text("".join(line + "\n" for line in forged))

    assert pixloop("audit", "verify", "run", cwd=tmp_path).returncode == 0, "unkeyed, the forged chain holds"
    keyed = pixloop("audit", "verify", "run", cwd=tmp_path, key=key)
    assert keyed.returncode == 3
    assert f"line {i + 1}: HMAC mismatch (edited with the chain recomputed)" in keyed.stdout


def test_a_document_folder_verifies_every_image_runs_log(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIXLOOP_AUDIT_KEY", raising=False)
    doc = tmp_path / "doc"
    image_log = doc / "runs" / "s1-i1" / "r1" / "events.jsonl"
    image_log.parent.mkdir(parents=True)
    for path in (doc / "events.jsonl", image_log, doc / "runs" / "s2-i1" / "r1" / "events.jsonl"):
        path.parent.mkdir(parents=True, exist_ok=True)
        for event in ("plan", "generate", "check", "finalize"):
            EventLog(path).append(event)

    assert main(["audit", "verify", str(doc)]) == 0
    assert "intact: 12 events in 3 logs, chain ok" in capsys.readouterr().out

    lines = image_log.read_text().splitlines()
    image_log.write_text("".join(line + "\n" for line in lines[1:]))
    assert main(["audit", "verify", str(doc)]) == 3
    out = capsys.readouterr().out
    assert f"{image_log}: tampered: line 1: seq 1 where 0 was expected" in out


def test_a_missing_folder_or_log_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main(["audit", "verify", str(tmp_path)]) == 2
    assert "events.jsonl does not exist" in capsys.readouterr().err
