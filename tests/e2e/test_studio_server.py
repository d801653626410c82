"""End-to-end check of the LangGraph Studio path: `langgraph dev` serves the pixloop graph.

Starts the in-memory dev server as a subprocess on an OS-chosen loopback port (the real
port is read from the server's own log), then drives it over HTTP with langgraph_sdk:
finds the "pixloop" assistant, streams one offline run (compose backend + OCR critic) that
fails OCR once and then passes, checks the final thread state and the files the run wrote,
and checks the graph topology Studio draws. The server is stopped by its process group.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

langgraph_sdk = pytest.importorskip("langgraph_sdk", reason="needs the 'test' extra (langgraph-sdk)")
pytest.importorskip("langgraph_api", reason="needs the 'test' extra (langgraph-cli[inmem])")

REPO_ROOT = Path(__file__).resolve().parents[2]
LANGGRAPH_BIN = Path(sys.executable).parent / "langgraph"

JOBS = 4
"""Runs the dev server runs at once. `langgraph dev --help` says the default is 10, but with no flag the CLI
passes None and the API server turns it into 1 (bench/studio_concurrency.py measures both)."""
STARTUP_DEADLINE_S = 120.0
RUN_DEADLINE_S = 180.0
STOP_TIMEOUT_S = 30.0

NODES = ("plan", "generate", "check", "judge", "correct", "finalize")
EDGES = {("judge", "correct"), ("judge", "finalize"), ("correct", "generate"),
         ("generate", "check"), ("check", "judge")}

BRIEF = {
    "prompt": 'An elegant minimal poster, subtle tone-on-tone, busy texture, that says "GRAND OPENING"',
    "budget": {"max_iterations": 3},
}

# uvicorn logs the port it really bound, also when asked for port 0.
_RUNNING = re.compile(r"Uvicorn running on (https?)://([^\s:]+|\[[^\]]+\]):(\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_EOF = object()


@dataclass
class DevServer:
    proc: subprocess.Popen
    cwd: Path
    url: str = ""
    port: int = 0
    log: collections.deque = field(default_factory=lambda: collections.deque(maxlen=400))
    lines: queue.Queue = field(default_factory=queue.Queue)
    reader: threading.Thread | None = None

    def tail(self, n: int = 80) -> str:
        return "\n".join(list(self.log)[-n:])


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never talk to LangSmith / PyPI / analytics; nothing can leave loopback anyway.
    for key in ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGGRAPH_API_KEY",
                "LANGSMITH_ENDPOINT", "LANGCHAIN_ENDPOINT", "LANGSMITH_CONTROL_PLANE_API_KEY",
                "LANGGRAPH_CLOUD_LICENSE_KEY", "LANGSMITH_LANGGRAPH_API_VARIANT"):
            env.pop(key, None)
    env.update({
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "LANGSMITH_TRACING": "false",
        "LANGSMITH_TRACING_V2": "false",
        "LANGCHAIN_TRACING_V2": "false",
        "LANGCHAIN_TRACING": "false",
        "LOG_COLOR": "false",        # plain log lines (langgraph_api's structlog renderer)
        "LOG_JSON": "false",
        "PYTHONUNBUFFERED": "1",     # log lines reach the pipe as they are written
        "NO_COLOR": "1",
    })
    return env


def _dev_config(server_dir: Path) -> Path:
    """The repo's langgraph.json, with its relative paths resolved against the repo root.

    `langgraph dev` resolves graph paths against its cwd and always keeps its in-memory
    database in `<cwd>/.langgraph_api/` (loaded at start, flushed at exit; this CLI version
    ignores "disable_persistence"). Running from the repo root would make the test share
    that folder with a developer's Studio session or a concurrent test run, so the server
    runs in a fresh folder instead and sees exactly the graphs the repo's config declares."""
    config = json.loads((REPO_ROOT / "langgraph.json").read_text())

    def resolve(spec: str) -> str:  # "./graphs/pixloop.py:graph" -> "/abs/graphs/pixloop.py:graph"
        path, sep, attr = spec.partition(":")
        if path.endswith(".py") and not Path(path).is_absolute():
            return f"{(REPO_ROOT / path).resolve()}{sep}{attr}"
        return spec  # a module spec ("pkg.mod:graph") or an absolute path

    config["graphs"] = {name: resolve(spec) if isinstance(spec, str) else spec
                        for name, spec in config.get("graphs", {}).items()}
    config["dependencies"] = [str((REPO_ROOT / d).resolve()) if d.startswith(".") else d
                              for d in config.get("dependencies", [])]
    if isinstance(config.get("env"), str):  # an .env file path
        config["env"] = str((REPO_ROOT / config["env"]).resolve())
    path = server_dir / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _pump(proc: subprocess.Popen, server: DevServer) -> None:
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, ""):
        line = _ANSI.sub("", raw.rstrip("\n"))
        server.log.append(line)
        server.lines.put(line)
    server.lines.put(_EOF)


