"""Time to the first image and to the whole document, serial vs bounded concurrency.

A document of N sections, each one image with a required word, on the `simulated` backend with a fixed latency per
image (a remote model's wait; `profile=clean`, so every image passes on its first candidate and only the
orchestration differs). For 4 and 8 images and concurrency 1, 2 and 4, it reports from the streamed events: the
time to the first text, to the first `image_ready`, and to `done`, and the speed-up of the whole document over
serial. Every configuration runs in this one process, alternating, so the ratios are comparable on a noisy machine.

    python bench/document.py [--latency 2.0] [--repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
sys.path.append(str(_BENCH))

from _machine import machine  # noqa: E402

from agent.interfaces.story import astream_story  # noqa: E402
from agent.models import PixloopConfig  # noqa: E402

WORDS = ["OPEN", "BREAD", "CAKE", "MILK", "TEA", "JAM", "PIE", "BUNS", "RYE", "HONEY"]


def script(n: int, folder: Path) -> Path:
    path = folder / f"signs-{n}.md"
    path.write_text("# Signs\n\n" + "".join(f"## Page {k + 1}\nThe shop, page {k + 1}.\n\n"
                                             f'![A shop sign that says "{WORDS[k % len(WORDS)]}"](image)\n\n'
                                             for k in range(n)))
    return path


async def one(n: int, concurrency: int, latency: float, folder: Path, tag: str) -> dict[str, float]:
    config = PixloopConfig(backend="simulated", options={"profile": "clean", "latency": latency})
    t0 = time.perf_counter()
    marks: dict[str, float] = {}
    async for event in astream_story(script(n, folder), config, out=folder / tag, thread_id=tag,
                                     concurrency=concurrency, max_rounds=1):
        now = time.perf_counter() - t0
        if event.event == "text":
            marks.setdefault("first_text", now)
        elif event.event == "image_ready":
            marks.setdefault("first_image", now)
            if event.status != "passed":
                raise SystemExit(f"image {event.image} did not pass: the bench assumes clean images")
        elif event.event == "done":
            marks["done"] = now
    return marks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=2.0, help="seconds per image (default 2.0)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per configuration, median reported (default 2)")
    args = ap.parse_args()
    print(machine())
    print(f"simulated backend, clean profile, {args.latency:g} s latency per image; median of {args.repeats}\n")
    configs = [(n, c) for n in (4, 8) for c in (1, 2, 4)]
    runs: dict[tuple[int, int], list[dict[str, float]]] = {k: [] for k in configs}
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(one(1, 1, 0.0, Path(tmp), "warm-up"))  # models load once per process: not part of any figure
        for r in range(args.repeats):
            for n, c in configs:
                runs[(n, c)].append(asyncio.run(one(n, c, args.latency, Path(tmp), f"d{n}-c{c}-r{r}")))
    print(f"{'images':>6} {'concurrency':>11} {'first text s':>12} {'first image s':>13} {'document s':>10} "
          f"{'speed-up':>8} {'first image / document':>22}")
    for n, c in configs:
        med = {k: statistics.median(m[k] for m in runs[(n, c)]) for k in ("first_text", "first_image", "done")}
        serial = statistics.median(m["done"] for m in runs[(n, 1)])
        print(f"{n:>6} {c:>11} {med['first_text']:>12.3f} {med['first_image']:>13.2f} {med['done']:>10.2f} "
              f"{serial / med['done']:>7.2f}x {med['first_image'] / med['done']:>22.2f}")


if __name__ == "__main__":
    main()
