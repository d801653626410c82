"""The structure critic on generated sketch/mockup pairs: does a mockup that follows a sketch pass, in any style,
and does one whose layout drifted fail?

Sketches and mockups come from the generator of tests/integration/test_structure_critic.py (hand-like wobbly
strokes on paper; mockups with flat blocks, dark mode, cards with photo-like panels, a photo-style page with
text set without plates). 3 layouts x 4 styles x 2 sketch seeds. Positives: the mockup as drawn, and shifted
2-4% / scaled 0.96-1.04 as a whole. Negatives: one box moved 15-30% of the canvas (each box, a random
direction), two blocks swapped, one box missing, and the other layouts (unrelated). "Extra" (a block added where
the sketch has none) is reported apart: the critic checks the sketch's boxes and strokes, so an added block
lowers only the edge precision.

Printed: pass rate per case, accuracy and ROC AUC (positives vs the drifted negatives), the score ranges, and
seconds per check at 1024x1024.

    python bench/structure.py
"""

from __future__ import annotations

import importlib.util
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
ROOT = _BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]  # bench/critics.py is not `critics`
sys.path.insert(0, str(ROOT))
sys.path.append(str(_BENCH))

from _machine import machine  # noqa: E402

from agent.models import Box, Plan, TextElement  # noqa: E402
from agent.runtime.store import ArtifactStore  # noqa: E402
from critics.base import CheckContext  # noqa: E402
from critics.structure import StructureCritic  # noqa: E402

_spec = importlib.util.spec_from_file_location("structure_fixtures",
                                               ROOT / "tests" / "integration" / "test_structure_critic.py")
assert _spec is not None and _spec.loader is not None
gen = importlib.util.module_from_spec(_spec)
sys.modules["structure_fixtures"] = gen
_spec.loader.exec_module(gen)


def auc(pos: list[float], neg: list[float]) -> float:
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / max(1, len(pos) * len(neg))


def swap(layout, rng: random.Random):
    pairs = [(i, j) for i in range(len(layout)) for j in range(i + 1, len(layout))
             if abs(layout[i].w - layout[j].w) > 0.1 or abs(layout[i].h - layout[j].h) > 0.1]  # not twins
    i, j = rng.choice(pairs)
    a, b = layout[i], layout[j]
    out = list(layout)
    out[i] = replace(a, x=min(b.x, 0.98 - a.w), y=min(b.y, 0.98 - a.h))
    out[j] = replace(b, x=min(a.x, 0.98 - b.w), y=min(a.y, 0.98 - b.h))
    return out


def moved(layout, k: int, rng: random.Random):
    import math

    for _ in range(50):
        dist = rng.uniform(0.15, 0.30)
        angle = rng.choice([0, 90, 180, 270, 45, 135, 225, 315])
        dx, dy = dist * math.cos(math.radians(angle)), dist * math.sin(math.radians(angle))
        r = layout[k].moved(dx, dy)
        if math.hypot(r.x - layout[k].x, r.y - layout[k].y) >= 0.14:
            return [r if i == k else q for i, q in enumerate(layout)]
    return None


def extra(layout):
    return [*layout, gen.Region("panel", 0.70, 0.86, 0.25, 0.10)]


def main() -> None:
    critic = StructureCritic()
    rng = random.Random(7)
    rows: dict[str, list[float]] = {}
    passed: dict[str, list[bool]] = {}
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(Path(tmp) / "run")
        for name, layout in gen.LAYOUTS.items():
            for seed in (0, 1):
                ref = store.put_image(gen.sketch(layout, seed=seed))
                text = [TextElement(id=f"t{i}", content=r.text, region=Box(x=r.x, y=r.y, w=r.w, h=r.h))
                        for i, r in enumerate(layout) if r.kind == "headline"]
                plan = Plan(prompt="mockup", width=1024, height=1024, aspect_ratio="1:1", size="1K", text=text)
                plan = plan.model_copy(update={"sketch": ref})
                ctx = CheckContext(candidate_id="c", store=store)

                def run(case: str, im) -> None:
                    t0 = time.perf_counter()
                    v = critic.check(im, plan, ctx)  # noqa: B023 - run at once
                    times.append(time.perf_counter() - t0)
                    rows.setdefault(case, []).append(v.score)
                    passed.setdefault(case, []).append(v.passed)

                for style in gen.STYLES:
                    s2 = seed * 10 + len(style)
                    run("follows", gen.mockup(layout, style, seed=s2))
                    dx, dy = rng.choice([-1, 1]) * rng.uniform(0.02, 0.04), rng.choice([-1, 1]) * rng.uniform(0, 0.03)
                    run("follows, shifted 2-4% / scaled", gen.shifted(gen.mockup(layout, style, seed=s2), dx, dy,
                                                                      rng.uniform(0.96, 1.04)))
                    for k in range(len(layout)):
                        m = moved(layout, k, rng)
                        if m is not None:
                            run("one box moved 15-30%", gen.mockup(m, style, seed=s2))
                    run("two blocks swapped", gen.mockup(swap(layout, rng), style, seed=s2))
                    k = rng.randrange(len(layout))
                    run("one box missing", gen.mockup([r for i, r in enumerate(layout) if i != k], style, seed=s2))
                    for other, lay2 in gen.LAYOUTS.items():
                        if other != name:
                            run("unrelated layout", gen.mockup(lay2, style, seed=s2))
                    run("extra block (reported apart)", gen.mockup(extra(layout), style, seed=s2))

    print(machine())
    print(f"{'case':34} {'n':>4} {'pass':>6} {'score min':>9} {'median':>7} {'max':>6}")
    for case, scores in rows.items():
        p = passed[case]
        print(f"{case:34} {len(p):4d} {sum(p) / len(p):6.0%} {min(scores):9.3f} {statistics.median(scores):7.3f} "
              f"{max(scores):6.3f}")
    pos = rows["follows"] + rows["follows, shifted 2-4% / scaled"]
    neg_cases = ["one box moved 15-30%", "two blocks swapped", "one box missing", "unrelated layout"]
    neg = [s for c in neg_cases for s in rows[c]]
    ok = sum(s >= 0.5 for s in pos) + sum(s < 0.5 for s in neg)
    drift = [s for c in neg_cases[:3] for s in rows[c]]
    print(f"accuracy {ok / (len(pos) + len(neg)):.1%} ({ok}/{len(pos) + len(neg)}), ROC AUC {auc(pos, neg):.3f}, "
          f"false pass on drifted layouts {sum(s >= 0.5 for s in drift) / len(drift):.1%} "
          f"({sum(s >= 0.5 for s in drift)}/{len(drift)}), on unrelated "
          f"{sum(s >= 0.5 for s in rows['unrelated layout'])}/{len(rows['unrelated layout'])}")
    times.sort()
    print(f"seconds per check at 1024x1024: median {statistics.median(times):.3f}, "
          f"p90 {times[int(0.9 * len(times))]:.3f}, max {times[-1]:.3f}")


if __name__ == "__main__":
    main()
