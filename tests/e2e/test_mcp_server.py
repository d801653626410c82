"""`pixloop mcp` as an MCP client meets it: a subprocess, driven by the official SDK's client.

Over stdio the client starts `python -m agent.interfaces.cli mcp` itself (and stops it when the session ends);
over streamable HTTP a fixture starts `pixloop mcp --http 0`, reads the URL it prints on stderr, and kills it
at teardown. Every run uses the offline compose backend, and everything stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TextIO, TypeVar

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_types import CallToolResult, ImageContent, TextContent
from PIL import Image

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "agent.interfaces.cli", "mcp"]
CALL_TIMEOUT_S = 90
STARTUP_TIMEOUT_S = 60
LISTENING = re.compile(r"pixloop mcp: listening on (http://127\.0\.0\.1:\d+/mcp)")
T = TypeVar("T")

Progress = list[tuple[float, float | None, str | None]]


def server_env() -> dict[str, str]:
    return {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "PIXLOOP_OUTPUT_ROOT": "", "PIXLOOP_INPUT_ROOT": ""}


def summary_of(result: CallToolResult) -> dict[str, Any]:
    text = result.content[-1]
    assert isinstance(text, TextContent), result.content
    return json.loads(text.text)


def error_of(result: CallToolResult) -> str:
    assert result.is_error, result.content
    text = result.content[0]
    assert isinstance(text, TextContent)
    return text.text


def decoded_images(result: CallToolResult) -> list[Image.Image]:
    """Each image block decoded as the client gets it: base64 of a real PNG or JPEG, as its MIME type says."""
    out = []
    for block in result.content:
        if isinstance(block, ImageContent):
            image = Image.open(io.BytesIO(base64.b64decode(block.data, validate=True)))
            image.load()
            assert f"image/{image.format.lower()}" == block.mime_type
            out.append(image)
    return out


def with_stdio_client(work: Callable[[Client], Awaitable[T]], *server_args: str, log: Path) -> T:
    """Start the server over stdio with `server_args`, run `work` with a connected client, stop the server."""
    params = StdioServerParameters(command=SERVER[0], args=[*SERVER[1:], *server_args], env=server_env(),
                                   cwd=log.parent)

    async def go(errlog: TextIO) -> T:
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=CALL_TIMEOUT_S) as client:
            return await asyncio.wait_for(work(client), CALL_TIMEOUT_S)

    with log.open("a") as errlog:
        return asyncio.run(go(errlog))


async def call_with_progress(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[CallToolResult, Progress]:
    progress: Progress = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    return await client.call_tool(tool, arguments, progress_callback=on_progress), progress


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("mcp")
    for name in ("out", "in", "outside"):
        (base / name).mkdir()
    return {"base": base, "out": base / "out", "in": base / "in", "outside": base / "outside",
            "log": base / "server-stderr.log"}


@pytest.fixture(scope="module")
def generated(roots: dict[str, Path]) -> dict[str, Any]:
    """One `generate` over stdio, shared by the tests that check what it returned and what it left behind."""
    async def work(client: Client) -> tuple[CallToolResult, Progress]:
        return await call_with_progress(client, "generate", {"prompt": 'A poster that says "OPEN"',
                                                             "max_iterations": 2})

    result, progress = with_stdio_client(work, "--out-root", str(roots["out"]), log=roots["log"])
    return {"result": result, "progress": progress, "summary": summary_of(result)}


def test_mcp_client_lists_the_five_tools_with_their_schemas(roots: dict[str, Path]) -> None:
    async def work(client: Client) -> Any:
        return (await client.list_tools()).tools

    tools = {t.name: t for t in with_stdio_client(work, "--out-root", str(roots["out"]), log=roots["log"])}
    assert set(tools) == {"generate", "edit", "check", "story", "report"}
    for name, needs in (("generate", "prompt"), ("edit", "source"), ("check", "image"), ("report", "run")):
        schema = tools[name].input_schema
        assert schema["type"] == "object" and needs in schema["required"] and needs in schema["properties"]
    assert {"script", "topic", "characters"} <= set(tools["story"].input_schema["properties"])


def test_generate_returns_the_image_and_a_summary_whose_files_are_under_the_out_root(
        generated: dict[str, Any], roots: dict[str, Path]) -> None:
    result, summary = generated["result"], generated["summary"]
    assert not result.is_error, summary
    assert summary["status"] == "passed" and summary["stop_reason"] == "passed"
    assert summary["iterations"] >= 1 and summary["failed_critics"] == []
    final = Path(summary["files"]["final_image"])
    assert final.is_file() and final.resolve().is_relative_to(roots["out"].resolve())
    assert Path(summary["files"]["report_json"]).is_file() and Path(summary["files"]["report_html"]).is_file()
    [image] = decoded_images(result)
    assert image.size == Image.open(final).size, "a 1K image is sent at its own size"


def test_generate_reports_progress_per_iteration_while_it_runs(generated: dict[str, Any]) -> None:
    progress: Progress = generated["progress"]
    assert len(progress) >= 5, progress
    messages = [m or "" for _, _, m in progress]
    assert messages[0].startswith("iteration 1: planning")
    assert any(m.startswith("iteration 1: checking") and "ocr" in m for m in messages)
    assert all(total == 2.0 for _, total, _ in progress), "total is the run's max_iterations"
    values = [v for v, _, _ in progress]
    assert values == sorted(set(values)) and values[-1] == 2.0


def test_check_passes_the_right_text_and_fails_ocr_on_the_wrong_one(generated: dict[str, Any],
                                                                     roots: dict[str, Path]) -> None:
    final = generated["summary"]["files"]["final_image"]

    async def work(client: Client) -> tuple[CallToolResult, CallToolResult]:
        right = await client.call_tool("check", {"image": final, "required_text": ["OPEN"]})
        wrong = await client.call_tool("check", {"image": final, "required_text": ["CLOSED FOREVER"]})
        return right, wrong

    right, wrong = with_stdio_client(work, "--out-root", str(roots["out"]), log=roots["log"])
    assert not right.is_error and summary_of(right)["passed"] is True
    assert not wrong.is_error, "a failing verdict is an answer, not an error"
    verdict = summary_of(wrong)
    assert verdict["passed"] is False and verdict["failed_critics"] == ["ocr"]
    ocr = next(c for c in verdict["critics"] if c["name"] == "ocr")
    assert "CLOSED FOREVER" in ocr["feedback"]
    assert len(decoded_images(right)) == 1


def test_report_reads_the_finished_run_by_its_id(generated: dict[str, Any], roots: dict[str, Path]) -> None:
    made = generated["summary"]

    async def work(client: Client) -> CallToolResult:
        return await client.call_tool("report", {"run": made["run_id"]})

    result = with_stdio_client(work, "--out-root", str(roots["out"]), log=roots["log"])
    assert not result.is_error
    assert summary_of(result) == made
    assert len(decoded_images(result)) == 1


def test_paths_outside_the_input_root_are_refused_with_the_reason(roots: dict[str, Path]) -> None:
    inside, outside = roots["in"] / "poster.png", roots["outside"] / "poster.png"
    for path in (inside, outside):
        Image.new("RGB", (320, 200), "white").save(path)

    async def work(client: Client) -> list[CallToolResult]:
        return [await client.call_tool("check", {"image": image}) for image in
                (str(outside), "../outside/poster.png", "poster.png")]

    absolute, relative, allowed = with_stdio_client(work, "--out-root", str(roots["out"]), "--input-root",
                                                    str(roots["in"]), log=roots["log"])
    for refused in (absolute, relative):
        assert "outside the server's input root" in error_of(refused)
    assert not allowed.is_error and summary_of(allowed)["image"] == str(inside.resolve())


def test_an_unknown_backend_is_a_clear_tool_error_and_refuses_the_server_at_start(roots: dict[str, Path]) -> None:
    async def work(client: Client) -> CallToolResult:
        return await client.call_tool("generate", {"prompt": "a poster", "backend": "no-such-backend"})

    message = error_of(with_stdio_client(work, "--out-root", str(roots["out"]), log=roots["log"]))
    assert "unknown backend 'no-such-backend'" in message and "compose" in message
    started = subprocess.run([*SERVER, "--backend", "no-such-backend", "--out-root", str(roots["out"])],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S,
                             env={**os.environ, **server_env()}, cwd=roots["base"])
    assert started.returncode == 2
    assert "unknown backend 'no-such-backend'" in started.stderr


def _read_lines(stream: TextIO, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@pytest.fixture
def http_server(roots: dict[str, Path]) -> Iterator[str]:
    """`pixloop mcp --http 0` on loopback; yields the URL it printed on stderr, killed at teardown."""
    proc = subprocess.Popen([*SERVER, "--http", "0", "--out-root", str(roots["out"]), "-n", "2"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **server_env()}, cwd=roots["base"], start_new_session=True)
    lines: queue.Queue[str | None] = queue.Queue()
    assert proc.stderr is not None
    threading.Thread(target=_read_lines, args=(proc.stderr, lines), daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=STARTUP_TIMEOUT_S)
            assert line is not None, f"the server exited before listening: {''.join(seen)}"
            seen.append(line)
            if match := LISTENING.search(line):
                break
        yield match.group(1)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_over_streamable_http_a_client_lists_the_tools_checks_and_generates(
        http_server: str, generated: dict[str, Any], roots: dict[str, Path]) -> None:
    poster = Path(generated["summary"]["files"]["final_image"])
    as_data = "data:image/png;base64," + base64.b64encode(poster.read_bytes()).decode()

    async def go() -> tuple[set[str], CallToolResult, CallToolResult, Progress]:
        async with Client(http_server, read_timeout_seconds=CALL_TIMEOUT_S) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            checked = await client.call_tool("check", {"image": as_data, "required_text": ["OPEN"]})
            made, progress = await call_with_progress(client, "generate", {"prompt": 'A sign that says "HTTP"'})
            return names, checked, made, progress

    names, checked, made, progress = asyncio.run(asyncio.wait_for(go(), CALL_TIMEOUT_S * 2))
    assert names == {"generate", "edit", "check", "story", "report"}
    assert not checked.is_error and summary_of(checked)["passed"] is True
    summary = summary_of(made)
    assert not made.is_error and summary["status"] in ("passed", "below_threshold")
    assert Path(summary["files"]["final_image"]).resolve().is_relative_to(roots["out"].resolve())
    assert len(decoded_images(made)) == 1
    assert progress and progress[-1][0] == progress[-1][1] == 2.0, "the server's --max-iterations is the default"
