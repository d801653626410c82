"""One batch process vs one process per job: what loading the models once and overlapping backend waits buys.

N poster jobs on the offline `compose` backend (every critic's model is loaded by the first job that needs it),
run three ways in this one run, alternating so the ratios are comparable on a noisy machine:

1. `pixloop run` once per job, one after another (a new process each time: imports and models every time);
2. `pixloop batch` with --concurrency 1 (one process: models load once);
3. `pixloop batch` with --concurrency 2.

It prints wall time per job and for the whole set, and the peak resident memory of the batch process
(`/usr/bin/time -v` when present, else the children's ru_maxrss).

    python bench/batch.py [--jobs 8]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
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


def batch(n: int, folder: Path, concurrency: int) -> tuple[float, float]:
    jobs = folder / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps({"id": f"job-{i}", "prompt": p, "max_iterations": 2})
                              for i, p in enumerate(prompts(n))) + "\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run([*PIXLOOP, "batch", str(jobs), "--out", str(folder / "out"), "-q", "--concurrency",
                    str(concurrency)], check=True, capture_output=True)
    took = time.perf_counter() - t0
    peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return took, peak_mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=8, help="poster jobs per way (default 8)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per way, median reported (default 2)")
    args = ap.parse_args()
    print(machine())
    runs: dict[str, list[float]] = {"separate": [], "batch -j1": [], "batch -j2": []}
    peaks: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            base = Path(tmp) / f"r{r}"
            for way in runs:
                folder = base / way.replace(" ", "")
                folder.mkdir(parents=True)
                if way == "separate":
                    runs[way].append(separate(args.jobs, folder))
                else:
                    took, peak = batch(args.jobs, folder, 1 if way.endswith("1") else 2)
                    runs[way].append(took)
                    peaks.append(peak)
    serial = statistics.median(runs["separate"])
    print(f"\n{args.jobs} poster jobs (compose, at most 2 iterations each), median of {args.repeats}")
    print(f"{'way':<12} {'whole set s':>11} {'per job s':>9} {'vs separate':>11}")
    for way, times in runs.items():
        med = statistics.median(times)
        print(f"{way:<12} {med:>11.2f} {med / args.jobs:>9.2f} {serial / med:>10.2f}x")
    print(f"peak memory of the largest child process so far: {max(peaks):.0f} MB")


if __name__ == "__main__":
    main()