def _start_server(tmp_path: Path) -> DevServer:
    assert LANGGRAPH_BIN.exists(), f"langgraph CLI not found next to {sys.executable}"
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    cmd = [str(LANGGRAPH_BIN), "dev", "--no-browser",
           "--no-reload",                      # other people edit the repo meanwhile: no restarts mid-run
           "--host", "127.0.0.1", "--port", "0",  # OS-chosen free port, read back from the log
           "--server-log-level", "info",       # uvicorn's "Uvicorn running on ..." line is INFO
           "--n-jobs-per-worker", str(JOBS),   # without the flag langgraph dev runs one run at a time
           "--config", str(_dev_config(server_dir))]
    env = {**_server_env(), "PIXLOOP_OUTPUT_ROOT": str(tmp_path / "out"), "PIXLOOP_INPUT_ROOT": str(tmp_path / "in")}
    proc = subprocess.Popen(cmd, cwd=server_dir, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            encoding="utf-8", errors="replace", bufsize=1, start_new_session=True)
    server = DevServer(proc=proc, cwd=server_dir)
    server.reader = threading.Thread(target=_pump, args=(proc, server), daemon=True, name="langgraph-dev-log")
    server.reader.start()
    return server


def _wait_until_ready(server: DevServer, deadline_s: float = STARTUP_DEADLINE_S) -> None:
    """Read the server log until uvicorn says where it listens (or the server dies / time runs out)."""
    deadline = time.monotonic() + deadline_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"langgraph dev not ready within {deadline_s:.0f}s; log tail:\n{server.tail()}")
        try:
            line = server.lines.get(timeout=remaining)
        except queue.Empty:
            continue  # the deadline check above fails the test
        if line is _EOF:
            code = server.proc.wait(timeout=10)
            pytest.fail(f"langgraph dev exited (code {code}) before it was ready; log tail:\n{server.tail()}")
        m = _RUNNING.search(line)
        if m:
            scheme, host, port = m.group(1), m.group(2), int(m.group(3))
            assert host == "127.0.0.1", f"server bound {host}, not loopback"
            assert port != 0
            server.port, server.url = port, f"{scheme}://{host}:{port}"
            return


def _stop_server(server: DevServer) -> None:
    proc = server.proc
    pgid = proc.pid  # start_new_session=True: the server leads its own process group
    if proc.poll() is None:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=STOP_TIMEOUT_S)
    if server.reader is not None:
        server.reader.join(timeout=STOP_TIMEOUT_S)
    if proc.stdout is not None:
        proc.stdout.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a recycled group id owned by someone else
        return True
    return True


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[DevServer]:
    server = _start_server(tmp_path)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        _stop_server(server)
        assert server.proc.returncode is not None, "langgraph dev is still running"
        leftover = _group_alive(server.proc.pid)
        if leftover:  # clean up before failing: nothing of ours may outlive the test
            os.killpg(server.proc.pid, signal.SIGKILL)
        assert not leftover, f"processes of the langgraph dev group {server.proc.pid} survived shutdown"
        if server.port:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                assert s.connect_ex(("127.0.0.1", server.port)) != 0, \
                    f"port {server.port} still accepts connections after shutdown"


