"""The `pixloop` command: exit codes, messages, outputs, progress, and resume after SIGKILL."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent.backends import BackendError, Capabilities, register_backend, unregister_backend
from agent.interfaces.cli import main

PIXLOOP = [sys.executable, "-m", "agent.interfaces.cli"]


UNFITTABLE = 'A poster that says "' + " ".join(f"WORD{i}" for i in range(120)) + '"'
"""Required text far too long for three lines on the canvas: no correction can make OCR read it all."""

def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*PIXLOOP, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_passing_run_exits_0_and_writes_final_candidates_and_report(tmp_path) -> None:
    out = tmp_path / "poster"
    proc = run_cli("run", 'A bold poster that says "GRAND OPENING"', "--out", str(out))

    assert proc.returncode == 0, proc.stderr
    assert "status: passed" in proc.stdout
    assert (out / "final.png").exists() and (out / "report.json").exists()
    assert list((out / "candidates").glob("01-c1.png"))
    assert "plan " in proc.stderr and "generate  #1" in proc.stderr and "check     c1 ocr" in proc.stderr


def test_run_below_threshold_exits_3_with_json_report(tmp_path) -> None:
    proc = run_cli("run", UNFITTABLE, "--out", str(tmp_path / "r"), "-n", "2", "--json", "-q")

    assert proc.returncode == 3, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "below_threshold" and report["stop_reason"] == "max_iterations"
    assert proc.stderr == ""


@pytest.mark.parametrize("args, message", [
    (["run", "a poster", "--aspect", "7:3"], "--aspect: unknown aspect ratio '7:3'; choose one of 1:1"),
    (["run", "a poster", "--size", "8K"], "--size: unknown size '8K'"),
    (["run", "   "], "prompt: prompt is empty"),
    (["run"], "PROMPT is required"),
    (["run", "a poster", "--reference", "/nonexistent/face.jpg"], "file not found: /nonexistent/face.jpg"),
    (["run", "a poster", "--max-iterations", "-1"], "budget.max_iterations: Input should be greater than or equal to 1"),
    (["run", "a poster", "--max-seconds", "-5"], "budget.max_seconds: Input should be greater than 0"),
    (["run", "a poster", "--backend", "nope"], "unknown backend 'nope'"),
    (["run", "a poster", "--threshold", "ocr=2"], "threshold for 'ocr' is 2.0"),
    (["run", "a poster", "--threshold", "ocr"], "expected CRITIC=VALUE"),
    (["run", "--resume", "run-does-not-exist"], "no checkpointed run 'run-does-not-exist'"),
])
def test_bad_input_exits_2_naming_the_problem(tmp_path, args, message) -> None:
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_corrupt_reference_exits_2(tmp_path, corrupt_png) -> None:
    proc = run_cli("run", "a product shot", "--reference", str(corrupt_png), cwd=tmp_path)
    assert proc.returncode == 2 and "truncated or corrupt" in proc.stderr


def test_help_explains_every_option() -> None:
    proc = run_cli("run", "--help")
    assert proc.returncode == 0
    for option in ("--reference", "--aspect", "--size", "--backend", "--max-iterations", "--out", "--seed",
                   "--resume", "--threshold", "--json", "exit codes"):
        assert option in proc.stdout


class _BrokenBackend:
    name = "broken"
    capabilities = Capabilities(cost_per_image=1.0)

    async def generate(self, request, store):
        raise BackendError("HTTP 503 UNAVAILABLE: the model is overloaded")


def test_backend_failure_exits_4_with_clear_message(tmp_path, capsys) -> None:
    register_backend("broken", lambda config: _BrokenBackend())
    try:
        code = main(["run", 'a poster that says "HI"', "--backend", "broken", "--out", str(tmp_path / "r")])
    finally:
        unregister_backend("broken")
    err = capsys.readouterr().err
    assert code == 4
    assert "broken backend failed on iteration 1: BackendError: HTTP 503 UNAVAILABLE" in err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["status"] == "failed" and report["stop_reason"] == "backend_error"


def _generate_events(run_dir: Path) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "generate"]


def test_killed_run_resumes_without_losing_or_regenerating_candidates(tmp_path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [*PIXLOOP, "run", UNFITTABLE, "--out", str(out), "--thread-id", "t-kill",
         "--max-iterations", "5", "--patience", "9"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stderr], daemon=True).start()
    seen = []
    while True:
        line = lines.get(timeout=120)
        seen.append(line)
        if "judge     current" in line and "generate  #2" in "".join(seen):
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    import asyncio

    from agent.interfaces.api import open_graph

    async def snapshot():
        async with open_graph(out) as graph:
            return (await graph.aget_state({"configurable": {"thread_id": "t-kill"}})).values

    before = {c.id: c.image.sha256 for c in asyncio.run(snapshot())["candidates"]}
    assert len(before) >= 2, "the kill came after the second candidate was checked"
    assert not (out / "report.json").exists()

    resumed = run_cli("run", "--resume", "t-kill", "--out", str(out))
    assert resumed.returncode == 3, resumed.stderr
    report = json.loads((out / "report.json").read_text())
    after = {c["id"]: c["sha256"] for c in report["candidates"]}
    assert [c["iteration"] for c in report["candidates"]] == [1, 2, 3, 4, 5]
    for cid, sha in before.items():
        assert after[cid] == sha
    generated = [e["candidate"] for e in _generate_events(out)]
    for cid in before:
        assert generated.count(cid) == 1, f"{cid} was generated again after resume"
    assert "generate  #1" not in resumed.stderr and "generate  #2" not in resumed.stderr


def test_resuming_a_finished_run_returns_its_result(tmp_path) -> None:
    out = tmp_path / "run"
    first = run_cli("run", 'A bold poster that says "HELLO"', "--out", str(out), "--thread-id", "t-done", "-q")
    assert first.returncode == 0
    again = run_cli("run", "--resume", "t-done", "--out", str(out), "-q")
    assert again.returncode == 0 and "status: passed" in again.stdout
    assert len(_generate_events(out)) == 1


def test_llm_planner_without_endpoint_is_bad_input(tmp_path, capsys) -> None:
    code = main(["run", "a poster", "--planner", "llm", "--out", str(tmp_path / "r")])
    assert code == 2 and "needs --llm-base-url and --llm-model" in capsys.readouterr().err


def test_planner_failure_is_reported_as_exit_4_without_a_crash(tmp_path, capsys, monkeypatch) -> None:
    from agent.loop import planning as planner_module

    class Refusing:
        name = "refusing"

        def plan(self, brief, references, store):
            raise planner_module.PlanningError("llm planner failed: LLMRefusal: I can't help with that")

    with planner_module.PLANNERS.registered("rule", Refusing):
        code = main(["run", 'a poster "HI"', "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 4 and "rule planner failed: llm planner failed: LLMRefusal" in err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["status"] == "failed" and report["candidates"] == []
