"""The events log is a hash chain (seq + prev of every line, a mac when PIXLOOP_AUDIT_KEY is set): an edited,
deleted or moved line is found and named; appends keep one chain across objects, threads and a killed writer."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent.runtime.events import GENESIS, EventLog, verify_log
from agent.runtime.store import ArtifactStore


@pytest.fixture(autouse=True)
def _no_audit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIXLOOP_AUDIT_KEY", raising=False)
    monkeypatch.delenv("PIXLOOP_AUDIT_STDOUT", raising=False)


def write_run(path: Path, n: int = 6) -> list[str]:
    log = EventLog(path)
    log.append("plan", text=["HELLO"])
    for i in range(1, n - 1):
        log.append("check", candidate=f"c{i}", critic="ocr", score=0.5, passed=False, threshold=0.9)
    log.append("finalize", status="below_threshold")
    return path.read_text().splitlines()


def rewrite(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def rechain(lines: list[str]) -> list[str]:
    """What a forger without the key does after an edit: renumber and recompute every prev (macs kept)."""
    out, prev = [], GENESIS
    for seq, line in enumerate(lines):
        obj = json.loads(line)
        obj["seq"], obj["prev"] = seq, prev
        text = json.dumps(obj)
        out.append(text)
        prev = hashlib.sha256(text.encode()).hexdigest()
    return out


def test_an_intact_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = write_run(path)

    result = verify_log(path)

    assert result.ok and result.lines == 6 and result.first_broken is None and result.reason is None
    assert not result.keyed
    first, second = json.loads(lines[0]), json.loads(lines[1])
    assert list(first)[:2] == ["t", "event"] and first["seq"] == 0 and first["prev"] == GENESIS
    assert second["seq"] == 1 and second["prev"] == hashlib.sha256(lines[0].encode()).hexdigest()
    assert "mac" not in first
    assert [e["event"] for e in EventLog(path).read()] == ["plan", "check", "check", "check", "check", "finalize"]


def test_flipping_one_byte_of_a_verdict_is_detected_at_that_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = write_run(path)
    assert '"passed": false' in lines[2]
    lines[2] = lines[2].replace('"passed": false', '"passed": true ')  # same length: one verdict flipped
    rewrite(path, lines)

    result = verify_log(path)

    assert not result.ok and result.first_broken == 3
    assert result.reason is not None and result.reason.startswith("line 3: edited")


def test_deleting_a_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = write_run(path)
    rewrite(path, lines[:3] + lines[4:])

    result = verify_log(path)

    assert not result.ok and result.first_broken == 4 and result.lines == 5
    assert result.reason == "line 4: seq 4 where 3 was expected (a line was deleted or moved)"


def test_reordering_two_lines_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = write_run(path)
    lines[2], lines[3] = lines[3], lines[2]
    rewrite(path, lines)

    result = verify_log(path)

    assert not result.ok and result.first_broken == 3 and "seq 3 where 2 was expected" in str(result.reason)


def test_a_recomputed_chain_is_caught_by_the_hmac_when_keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXLOOP_AUDIT_KEY", "s3cret-audit-key")
    path = tmp_path / "events.jsonl"
    lines = write_run(path)
    assert verify_log(path, key="s3cret-audit-key").ok
    assert all(len(json.loads(line)["mac"]) == 64 for line in lines)

    lines[2] = lines[2].replace('"passed": false', '"passed": true')
    rewrite(path, rechain(lines))

    assert verify_log(path).ok, "without the key the recomputed chain holds: that is what the mac is for"
    result = verify_log(path, key="s3cret-audit-key")
    assert not result.ok and result.keyed and result.first_broken == 3
    assert result.reason == "line 3: HMAC mismatch (edited with the chain recomputed)"
    wrong = verify_log(path, key="another-key")
    assert not wrong.ok and wrong.first_broken == 1


def test_a_keyed_verify_rejects_lines_without_a_mac(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.jsonl"
    monkeypatch.setenv("PIXLOOP_AUDIT_KEY", "k")
    EventLog(path).append("plan")
    monkeypatch.delenv("PIXLOOP_AUDIT_KEY")
    EventLog(path).append("generate")

    result = verify_log(path, key="k")

    assert not result.ok and result.first_broken == 2 and str(result.reason).startswith("line 2: no mac")
    assert verify_log(path).ok


def test_the_chain_continues_across_two_eventlog_objects_and_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    a, b = EventLog(path), EventLog(path)
    a.append("plan")
    b.append("generate", candidate="c1")
    a.append("check", candidate="c1")
    ArtifactStore(tmp_path).log_event("judge", candidate="c1")  # a resumed run: a fresh store on the folder
    EventLog(tmp_path / "." / "events.jsonl").append("finalize")

    assert verify_log(path).ok
    assert [e["seq"] for e in EventLog(path).read()] == [0, 1, 2, 3, 4]


def test_a_partial_last_line_from_a_killed_process_is_reported_and_appending_continues(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = write_run(path, n=4)
    with path.open("a") as fh:
        fh.write('{"t": 1.0, "event": "check", "cand')  # killed mid-write: no newline

    torn = verify_log(path)
    assert not torn.ok and torn.first_broken == 5 and "partial last line" in str(torn.reason)

    EventLog(path).append("finalize", status="passed")  # the resumed run goes on
    EventLog(path).append("finalize", status="passed")

    text = path.read_text().splitlines()
    assert text[4] == '{"t": 1.0, "event": "check", "cand', "the partial line is ended, not overwritten"
    after = verify_log(path)
    assert not after.ok and after.first_broken == 5 and after.reason is not None and "not JSON" in after.reason
    new = json.loads(text[5])
    assert new["seq"] == 4 and new["prev"] == hashlib.sha256(lines[3].encode()).hexdigest(), \
        "the next line chains to the last complete line"
    rewrite(path, text[:4] + text[5:])
    assert verify_log(path).ok, "apart from the partial line, the chain holds"
    assert len(EventLog(path).read()) == 6


def test_parallel_appends_from_threads_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    start = threading.Barrier(8)

    def branch(i: int) -> None:
        log = EventLog(path)  # each branch its own object on the same file
        start.wait()
        for k in range(50):
            log.append("check", branch=i, k=k)

    threads = [threading.Thread(target=branch, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    result = verify_log(path)
    assert result.ok and result.lines == 400
    assert sorted((e["branch"], e["k"]) for e in EventLog(path).read()) == [(i, k) for i in range(8) for k in range(50)]


def test_appends_from_two_processes_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    script = ("import sys; from agent.runtime.events import EventLog\n"
              "log = EventLog(sys.argv[1])\n"
              "for k in range(100): log.append('check', pid=sys.argv[2], k=k)\n")
    repo = str(Path(__file__).resolve().parents[2])
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(i)], cwd=repo) for i in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]

    result = verify_log(path)
    assert result.ok and result.lines == 200


def test_secret_looking_fields_are_masked(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    request = {"url": "https://api.example", "headers": {"Authorization": "Bearer sk-live-123", "Accept": "*/*"}}
    EventLog(path).append("request", api_key="sk-live-123", request=request, tokens=12, max_tokens=100,
                          attempts=[{"x-goog-api-key": "AIza-999", "status": 429}], refresh_token=None)

    text = path.read_text()
    (event,) = EventLog(path).read()
    assert "sk-live-123" not in text and "AIza-999" not in text
    assert event["api_key"] == "***" and event["request"]["headers"]["Authorization"] == "***"
    assert event["attempts"][0]["x-goog-api-key"] == "***" and event["attempts"][0]["status"] == 429
    assert event["tokens"] == 12 and event["max_tokens"] == 100 and event["refresh_token"] is None
    assert request["headers"]["Authorization"] == "Bearer sk-live-123", "the caller's data is not changed"
    assert verify_log(path).ok


def test_audit_lines_stream_to_stdout_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "events.jsonl"
    EventLog(path).append("plan")
    assert capsys.readouterr().out == ""

    monkeypatch.setenv("PIXLOOP_AUDIT_STDOUT", "1")
    EventLog(path).append("generate", candidate="c1")
    EventLog(path).append("check", candidate="c1")

    out = capsys.readouterr().out
    assert out.splitlines() == path.read_text().splitlines()[1:]
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [1, 2]