async def _exercise(url: str, run_dir: str) -> dict[str, Any]:
    client = langgraph_sdk.get_client(url=url, api_key=None)
    try:
        ok = await client.http.get("/ok")
        assert ok.get("ok") is True, ok

        assistants = await client.assistants.search(graph_id="pixloop")
        assert assistants, "no assistant registered for graph 'pixloop'"
        assistant_id = assistants[0]["assistant_id"]

        graph = await client.assistants.get_graph(assistant_id)
        schemas = await client.assistants.get_schemas(assistant_id)

        thread = await client.threads.create()
        thread_id = thread["thread_id"]
        events: list[tuple[str, Any]] = []

        async def consume() -> None:
            async for part in client.runs.stream(
                thread_id, assistant_id,
                input={"brief": BRIEF, "run_dir": run_dir},
                stream_mode="updates",
            ):
                events.append((part.event, part.data))

        await asyncio.wait_for(consume(), timeout=RUN_DEADLINE_S)
        state = await client.threads.get_state(thread_id)
        return {"graph": graph, "schemas": schemas, "events": events, "state": state}
    finally:
        await client.aclose()


@pytest.mark.slow
def test_langgraph_dev_serves_pixloop(dev_server: DevServer, tmp_path: Path, delivered_from: Any) -> None:
    run_dir = tmp_path / "out" / "run"  # the client names a folder under the server's output root
    t0 = time.monotonic()
    try:
        out = asyncio.run(_exercise(dev_server.url, "run"))
    except Exception as e:
        pytest.fail(f"talking to langgraph dev at {dev_server.url} failed: {type(e).__name__}: {e}\n"
                    f"server log tail:\n{dev_server.tail()}")
    run_s = time.monotonic() - t0
    ctx = f"(server {dev_server.url}, {run_s:.1f}s)\nserver log tail:\n{dev_server.tail(40)}"

    # --- the streamed run -------------------------------------------------------------
    events = out["events"]
    errors = [data for event, data in events if event == "error"]
    if any("BlockingError" in str(e) for e in errors):
        pytest.fail("langgraph dev (blockbuster) caught blocking I/O in an async node: do file I/O in a sync "
                    f"node or via asyncio.to_thread, never on the event loop. {errors} {ctx}")
    assert not errors, f"run streamed errors: {errors} {ctx}"
    order = [node for event, data in events if event == "updates" and isinstance(data, dict)
             for node in data]
    assert order, f"no update events streamed: {events!r} {ctx}"
    for node in NODES:
        assert node in order, f"no update from node {node!r}; got {order} {ctx}"
    assert order[0] == "plan", order
    assert order[-1] == "finalize", order
    assert order.count("finalize") == 1 and order.count("plan") == 1, order
    # every round is generate -> check(s) -> judge; a correction comes between rounds
    first_correct = order.index("correct")
    assert order.index("generate") < order.index("check") < order.index("judge") < first_correct, order
    assert "generate" in order[first_correct + 1:], f"no new generation after the correction: {order}"
    assert order.count("generate") >= 2 and order.count("judge") == order.count("generate"), order

    # --- the final thread state -------------------------------------------------------
    values = out["state"]["values"]
    assert values.get("status") == "passed", f"status={values.get('status')!r} {ctx}"
    assert values.get("stop_reason") == "passed", values.get("stop_reason")
    candidates = values.get("candidates") or []
    assert len(candidates) >= 2, f"expected a failed first try and a corrected one, got {len(candidates)}"
    assert values.get("run_dir") == str(run_dir)
    final = values.get("final")
    assert final and final["id"] == candidates[-1]["id"], (final, [c["id"] for c in candidates])
    ocr = [v for v in values.get("verdicts", []) if v["critic"] == "ocr"]
    assert ocr and not ocr[0]["passed"] and ocr[-1]["passed"], [(v["candidate_id"], v["passed"]) for v in ocr]

    # --- files written by the run -----------------------------------------------------
    image = run_dir / final["image"]["path"]
    assert image.is_file() and image.stat().st_size == final["image"]["bytes"], image
    final_png = run_dir / "final.png"
    assert final_png.is_file()
    delivered_from(final_png, image)
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "passed" and report["stop_reason"] == "passed", report.get("summary")
    assert not (dev_server.cwd / "pixloop-out").exists(), "the run ignored run_dir"

    # --- what Studio draws: GET /assistants/{id}/graph ---------------------------------
    graph = out["graph"]
    node_ids = {n["id"] for n in graph["nodes"]}
    assert set(NODES) <= node_ids, node_ids
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    missing = EDGES - edges
    assert not missing, f"graph edges missing {missing}; got {sorted(edges)}"

    # --- Studio's input form: the input schema is the brief ------------------------------
    input_schema = out["schemas"]["input_schema"]
    assert "brief" in input_schema.get("properties", {}), input_schema
    assert "brief" in input_schema.get("required", []), input_schema


