"""Reliability as a careless or hostile user meets it: every bad input is exit 2 with a message that names it,
never a traceback; one writer per run folder; an internal error still ends with a report; secrets stay out.

The CLI cases run `pixloop` as real subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from processes import kill, kill_once_checkpointed, wait_for

from agent.backends import BACKENDS, Capabilities, GenerationResult
from agent.interfaces.cli import main
from agent.models.errors import BriefError

REPO = Path(__file__).resolve().parents[2]
PIXLOOP = [sys.executable, "-m", "agent.interfaces.cli"]
QUICK = ["--max-iterations", "1", "-q"]


def pixloop(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120,
            **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PIXLOOP, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, **kw)


def refused(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    for word in words:
        assert word in out.stderr, (word, out.stderr)


def strict_json(path: Path) -> Any:
    def no_constants(name: str) -> Any:
        raise AssertionError(f"{path} holds {name}, which strict JSON parsers reject")

    return json.loads(path.read_text(), parse_constant=no_constants)


# --------------------------------------------------------------------------- --out


@pytest.mark.parametrize("command", ["run", "check"])
def test_an_unusable_out_is_bad_input_naming_it(tmp_path: Path, command: str) -> None:
    from PIL import Image

    image = tmp_path / "poster.png"
    Image.new("RGB", (64, 64), "white").save(image)
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    args = ['A poster that says "HI"', *QUICK] if command == "run" else [str(image)]
    cases = {str(a_file): "is a file", str(a_file / "sub"): "a part of that path is a file",
             "/proc/pixloop-x": "cannot be created", "/dev/null": "not a folder"}
    for out, words in cases.items():
        refused(pixloop(command, *args, "--out", out, cwd=tmp_path), "--out", words)
    assert a_file.read_text() == "not a folder"


def test_an_out_without_permission_is_bad_input(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root may write anywhere but in an immutable folder
        if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i: no folder is unwritable")
    else:
        locked.chmod(0o555)
    try:
        out = pixloop("run", 'A poster that says "HI"', *QUICK, "--out", str(locked / "run"), cwd=tmp_path)
        refused(out, "--out", "no permission")
        from PIL import Image

        Image.new("RGB", (64, 64), "white").save(tmp_path / "poster.png")
        refused(pixloop("check", "poster.png", "--out", str(locked / "evidence"), cwd=tmp_path), "--out",
                "no permission")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(locked)], check=True)
        else:
            locked.chmod(0o755)


# --------------------------------------------------------------------------- budgets and text


def test_an_infinite_cost_budget_means_no_limit_and_every_file_stays_strict_json(tmp_path: Path) -> None:
    out = pixloop("run", 'A poster that says "HI"', "--max-cost", "inf", "--max-seconds", "inf", *QUICK,
                  "--out", "run", "--json", cwd=tmp_path)
    assert out.returncode in (0, 3), out.stderr
    run_json = strict_json(tmp_path / "run" / "run.json")
    assert run_json["brief"]["budget"]["max_cost"] is None and run_json["brief"]["budget"]["max_seconds"] is None
    strict_json(tmp_path / "run" / "report.json")
    for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"events.jsonl holds {name}"))
    refused(pixloop("run", "x", "--max-cost", "nan", cwd=tmp_path), "max_cost", "NaN")


def test_invalid_utf8_in_the_prompt_is_bad_input_naming_the_prompt(tmp_path: Path) -> None:
    out = subprocess.run([*PIXLOOP, "run", b'A poster that says "H\xffI"'.decode("utf-8", "surrogateescape"),
                          "--out", "run"], cwd=tmp_path, capture_output=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"})
    err = out.stderr.decode("utf-8", "replace")
    assert out.returncode == 2 and "Traceback" not in err, err
    assert "prompt has a character that is not valid Unicode" in err
    assert not (tmp_path / "run" / "run.json").exists()


def test_unknown_critics_and_bad_thread_ids_are_refused_before_anything_runs(tmp_path: Path) -> None:
    refused(pixloop("run", "x", "--threshold", "ocrr=0.9", cwd=tmp_path), "thresholds", "unknown critic(s) ocrr")
    refused(pixloop("run", "x", "--critic", "nope", cwd=tmp_path), "critics", "unknown critic(s) nope")
    refused(pixloop("run", "x", "--thread-id", "../../escape", cwd=tmp_path), "--thread-id", "cannot contain a path")
    refused(pixloop("run", "--resume", "../escape", cwd=tmp_path), "--resume")
    assert not (tmp_path.parent / "escape").exists() and not (tmp_path / "pixloop-out").exists()


# --------------------------------------------------------------------------- one writer per run folder


def test_a_new_run_into_a_folder_that_holds_a_run_is_refused_unless_asked(tmp_path: Path) -> None:
    first = pixloop("run", 'A poster that says "ONE"', *QUICK, "--out", "run", "--thread-id", "first",
                    cwd=tmp_path)
    assert first.returncode in (0, 3), first.stderr
    before = (tmp_path / "run" / "final.png").read_bytes()

    again = pixloop("run", 'A poster that says "TWO"', *QUICK, "--out", "run", cwd=tmp_path)
    refused(again, "already holds run 'first'", "--resume first", "--if-exists")
    assert (tmp_path / "run" / "final.png").read_bytes() == before, "the first run's files are untouched"

    sub = pixloop("run", 'A poster that says "TWO"', *QUICK, "--out", "run", "--if-exists", "new",
                  "--thread-id", "second", cwd=tmp_path)
    assert sub.returncode in (0, 3), sub.stderr
    assert strict_json(tmp_path / "run" / "second" / "run.json")["thread_id"] == "second"
    assert strict_json(tmp_path / "run" / "run.json")["thread_id"] == "first"

    over = pixloop("run", 'A poster that says "THREE"', *QUICK, "--out", "run", "--if-exists", "overwrite",
                   "--thread-id", "third", cwd=tmp_path)
    assert over.returncode in (0, 3), over.stderr
    report = strict_json(tmp_path / "run" / "report.json")
    assert strict_json(tmp_path / "run" / "run.json")["thread_id"] == "third"
    assert [e["content"] for e in report["plan"]["text"]] == ["THREE"]
    assert (tmp_path / "run" / "second" / "run.json").exists(), "overwrite removes only the run's own files"




def test_a_second_resume_of_a_running_thread_is_refused_and_a_killed_writers_lock_is_taken_over(
        tmp_path: Path, slow_gemini: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GEMINI_API_KEY": "test-key"}
    run = ["run", 'An elegant minimal poster, subtle tone-on-tone, busy texture, that says "GRAND OPENING"',
           "--backend", "gemini", "--base-url", slow_gemini, "--out", "run", "--thread-id", "busy",
           "--max-iterations", "3", "-q"]
    first = subprocess.Popen([*PIXLOOP, *run], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lock = tmp_path / "run" / "run.lock"
        wait_for(lambda: lock.exists() and str(first.pid) in lock.read_text())
        second = pixloop("run", "--resume", "busy", "--out", "run", cwd=tmp_path, env={"GEMINI_API_KEY": "test-key"})
        refused(second, "is in use", f"process {first.pid}", "'busy'")
        kill_once_checkpointed(first, tmp_path / "run")  # its candidate file alone may precede the checkpoint
    finally:
        kill(first)
    assert str(first.pid) in (tmp_path / "run" / "run.lock").read_text(), "a killed writer leaves its lock behind"

    resumed = pixloop("run", "--resume", "busy", "--out", "run", "--json", cwd=tmp_path,
                      env={"GEMINI_API_KEY": "test-key"}, timeout=300)
    assert resumed.returncode in (0, 3), resumed.stderr
    events = [json.loads(ln) for ln in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    taken = [e for e in events if e["event"] == "lock_taken_over"]
    assert taken and taken[0]["stale"]["pid"] == first.pid
    assert [e["candidate"] for e in events if e["event"] == "generate"].count("c1") == 1, "c1 was not made twice"
    assert (tmp_path / "run" / "run.lock").read_text() == "", "a finished run releases its lock"


# --------------------------------------------------------------------------- failures inside a step


class FlakyBackend:
    """Makes one image, then fails with a bug (not a backend error) on the next call."""

    name = "flaky"
    capabilities = Capabilities(cost_per_image=0.0, deterministic=True)

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: Any, store: Any) -> GenerationResult:
        from PIL import Image

        self.calls += 1
        if self.calls > 1:
            raise ZeroDivisionError("a bug in a backend")
        return GenerationResult(image=Image.new("RGB", (request.plan.width, request.plan.height), "navy"))


def test_an_unexpected_error_inside_a_step_ends_with_a_report_and_exit_1(tmp_path: Path, capsys: Any) -> None:
    with BACKENDS.registered("flaky", lambda config: FlakyBackend()):
        code = main(["run", 'A subtle tone-on-tone poster that says "HI"', "--backend", "flaky",
                     "--out", str(tmp_path / "run"), "-q"])
    err = capsys.readouterr().err
    report = strict_json(tmp_path / "run" / "report.json")
    assert code == 1 and "Traceback" not in err and "internal error: generate step failed: ZeroDivisionError" in err
    assert report["status"] == "failed" and report["stop_reason"] == "internal_error"
    assert report["final"]["candidate"] == "c1" and (tmp_path / "run" / "final.png").exists(), "the best so far"


def test_a_failing_llm_planner_is_named_once(tmp_path: Path, capsys: Any) -> None:
    from agent.testing.fakes import FakeServer
    from agent.testing.fakes.chat import create_app

    with FakeServer(create_app(mode="refusal")) as srv:
        code = main(["run", 'A poster "HI"', "--planner", "llm", "--llm-base-url", srv.url + "/v1",
                     "--llm-model", "fake", "--out", str(tmp_path / "run"), "-q"])
    err = capsys.readouterr().err
    assert code == 4 and "llm planner failed: LLMRefusal" in err
    assert "llm planner failed: llm planner failed" not in err


# --------------------------------------------------------------------------- secrets


def test_credentials_in_a_base_url_never_reach_files_or_messages(tmp_path: Path) -> None:
    secret_url = "http://bob:hunter2@127.0.0.1:9/sdapi?api_key=SECRETKEY&token=TOKENVAL"
    out = pixloop("run", 'A poster "HI"', "--backend", "a1111", "--base-url", secret_url,
                  "--backend-option", "max_attempts=1", "--out", "run", cwd=tmp_path)
    assert out.returncode == 4, out.stderr  # nothing listens on port 9
    written = [p.read_text() for p in (tmp_path / "run").rglob("*") if p.suffix in (".json", ".jsonl")]
    for text in [out.stdout, out.stderr, *written]:
        for secret in ("hunter2", "SECRETKEY", "TOKENVAL"):
            assert secret not in text
    assert strict_json(tmp_path / "run" / "run.json")["config"]["base_url"] == \
        "http://***@127.0.0.1:9/sdapi?api_key=***&token=***"
    thread = strict_json(tmp_path / "run" / "run.json")["thread_id"]
    resumed = pixloop("run", "--resume", thread, "--out", "run", cwd=tmp_path)
    refused(resumed, "credentials", "--base-url")


def test_make_brief_turns_every_validation_problem_into_a_brief_error() -> None:
    from agent.interfaces.api import make_brief

    with pytest.raises(BriefError, match="prompt has a character that is not valid Unicode"):
        make_brief("a \udcff poster")
    with pytest.raises(BriefError, match="max_cost is NaN"):
        make_brief("a poster", max_cost=float("nan"))
    assert make_brief("a poster", max_cost=float("inf")).budget.max_cost is None
