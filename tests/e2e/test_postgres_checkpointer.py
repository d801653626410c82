"""`pixloop run --checkpointer postgresql://...` as workers sharing a run folder use it, against a real PostgreSQL
server: a run killed mid-way is resumed by another process without making a finished candidate again, a second
writer of the run is refused by the database's lock even where the folder's flock cannot see it, and a wrong or
missing URL is a clear error with its password masked.

The CLI cases run `pixloop` as real subprocesses.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from processes import events_text, kill, kill_once_checkpointed, wait_for

from agent.interfaces.api import open_graph
from agent.interfaces.run_folder import CHECKPOINT_DB
from agent.runtime.checkpoint_postgres import CHECKPOINTER_ENV
from agent.runtime.secrets import mask_url

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PIXLOOP = [sys.executable, "-m", "agent.interfaces.cli"]
QUICK = ["--max-iterations", "1", "-q"]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != CHECKPOINTER_ENV}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def pixloop(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PIXLOOP, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=environment(**(env or {})))


def refused(out: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    for word in words:
        assert word in out.stderr, (word, out.stderr)


def password_of(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def generated(run_dir: Path) -> list[str]:
    return [e["candidate"] for e in map(json.loads, events_text(run_dir).splitlines()) if e["event"] == "generate"]




def test_a_killed_run_is_resumed_by_another_process_from_postgres_and_a_second_writer_is_refused(
        tmp_path: Path, postgres_url: str, slow_gemini: str) -> None:
    tid = f"pg-kill-{secrets.token_hex(3)}"
    key = {"GEMINI_API_KEY": "test-key"}
    run_dir = tmp_path / "run"
    first = subprocess.Popen(
        [*PIXLOOP, "run", 'An elegant minimal poster, subtle tone-on-tone, busy texture, that says "GRAND OPENING"',
         "--backend", "gemini", "--base-url", slow_gemini, "--out", "run", "--thread-id", tid, "--max-iterations", "3",
         "-q", "--checkpointer", postgres_url],
        cwd=tmp_path, env=environment(**key), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        wait_for(lambda: (run_dir / "run.json").exists())  # written once the run holds its thread's lock
        # a worker on another machine, whose shared file system does not carry the folder's flock: same run, and
        # only the database's lock stands between the two writers
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        shutil.copy(run_dir / "run.json", elsewhere / "run.json")
        second = pixloop("run", "--resume", tid, "--out", "elsewhere", "--checkpointer", postgres_url, cwd=tmp_path,
                         env=key)
        refused(second, 2, f"run '{tid}' is in use", f"being written by process {first.pid} on",
                f"of {mask_url(postgres_url)}")
        assert not generated(elsewhere)
        kill_once_checkpointed(first, run_dir)
    finally:
        kill(first)
    assert not (run_dir / "report.json").exists(), "killed mid-run"

    async def snapshot() -> dict[str, Any]:
        async with open_graph(run_dir, postgres_url) as graph:
            return dict((await graph.aget_state({"configurable": {"thread_id": tid}})).values)

    before = {c.id: c.image.sha256 for c in asyncio.run(snapshot())["candidates"]}
    assert "c1" in before

    resumed = pixloop("run", "--resume", tid, "--out", "run", "--checkpointer", postgres_url, "--json",
                      cwd=tmp_path, env=key)
    assert resumed.returncode in (0, 3), resumed.stderr
    report = json.loads((run_dir / "report.json").read_text())
    after = {c["id"]: c["sha256"] for c in report["candidates"]}
    for cid, sha in before.items():
        assert after[cid] == sha
        assert generated(run_dir).count(cid) == 1, f"{cid} was generated again after resume"
    assert not (run_dir / CHECKPOINT_DB).exists(), "the checkpoints are in PostgreSQL"
    secret = password_of(postgres_url)
    for path in run_dir.rglob("*"):
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path
    for out in (resumed, second):
        assert secret not in out.stdout + out.stderr


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_an_unreachable_or_refusing_database_is_a_clear_error_with_its_password_masked(
        tmp_path: Path, postgres_url: str) -> None:
    port = closed_port()
    down = pixloop("run", 'A poster that says "HI"', *QUICK, "--out", "run", cwd=tmp_path,
                   env={CHECKPOINTER_ENV: f"postgresql://bob:hunter2@127.0.0.1:{port}/pixloop"})
    refused(down, 4, f"the checkpointer's PostgreSQL server postgresql://***@127.0.0.1:{port}/pixloop cannot be "
                     "reached", "Connection refused")
    assert not (tmp_path / "run" / "run.json").exists(), "nothing is started without its checkpointer"

    wrong = postgres_url.replace(password_of(postgres_url), "hunter2")
    bad_password = pixloop("run", 'A poster that says "HI"', *QUICK, "--out", "run", "--checkpointer", wrong,
                           cwd=tmp_path)
    refused(bad_password, 2, f"the checkpointer {mask_url(wrong)} refused the connection",
            "password authentication failed")

    other = pixloop("run", 'A poster that says "HI"', *QUICK, "--out", "run", "--checkpointer",
                    "mysql://bob:hunter2@db/pixloop", cwd=tmp_path)
    refused(other, 2, "'mysql://***@db/pixloop' is not a PostgreSQL URL", "postgresql://", "postgres://")
    for out in (down, bad_password, other):
        assert "hunter2" not in out.stdout + out.stderr


def test_resuming_a_run_whose_saved_url_was_masked_asks_for_the_url_again(tmp_path: Path, postgres_url: str) -> None:
    tid = f"pg-masked-{secrets.token_hex(3)}"
    first = pixloop("run", 'A bold poster that says "HELLO"', *QUICK, "--out", "run", "--thread-id", tid,
                    cwd=tmp_path, env={CHECKPOINTER_ENV: postgres_url})
    assert first.returncode in (0, 3), first.stderr
    saved = json.loads((tmp_path / "run" / "run.json").read_text())["config"]["checkpointer"]
    assert saved == mask_url(postgres_url) and password_of(postgres_url) not in saved

    without = pixloop("run", "--resume", tid, "--out", "run", cwd=tmp_path)
    refused(without, 2, "checkpointer had credentials in it", "resume with --checkpointer again", CHECKPOINTER_ENV)

    from_env = pixloop("run", "--resume", tid, "--out", "run", cwd=tmp_path, env={CHECKPOINTER_ENV: postgres_url})
    assert from_env.returncode == first.returncode, from_env.stderr
    assert generated(tmp_path / "run") == ["c1"], "a finished run is read back, not made again"
