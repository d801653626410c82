"""Per-critic latency on a 1024x1024 image, and the wall time of all critics in parallel.

Targets on a 2-core machine: OCR <= 0.6 s, face <= 0.15 s per face, artifacts <= 0.25 s,
all in parallel <= 1.2 x the slowest. Each critic is warmed up first (models load once per
process); figures are medians over --repeats runs. The OCR critic is also timed against the way it
read before (rapidocr's own pipeline in one call, detector input sized by the image), the two
interleaved so that a noisy machine slows both alike.

    python bench/critics.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# this file is named like the `critics` package: keep bench/ behind the repo root on sys.path
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
sys.path.append(str(_BENCH))

from _machine import machine  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from agent.backends.compose import render  # noqa: E402
from agent.models import Box, Plan, Style, Subject, TextElement  # noqa: E402
from agent.runtime.store import ArtifactStore  # noqa: E402
from critics import CheckContext, checks_for, critic_names, get_critic  # noqa: E402

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


def scene(store: ArtifactStore) -> tuple[Image.Image, Plan, CheckContext]:
    """A 1024x1024 poster with a headline and one reference person, plus an edit original and mask."""
    refs = []
    if (FACES / "obama_1.jpg").exists():
        refs.append(store.put_file(FACES / "obama_1.jpg"))
    plan = Plan(prompt="poster", width=1024, height=1024, aspect_ratio="1:1", size="1K",
                text=[TextElement(id="headline", content="GRAND OPENING", region=Box(x=.06, y=.04, w=.88, h=.22))],
                subjects=[Subject(id="person1", kind="person", reference=r, region=Box(x=.2, y=.32, w=.6, h=.6))
                          for r in refs],
                style=Style(background="gradient", font="lato-black", text_plate=True))
    if refs and (FACES / "obama_2.jpg").exists():
        plan.subjects[0] = plan.subjects[0].model_copy(update={"reference": store.put_file(FACES / "obama_2.jpg")})
    image, _ = render(plan, 0, store)
    original = image.copy()
    ImageDraw.Draw(image).rectangle((700, 700, 900, 900), fill=(200, 40, 40))
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).rectangle((680, 680, 920, 920), fill=255)
    plan.source, plan.mask = store.put_image(original), store.put_image(mask)
    if refs:
        plan.subjects[0] = plan.subjects[0].model_copy(update={"reference": refs[0]})
    plan.checks = checks_for(plan, {})
    ctx = CheckContext(candidate_id="bench", store=store, references=refs, original=plan.source, mask=plan.mask)
    return image, plan, ctx


def ocr_before_after(image: Image.Image, plan: Plan, ctx: CheckContext, critic, repeats: int) -> None:
    """Median seconds of the OCR critic now and as it was (bench/real_text.py `legacy_critic`), interleaved."""
    from real_text import legacy_critic

    before = legacy_critic()
    before.check(image, plan, ctx)
    t_before, t_after = [], []
    for _ in range(max(3, repeats)):
        t0 = time.perf_counter()
        v_before = before.check(image, plan, ctx)
        t_before.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        v_after = critic.check(image, plan, ctx)
        t_after.append(time.perf_counter() - t0)
    print(f"ocr before (rapidocr pipeline, one call) {statistics.median(t_before):.3f} s, score {v_before.score:.2f}; "
          f"now {statistics.median(t_after):.3f} s, score {v_after.score:.2f}, passes {v_after.evidence.get('passes')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(tmp)
        image, plan, ctx = scene(store)
        names = [n for n in critic_names() if n in plan.checks]
        skipped = sorted(set(critic_names()) - set(names))
        print(f"image {image.width}x{image.height}; critics {', '.join(names)}"
              + (f" (not applicable/configured: {', '.join(skipped)})" if skipped else ""))
        critics = {n: get_critic(n) for n in names}
        for c in critics.values():
            c.check(image, plan, ctx)  # warm-up: load models
        per: dict[str, float] = {}
        verdicts = {}
        for n, c in critics.items():
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                verdicts[n] = c.check(image, plan, ctx)
                times.append(time.perf_counter() - t0)
            per[n] = statistics.median(times)
        walls = []
        with ThreadPoolExecutor(max_workers=len(critics)) as pool:
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                list(pool.map(lambda n: critics[n].check(image, plan, ctx), names))
                walls.append(time.perf_counter() - t0)
    wall = statistics.median(walls)
    print(f"{'critic':<14} {'median s':>9} {'score':>6} {'passed':>7}")
    for n in names:
        extra = ""
        if n == "face":
            faces = max(1, int(verdicts[n].evidence.get("faces_found", 1) or 1))
            extra = f"  ({per[n] / faces:.3f} s per face, {faces} face(s))"
        print(f"{n:<14} {per[n]:>9.3f} {verdicts[n].score:>6.2f} {str(verdicts[n].passed):>7}{extra}")
    if "ocr" in critics:
        ocr_before_after(image, plan, ctx, critics["ocr"], args.repeats)
    slowest = max(per.values())
    print(f"serial sum {sum(per.values()):.3f} s; parallel wall {wall:.3f} s = {wall / slowest:.2f} x the slowest "
          f"({max(per, key=per.get)}) (target <= 1.2)")


if __name__ == "__main__":
    main()