# --- the server trust boundary ------------------------------------------------------------------


async def _run_status(url: str, brief: dict[str, Any], run_dir: str | None = None) -> dict[str, Any]:
    """One run as a remote client; the final thread values."""
    client = langgraph_sdk.get_client(url=url, api_key=None)
    try:
        assistant_id = (await client.assistants.search(graph_id="pixloop"))[0]["assistant_id"]
        thread = await client.threads.create()
        payload: dict[str, Any] = {"brief": brief}
        if run_dir is not None:
            payload["run_dir"] = run_dir
        await asyncio.wait_for(client.runs.wait(thread["thread_id"], assistant_id, input=payload),
                               timeout=RUN_DEADLINE_S)
        return dict((await client.threads.get_state(thread["thread_id"]))["values"])
    finally:
        await client.aclose()


@pytest.mark.slow
def test_a_server_client_cannot_write_outside_the_output_root_or_read_outside_the_input_root(
        dev_server: DevServer, tmp_path: Path) -> None:
    from PIL import Image

    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.png"
    Image.new("RGB", (64, 64), "red").save(secret)
    (tmp_path / "in").mkdir()
    allowed = tmp_path / "in" / "mug.png"
    Image.new("RGB", (64, 64), "blue").save(allowed)
    quick = {"prompt": 'A poster that says "HI"', "budget": {"max_iterations": 1}}

    async def attempts() -> list[dict[str, Any]]:
        url = dev_server.url
        return [
            await _run_status(url, quick, str(outside / "abs")),                    # an absolute run_dir
            await _run_status(url, quick, "../escape"),                             # '..' out of the root
            await _run_status(url, {**quick, "references": [str(secret)]}),          # a file outside the input root
            await _run_status(url, {**quick, "references": ["../outside/secret.png"]}),
            await _run_status(url, {**quick, "thresholds": {"ocrr": 0.9}}),         # an unknown critic
            await _run_status(url, {**quick, "references": ["mug.png"]}),           # inside the input root: fine
        ]

    runs = asyncio.run(attempts())
    for values in runs[:5]:
        assert values["status"] == "failed" and values["stop_reason"] == "bad_input", values.get("error")
    assert "relative path inside the server's output root" in runs[0]["error"]
    assert "without '..'" in runs[1]["error"]
    assert "outside the server's input root" in runs[2]["error"] and "outside" in runs[3]["error"]
    assert "unknown critic(s) ocrr" in runs[4]["error"]
    assert runs[5]["status"] in ("passed", "below_threshold"), runs[5].get("error")
    # nothing was written outside the output root, and every refused run still has its report inside it
    assert sorted(p.name for p in outside.iterdir()) == ["secret.png"]
    assert not (tmp_path / "escape").exists()
    out_root = tmp_path / "out"
    reports = list(out_root.rglob("report.json"))
    assert len(reports) == 6 and all(r.resolve().is_relative_to(out_root.resolve()) for r in reports)
    refused = [json.loads(r.read_text()) for r in reports]
    assert sum(1 for r in refused if r["stop_reason"] == "bad_input") == 5


# --- the document graph: events with stream_mode="custom" ---------------------------------------

STORY_SCRIPT = """# Mia's morning

## Dawn
Mia opens the shop.

![Mia waves outside the bakery; the sign says "OPEN"](image)

## Noon
The bread is ready.

![Mia holds a loaf; the label says "BREAD"](image)
"""


