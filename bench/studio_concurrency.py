"""Concurrent runs on one `langgraph dev` server: do four runs started together run together?

`langgraph dev` takes `--n-jobs-per-worker` ("Default: 10" says its --help), but when the flag is not given
the CLI passes None and the API server turns None into N_JOBS_PER_WORKER=1: one run at a time, every other
run queued. langgraph.json's "env" cannot change it (the server's own settings win over loaded variables).

This bench starts the server twice in this one run (with no flag, then with `--n-jobs-per-worker 4`), starts
four pixloop runs together on separate threads, and prints when each finished (seconds from the common
start). Two workloads: the `simulated` backend with 2 s of latency per image (a remote model: the runs wait)
and the offline `compose` backend (CPU-bound: on 2 cores four runs cannot beat two at a time).

    python bench/studio_concurrency.py [--runs 4] [--latency 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
sys.path.append(str(_BENCH))

from _machine import machine  # noqa: E402

REPO = _BENCH.parent
LANGGRAPH = Path(sys.executable).parent / "langgraph"
RUNNING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def start_server(folder: Path, jobs: int | None) -> tuple[subprocess.Popen[str], str]:
    config = json.loads((REPO / "langgraph.json").read_text())
    config["graphs"] = {k: str(REPO / v.lstrip("./").split(":")[0]) + ":" + v.split(":")[1]
                        for k, v in config["graphs"].items()}
    config["dependencies"] = [str(REPO)]
    (folder / "langgraph.json").write_text(json.dumps(config))
    cmd = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", "0",
           "--server-log-level", "info", "--config", str(folder / "langgraph.json")]
    if jobs is not None:
        cmd += ["--n-jobs-per-worker", str(jobs)]
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false", "NO_COLOR": "1",
           "PYTHONUNBUFFERED": "1", "PIXLOOP_OUTPUT_ROOT": str(folder / "out")}
    proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ANSI.sub("", ln)) for ln in proc.stdout or []], daemon=True).start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            m = RUNNING.search(lines.get(timeout=1))
        except queue.Empty:
            continue
        if m:
            return proc, m.group(1)
    proc.kill()
    raise SystemExit("langgraph dev did not start within 120 s")


def stop(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


async def run_together(url: str, n: int, context: dict[str, object], tag: str) -> list[float]:
    from langgraph_sdk import get_client

    client = get_client(url=url, api_key=None)
    assistant = (await client.assistants.search(graph_id="pixloop"))[0]["assistant_id"]
    threads = [(await client.threads.create())["thread_id"] for _ in range(n)]
    brief = {"prompt": 'A bold poster that says "OPEN"', "budget": {"max_iterations": 1}, "size": "1K"}
    t0 = time.perf_counter()

    async def one(k: int) -> float:
        await client.runs.wait(threads[k], assistant, input={"brief": brief, "run_dir": f"{tag}-{k}"},
                               context=context)
        return time.perf_counter() - t0

    done = await asyncio.gather(*(one(k) for k in range(n)))
    await client.aclose()
    return sorted(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--latency", type=float, default=2.0)
    args = parser.parse_args()
    print(machine())
    workloads = {f"simulated, {args.latency:g} s latency": {"backend": "simulated",
                                                            "options": {"latency": args.latency, "profile": "clean"}},
                 "compose (CPU-bound)": {"backend": "compose"}}
    print(f"{args.runs} runs started together on one langgraph dev server; finish times in s from the start")
    for jobs in (None, args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            proc, url = start_server(Path(tmp), jobs)
            try:
                asyncio.run(run_together(url, 1, workloads["compose (CPU-bound)"], "warm"))  # load models once
                for name, context in workloads.items():
                    done = asyncio.run(run_together(url, args.runs, context, name.split()[0]))
                    flag = "(no flag: 1 job)" if jobs is None else f"--n-jobs-per-worker {jobs}"
                    print(f"  {flag:<24} {name:<28} " + "  ".join(f"{t:5.1f}" for t in done)
                          + f"   last/first {done[-1] / done[0]:.2f}")
            finally:
                stop(proc)


if __name__ == "__main__":
    main()
