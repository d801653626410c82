"""Batch throughput: what loading the models once and overlapping backend waits buy.

Part 1, N poster jobs (default 32) on the offline `compose` backend, three ways in this one run (so the ratios
are comparable on a noisy machine): `pixloop run` once per job (a new process each time: imports and models
every time), `pixloop batch --concurrency 1` and `--concurrency 2` (one process: models load once). Printed:
jobs per minute, the speed-up over separate processes, and each batch process's peak resident memory (its own
ru_maxrss, from wait4).

Part 2, against the loopback fake Gemini server with L seconds of latency per image (default 2): batches of
4 x C one-iteration jobs at concurrency C = 1, 4, 16. A batch's rate is its jobs over the span from the first
job's first event to the last job's last event (process start-up excluded: it is part 1's subject); the fraction
of the ideal rate is that over C times the rate at concurrency 1. Printed beside it: the CPU seconds per job of
the batch process (wait4) and of the fake server (/proc), and the rate those allow on this machine's cores, which
bounds what any concurrency can reach.
The fake server renders on the same cores as the critics, so at high concurrency this machine's two cores are
shared by 16 jobs' OCR and the server's PNG encoding.

    python bench/batch.py [--jobs 32] [--latency 2] [--skip-separate]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
sys.path.append(str(_BENCH))

from _machine import machine  # noqa: E402
from backends import start_server  # noqa: E402

PIXLOOP = [sys.executable, "-m", "agent.interfaces.cli"]
WORDS = ["OPEN", "SALE", "FRESH", "HELLO", "WELCOME", "BREAD", "CAKE", "TEA", "JAM", "MILK"]


def prompts(n: int) -> list[str]:
    return [f'A bold poster that says "{WORDS[i % len(WORDS)]}"' for i in range(n)]


def separate(n: int, folder: Path) -> float:
    t0 = time.perf_counter()
    for i, prompt in enumerate(prompts(n)):
        subprocess.run([*PIXLOOP, "run", prompt, "--out", str(folder / f"run-{i}"), "-q", "-n", "2"],
                       check=True, capture_output=True)
    return time.perf_counter() - t0


def batch(n: int, folder: Path, concurrency: int, *extra: str, env: dict[str, str] | None = None,
          fields: dict[str, object] | None = None) -> tuple[float, float, float]:
    """Wall seconds, the batch process's own peak RSS in MB, and its CPU seconds (user + system)."""
    jobs = folder / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps({"id": f"job-{i}", "prompt": p, "max_iterations": 2, **(fields or {})})
                              for i, p in enumerate(prompts(n))) + "\n")
    t0 = time.perf_counter()
    proc = subprocess.Popen([*PIXLOOP, "batch", str(jobs), "--out", str(folder / "out"), "-q", "--concurrency",
                             str(concurrency), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise SystemExit(f"batch failed ({status}): {proc.stderr.read().decode() if proc.stderr else ''}")
    return took, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def event_span(out: Path) -> float:
    """Seconds from the first job's first event to the last job's last event."""
    times = [json.loads(line)["t"] for f in out.glob("*/events.jsonl") for line in f.open()]
    return max(times) - min(times)


def compose_part(args: argparse.Namespace, tmp: Path) -> None:
    ways = ([] if args.skip_separate else ["separate"]) + ["batch -j1", "batch -j2"]
    times: dict[str, float] = {}
    peaks: dict[str, float] = {}
    for way in ways:
        folder = tmp / way.replace(" ", "")
        folder.mkdir(parents=True)
        if way == "separate":
            times[way] = separate(args.jobs, folder)
        else:
            times[way], peaks[way], _ = batch(args.jobs, folder, 1 if way.endswith("1") else 2)
    base = times.get("separate")
    print(f"\n{args.jobs} poster jobs on compose (at most 2 iterations each)")
    print(f"{'way':<12} {'whole set s':>11} {'jobs/min':>9} {'vs separate':>11} {'peak MB':>8}")
    for way, took in times.items():
        ratio = f"{base / took:.2f}x" if base else "-"
        peak = f"{peaks[way]:.0f}" if way in peaks else "-"
        print(f"{way:<12} {took:>11.2f} {60 * args.jobs / took:>9.1f} {ratio:>11} {peak:>8}")


def gemini_part(args: argparse.Namespace, tmp: Path) -> None:
    proc, url = start_server("gemini", args.latency)
    env = {"GEMINI_API_KEY": "bench-key"}
    cores = os.cpu_count() or 1
    print(f"\nfake Gemini, {args.latency:g} s per image: batches of 4 x C jobs, every critic the plan enables. "
          "'of ideal': the rate over C times the rate at concurrency 1; 'CPU/job': the batch's and the fake "
          f"server's CPU seconds per job; 'CPU ceiling': {cores} cores over that, in jobs/min")
    print(f"{'concurrency':>11} {'jobs':>4} {'span s':>7} {'jobs/min':>8} {'of ideal':>8} {'CPU/job':>12} "
          f"{'CPU ceiling':>11} {'peak MB':>8}")
    single = 0.0
    try:
        for concurrency in (1, 4, 16):
            n = 4 * concurrency
            folder = tmp / f"gemini-{concurrency}"
            folder.mkdir(parents=True)
            server_cpu = cpu_seconds(proc.pid)
            _, peak, cpu = batch(n, folder, concurrency, "--backend", "gemini", "--base-url", url, env=env,
                                 fields={"max_iterations": 1})
            server_cpu = cpu_seconds(proc.pid) - server_cpu
            rate = n / event_span(folder / "out")  # jobs per second
            single = single or rate
            per_job = (cpu + server_cpu) / n
            print(f"{concurrency:>11} {n:>4} {n / rate:>7.2f} {60 * rate:>8.1f} {rate / (concurrency * single):>8.0%} "
                  f"{cpu / n:>5.2f}+{server_cpu / n:<5.2f}s {60 * cores / per_job:>11.1f} {peak:>8.0f}")
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=32, help="poster jobs in part 1 (default 32)")
    ap.add_argument("--latency", type=float, default=2.0, help="the fake Gemini server's seconds per image")
    ap.add_argument("--skip-separate", action="store_true", help="part 1 without the process-per-job way")
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        compose_part(args, Path(tmp))
        gemini_part(args, Path(tmp))


if __name__ == "__main__":
    main()
