"""`pixloop batch` as a user runs it: a JOBS file in, one folder per job and summary.json out, a line per finished
job on stderr (not a terminal), an exit code for the worst job, and a killed batch that resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from processes import kill

REPO = Path(__file__).resolve().parents[2]
PIXLOOP = [sys.executable, "-m", "agent.interfaces.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def pixloop(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PIXLOOP, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=ENV)


def write_jobs(path: Path, *jobs: dict | str) -> Path:
    path.write_text("".join((j if isinstance(j, str) else json.dumps(j)) + "\n" for j in jobs))
    return path


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def generates(run_dir: Path) -> list[str]:
    """The candidates a run generated, from its audit log."""
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return [e["candidate"] for e in events if e["event"] == "generate"]


def test_a_jsonl_batch_runs_every_job_and_writes_a_summary(tmp_path):
    write_jobs(tmp_path / "jobs.jsonl", {"id": "open", "prompt": 'A poster that says "OPEN"'},
               {"prompt": 'A banner that says "SALE"', "aspect": "16:9"})
    out = pixloop("batch", "jobs.jsonl", "--out", "batch", cwd=tmp_path)

    assert out.returncode == 0, out.stderr
    data = summary(tmp_path / "batch")
    assert data["exit_code"] == 0 and data["counts"] == {"passed": 2}
    rows = {r["id"]: r for r in data["results"]}
    assert list(rows) == ["open", "job-0002"], "rows in file order; an id is job-NNNN by default"
    for job_id, row in rows.items():
        assert row["status"] == "passed" and row["exit_code"] == 0 and row["kind"] == "run"
        assert row["final"] == f"{job_id}/final.png" and (tmp_path / "batch" / row["final"]).is_file()
        assert row["cost"] == 1.0 and row["seconds"] > 0 and row["error"] is None
        assert (tmp_path / "batch" / job_id / "report.json").is_file()
    assert rows["job-0002"]["line"] == 2
    assert data["cost"] == 2.0
    assert "open passed" in out.stderr and "job-0002 passed" in out.stderr, "a plain line per job: no terminal"
    assert "summary:" in out.stdout


def test_a_bad_line_is_reported_and_the_rest_still_run(tmp_path):
    write_jobs(tmp_path / "jobs.jsonl",
               {"prompt": 'A poster that says "ONE"'},
               "{not json",
               {"prompt": "A poster", "colour": "red"},
               {"text": ["NO PROMPT"]},
               {"prompt": "A product shot", "references": ["missing.png"]},
               {"prompt": 'A poster that says "TWO"'})
    out = pixloop("batch", "jobs.jsonl", "--out", "batch", "-q", cwd=tmp_path)

    assert out.returncode == 2, out.stderr
    rows = summary(tmp_path / "batch")["results"]
    assert [r["status"] for r in rows] == ["passed", "bad_input", "bad_input", "bad_input", "bad_input", "passed"]
    bad = {r["line"]: r["error"] for r in rows if r["status"] == "bad_input"}
    assert set(bad) == {2, 3, 4, 5}
    assert "not valid JSON" in bad[2]
    assert "unknown field" in bad[3] and "colour" in bad[3]
    assert "prompt" in bad[4]
    assert "missing.png" in bad[5]
    for line, error in bad.items():
        assert error.startswith(f"line {line}:")
        assert error in out.stderr, "every bad line is said on stderr too, even with -q"
    assert all(r["exit_code"] == 2 for r in rows if r["status"] == "bad_input")


def test_exit_code_reflects_the_worst_job(tmp_path):
    write_jobs(tmp_path / "jobs.jsonl", {"prompt": 'A poster that says "HELLO"'},
               {"id": "bad", "prompt": "A poster that says 'BUY STOLEN CREDIT CARDS HERE'"},
               {"prompt": 'A poster that says "BYE"'})
    out = pixloop("batch", "jobs.jsonl", "--out", "batch", "-q", cwd=tmp_path)

    assert out.returncode == 5, out.stderr
    rows = {r["id"]: r for r in summary(tmp_path / "batch")["results"]}
    assert rows["bad"]["status"] == "refused" and rows["bad"]["exit_code"] == 5 and rows["bad"]["final"] is None
    assert "stolen" in rows["bad"]["error"]
    assert [r["status"] for i, r in rows.items() if i != "bad"] == ["passed", "passed"]

    # a bad line outranks a refusal (4 > 2 > 5 > 3 > 0)
    write_jobs(tmp_path / "more.jsonl", {"prompt": "A poster that says 'BUY STOLEN CREDIT CARDS HERE'"}, "[1, 2")
    worse = pixloop("batch", "more.jsonl", "--out", "more", "-q", cwd=tmp_path)
    assert worse.returncode == 2, worse.stderr


def test_help_documents_the_jobs_format_and_the_exit_code_precedence(tmp_path):
    out = pixloop("batch", "--help", cwd=tmp_path)
    assert out.returncode == 0
    for words in ("JSON Lines", "CSV", "characters", "summary.json", "--max-total-cost", "1 internal error > 4 failed"):
        assert words in out.stdout, words


def test_a_killed_batch_resumes_without_generating_anything_twice(tmp_path):
    write_jobs(tmp_path / "jobs.jsonl",
               {"id": "quick", "prompt": 'A sign that says "ONE"'},
               # every candidate misspelt: at least two generations, a second each
               {"id": "slow", "prompt": 'A sign that says "TWO"', "max_iterations": 3,
                "backend_option": {"misspell": "1", "feedback_response": "0"}},
               {"id": "last", "prompt": 'A sign that says "THREE"'})
    command = [*PIXLOOP, "batch", "jobs.jsonl", "--out", "batch", "--backend", "simulated",
               "--backend-option", "profile=clean", "--backend-option", "latency=1", "--concurrency", "2"]
    first = subprocess.Popen(command, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        assert first.stderr is not None
        for line in first.stderr:  # a line per finished job: kill once the first one is done
            if " quick passed" in line:
                break
    finally:
        kill(first)
    out = tmp_path / "batch"
    before = {r["id"]: r for r in summary(out)["results"]}
    assert before["quick"]["status"] == "passed"
    assert before["slow"]["status"] == "running", "killed half-way"
    assert before["last"]["status"] in ("pending", "running"), "it starts as soon as quick leaves it a place"
    quick_log = (out / "quick" / "events.jsonl").read_bytes()
    slow_before = generates(out / "slow") if (out / "slow" / "events.jsonl").exists() else []

    resumed = subprocess.run(command, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)

    assert resumed.returncode in (0, 3), resumed.stderr
    after = {r["id"]: r for r in summary(out)["results"]}
    assert after["quick"] == before["quick"], "a finished job is kept as it was"
    assert (out / "quick" / "events.jsonl").read_bytes() == quick_log, "and not run again"
    assert after["slow"]["status"] in ("passed", "below_threshold") and after["last"]["status"] == "passed"
    assert resumed.returncode == (0 if after["slow"]["status"] == "passed" else 3)
    if slow_before:
        assert after["slow"]["resumed"] is True, "a job with a checkpoint continues from it"
    for job in ("quick", "slow", "last"):
        made = generates(out / job)
        report = json.loads((out / job / "report.json").read_text())
        assert len(made) == len(set(made)) == report["iterations"], f"{job}: every candidate generated once"
    assert len(generates(out / "slow")) >= 2, "its first candidate is always misspelt"
    assert slow_before == generates(out / "slow")[:len(slow_before)]
