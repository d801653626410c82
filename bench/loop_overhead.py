"""Orchestration overhead per loop iteration: wall time minus backend and critic time (target < 5 ms).

Two runs in one process so the ratio is comparable on a noisy machine:
  1. instant doubles (a backend returning a stored 64x64 image, a critic that always fails) —
     what LangGraph, the SQLite checkpointer (durability "sync") and the artifact store cost;
  2. the real loop (compose backend + rapidocr critic) at 1K, with the same breakdown.

    python bench/loop_overhead.py [--iterations 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# bench/ goes after the repo root: bench/critics.py must not shadow the critics package
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
sys.path.append(str(_BENCH))

from _machine import machine  # noqa: E402
from PIL import Image  # noqa: E402

from agent import generate  # noqa: E402
from agent.backends import Capabilities, GenerationResult, register_backend  # noqa: E402
from agent.models import (
    PixloopConfig,  # noqa: E402
    Verdict,  # noqa: E402
)
from critics import CriticInfo, register_critic, unregister_critic  # noqa: E402


class InstantBackend:
    name = "instant"
    capabilities = Capabilities(cost_per_image=0.0, deterministic=True)

    def __init__(self) -> None:
        self.seconds = 0.0

    async def generate(self, request, store):
        t0 = time.perf_counter()
        img = Image.new("RGB", (64, 64), (request.seed * 7 % 255, 40, 90))
        self.seconds += time.perf_counter() - t0
        return GenerationResult(image=img, cost=0.0)


class AlwaysFails:
    name = "always_fails"
    info = CriticInfo(threshold=0.5, threshold_source="a bench double: it fails every image")

    def applies(self, plan) -> bool:
        return True

    def check(self, image, plan, context) -> Verdict:
        t = plan.checks[self.name].threshold
        return Verdict(critic=self.name, candidate_id=context.candidate_id, score=0.1, passed=False, threshold=t,
                       feedback="never good enough")


def run(label: str, iterations: int, repeats: int = 3, **kwargs) -> None:
    """Median over repeats of one run each; a 2-iteration warm-up first (imports, thread pool, compile)."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(out=Path(tmp) / "warm", max_iterations=2, patience=3, **kwargs)
        rows = []
        for i in range(repeats):
            t0 = time.perf_counter()
            result = generate(out=Path(tmp) / f"run{i}", max_iterations=iterations, patience=iterations + 1, **kwargs)
            wall = time.perf_counter() - t0
            t = result.report["timings"]
            n = result.iterations
            backend, critics = t.get("backend", 0.0), t.get("critics", 0.0)
            rows.append(((wall - backend - critics) / n, wall, backend / n, critics / n, n))
    overhead, wall, backend, critics, n = sorted(rows)[len(rows) // 2]
    print(f"{label:<34} {n:>5} {wall:>8.2f} {backend * 1000:>10.1f} {critics * 1000:>10.1f} "
          f"{overhead * 1000:>12.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=40)
    args = ap.parse_args()
    print(machine())
    register_backend("instant", lambda config: InstantBackend())
    register_critic("always_fails", AlwaysFails)
    print(f"{'run':<34} {'iters':>5} {'wall s':>8} {'backend ms':>10} {'critics ms':>10} {'overhead ms':>12}")
    run("instant doubles, 1 critic branch", args.iterations, prompt="bench", thresholds={"always_fails": 0.5},
        config=PixloopConfig(backend="instant", critics=["always_fails"]))
    run("instant doubles, 3 critic branches", args.iterations, prompt="bench", backend="instant",
        thresholds={"always_fails": 0.5})
    unregister_critic("always_fails")
    run("compose + rapidocr, 1K", min(args.iterations, 6), prompt='A poster that says "你好世界"')
    print("overhead = (wall - backend - critics) / iterations, median of 3 warm runs; it includes planning,\n"
          "SQLite checkpoint writes (durability sync), PNG encoding, artifact and event-log writes, the graph runtime")


if __name__ == "__main__":
    main()
