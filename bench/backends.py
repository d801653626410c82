"""HTTP backend client overhead and throughput against a fake server (target >= 90% of ideal).

The fake server runs in its own process (`pixloop fake-server KIND --latency L`) so it does not
share the client's GIL. For each backend:
  - client overhead per request: wall time per sequential request with no server latency,
    minus nothing — the whole loopback round trip including encoding, base64 and PNG decoding;
  - throughput at concurrency 1, 4 and 16 with a fixed server-side latency L: achieved
    requests/s against the ideal concurrency / L.

Real image APIs answer in 2-120 s; L = 1 s is already faster than any of them. A 0.25 s row is
also printed as a stress test: there the client must decode 64 PNGs of 1024x1024 a second while
the fake server encodes them on the same 2 cores, so it measures the machine, not the client.

    python bench/backends.py [--latency 1.0,0.25] [--requests 48] [--kinds gemini,openai]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# bench/ goes after the repo root: bench/critics.py must not shadow the critics package
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
sys.path.append(str(_BENCH))

from _machine import machine  # noqa: E402

from agent.backends import GenerationRequest, get_backend  # noqa: E402
from agent.models import (  # noqa: E402
    Box,
    PixloopConfig,  # noqa: E402
    Plan,
    TextElement,
)
from agent.runtime.store import ArtifactStore  # noqa: E402

PROMPT = 'A poster that says "BENCH"'


def start_server(kind: str, latency: float) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "agent.interfaces.cli", "fake-server", kind, "--latency", str(latency)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if m:
            return proc, m.group(1)
    raise RuntimeError(f"fake {kind} server did not start")


def plan() -> Plan:
    return Plan(prompt=PROMPT, width=1024, height=1024, aspect_ratio="1:1", size="1K",
                text=[TextElement(id="headline", content="BENCH", region=Box(x=.1, y=.3, w=.8, h=.4))])


async def burst(backend, store, n: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)
    req = GenerationRequest(plan=plan(), seed=0, prompt=PROMPT)

    async def one() -> None:
        async with sem:
            await backend.generate(req, store)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - t0


def bench_kind(kind: str, latencies: list[float], n: int, store: ArtifactStore) -> None:
    base = "/v1" if kind == "openai" else ""
    options = {"max_concurrency": 16, "max_attempts": 1}
    for lat, label in [(0.0, "overhead")] + [(latency, "throughput") for latency in latencies]:
        latency = lat
        proc, url = start_server(kind, lat)
        try:
            backend = get_backend(kind, PixloopConfig(backend=kind, base_url=url + base, options=options))

            async def run(backend: Any = backend, label: str = label, latency: float = latency) -> None:
                await burst(backend, store, 4, 4)  # warm-up: connections, first render is cached server-side
                if label == "overhead":
                    times = []
                    for _ in range(12):
                        times.append(await burst(backend, store, 1, 1))
                    print(f"{kind:<8} client overhead per request (no server latency): "
                          f"{statistics.median(times) * 1000:.1f} ms median, 1024x1024 PNG round trip")
                    return
                for c in (1, 4, 16):
                    count = max(c * 3, n if c > 1 else 8)
                    wall = await burst(backend, store, count, c)
                    rate, ideal = count / wall, c / latency
                    print(f"{kind:<8} concurrency {c:>2}: {rate:6.1f} req/s, ideal {ideal:6.1f} "
                          f"({rate / ideal:6.1%} of ideal, latency {latency:.2f} s)")

            asyncio.run(run())
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", default="1.0,0.25", help="comma-separated server latencies in seconds")
    ap.add_argument("--requests", type=int, default=48)
    ap.add_argument("--kinds", default="gemini,openai")
    args = ap.parse_args()
    print(machine())
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(tmp)
        for kind in args.kinds.split(","):
            bench_kind(kind.strip(), [float(x) for x in args.latency.split(",")], args.requests, store)


if __name__ == "__main__":
    main()
