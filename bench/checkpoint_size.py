"""Checkpoint bytes per iteration of the loop (target: under 20 KB per iteration at 2K output).

Runs a brief that cannot pass (its text has no glyphs in the shipped fonts) for N iterations
at the requested size, then reads every checkpoint and pending write back from SQLite and
attributes its bytes to the loop iteration it belongs to.

    python bench/checkpoint_size.py [--size 2K] [--iterations 6]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

# bench/ goes after the repo root: bench/critics.py must not shadow the critics package
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
sys.path.append(str(_BENCH))

from _machine import machine  # noqa: E402

from agent import generate  # noqa: E402
from agent.interfaces.api import CHECKPOINT_DB  # noqa: E402
from agent.runtime.checkpoint import MSGPACK_ALLOWLIST, CompressedSerializer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="2K", choices=["1K", "2K", "4K"])
    ap.add_argument("--iterations", type=int, default=6)
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        # required text far too long to fit: no correction passes it, so the run uses every iteration
        # (the CJK prompt this bench used before is read correctly since CJK fonts ship, and passed at once)
        unfittable = 'A poster that says "' + " ".join(f"WORD{i}" for i in range(120)) + '"'
        result = generate(unfittable, size=args.size, aspect="16:9",
                          out=Path(tmp) / "run", max_iterations=args.iterations, patience=args.iterations + 1)
        serde = CompressedSerializer(allowed_msgpack_modules=MSGPACK_ALLOWLIST)
        db = sqlite3.connect(result.run_dir / CHECKPOINT_DB)
        per_iter: dict[int, int] = defaultdict(int)
        checkpoints: dict[int, int] = defaultdict(int)
        iteration_of: dict[str, int] = {}
        for cid, type_, blob in db.execute("select checkpoint_id, type, checkpoint from checkpoints order by checkpoint_id"):
            cp = serde.loads_typed((type_, blob))
            it = int(cp.get("channel_values", {}).get("iteration", 0) or 0)
            iteration_of[cid] = it
            per_iter[it] += len(blob)
            checkpoints[it] += 1
        for cid, value in db.execute("select checkpoint_id, value from writes"):
            per_iter[iteration_of.get(cid, 0)] += len(value or b"")
        db_bytes = (result.run_dir / CHECKPOINT_DB).stat().st_size
        image_bytes = result.report["candidates"][0]
    print(f"run: {args.iterations} iterations at {args.size} 16:9 "
          f"({image_bytes['width']}x{image_bytes['height']}), status {result.status}")
    print(f"{'iteration':>9} {'checkpoints':>11} {'bytes':>9}")
    for it in sorted(per_iter):
        print(f"{it:>9} {checkpoints[it]:>11} {per_iter[it]:>9,}")
    loop_iters = [per_iter[i] for i in per_iter if i >= 1]
    print(f"mean bytes per iteration: {sum(loop_iters) / len(loop_iters):,.0f} "
          f"(max {max(loop_iters):,}; target < 20,000); sqlite file {db_bytes:,} bytes")


if __name__ == "__main__":
    main()