async def _stream_document(url: str, face: str) -> tuple[list[tuple[str, Any]], dict[str, Any], dict[str, Any]]:
    client = langgraph_sdk.get_client(url=url, api_key=None)
    try:
        assistants = await client.assistants.search(graph_id="document")
        assert assistants, "no assistant registered for graph 'document'"
        assistant_id = assistants[0]["assistant_id"]
        graph = await client.assistants.get_graph(assistant_id)
        thread = await client.threads.create()
        parts: list[tuple[str, Any]] = []

        async def consume() -> None:
            async for part in client.runs.stream(
                    thread["thread_id"], assistant_id, stream_mode="custom",
                    input={"script": STORY_SCRIPT, "characters": {"Mia": [face]}, "run_dir": "doc"}):
                parts.append((part.event, part.data))

        await asyncio.wait_for(consume(), timeout=RUN_DEADLINE_S)
        state = await client.threads.get_state(thread["thread_id"])
        return parts, dict(state["values"]), graph
    finally:
        await client.aclose()


@pytest.mark.slow
def test_langgraph_dev_streams_the_document_graphs_events_in_custom_mode(dev_server: DevServer, tmp_path: Path,
                                                                          faces_dir: Path) -> None:
    import base64

    face = "data:image/jpeg;base64," + base64.b64encode((faces_dir / "obama_1.jpg").read_bytes()).decode()
    try:
        parts, values, graph = asyncio.run(_stream_document(dev_server.url, face))
    except Exception as e:
        pytest.fail(f"document run on {dev_server.url} failed: {type(e).__name__}: {e}\n{dev_server.tail()}")
    errors = [data for event, data in parts if event == "error"]
    assert not errors, f"{errors}\n{dev_server.tail(40)}"
    events = [data for event, data in parts if event == "custom"]
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["text", "text"] and kinds[-1] == "done", (kinds, values.get("error"))
    assert kinds.count("image_ready") == 2 and kinds.count("consistency") >= 1
    ready = [e for e in events if e["event"] == "image_ready"]
    assert all(e["status"] == "passed" and e["verdicts"].get("face") for e in ready), ready
    assert values["status"] == "passed", values.get("error")
    doc_dir = tmp_path / "out" / "doc"
    assert (doc_dir / "story.html").is_file() and (doc_dir / "report.json").is_file()
    nodes = {n["id"] for n in graph["nodes"]}
    assert {"plan_document", "image", "collect", "consistency", "finalize_document"} <= nodes, nodes


async def _two_runs_together(url: str) -> list[dict[str, Any]]:
    client = langgraph_sdk.get_client(url=url, api_key=None)
    try:
        assistant_id = (await client.assistants.search(graph_id="pixloop"))[0]["assistant_id"]
        threads = [(await client.threads.create())["thread_id"] for _ in range(2)]
        brief = {"prompt": 'A bold poster that says "OPEN"', "budget": {"max_iterations": 1}}
        context = {"backend": "simulated", "options": {"latency": 1.0, "profile": "clean"}}
        await asyncio.wait_for(asyncio.gather(*(
            client.runs.wait(t, assistant_id, input={"brief": brief, "run_dir": f"together-{k}"}, context=context)
            for k, t in enumerate(threads))), timeout=RUN_DEADLINE_S)
        return [dict((await client.threads.get_state(t))["values"]) for t in threads]
    finally:
        await client.aclose()


@pytest.mark.slow
def test_two_runs_started_together_on_one_dev_server_run_at_the_same_time(dev_server: DevServer,
                                                                          tmp_path: Path) -> None:
    values = asyncio.run(_two_runs_together(dev_server.url))

    assert [v.get("status") for v in values] == ["passed", "passed"], [v.get("error") for v in values]
    spans = []
    for k in range(2):  # each run's first and last event (wall clock), from its own events.jsonl
        times = [json.loads(line)["t"] for line in (tmp_path / "out" / f"together-{k}" / "events.jsonl").open()]
        spans.append((min(times), max(times)))
    (start_a, end_a), (start_b, end_b) = spans
    assert max(start_a, start_b) < min(end_a, end_b), f"the runs did not overlap: {spans}\n{dev_server.tail(20)}"
