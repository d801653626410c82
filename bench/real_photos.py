"""The artifact critic on real photos and their standard distortions, and on pixloop's own posters and flyers.

Real data: the LIVE pristine photos with the database's own blur, JPEG and noise versions, and the Kodak suite
with standard distortions derived from it (blur, noise, JPEG q10/q90, under- and over-exposure, posterisation,
a blurred quadrant, a copy-move paste), rebuilt by ``bench/data/get_photos.py`` into bench/data/photos/
(bench/data/README.md, "Photos and distortions (artifacts)"). Every image has a label: ``pass`` (pristine, or a
near-pristine version such as JPEG q90), ``fail`` (clearly degraded) or ``borderline`` (reported, not scored),
and the sub-check that should flag it.

Each image is checked twice: with a photo plan (background "image", what a run that generates a photo
passes) and with the default plan ``pixloop check`` builds for an image it knows nothing about, where the
pixels decide whether it is a photo or a flat design. pixloop's own posters and flyers (compose renders of the
rule planner's plans, as PNG and as the JPEG q90 / q75 an image API returns) are checked with the default plan
too: they must be judged as designs and pass.

    python bench/real_photos.py [--quick] [--show-misses]

calibrate_critics.py prints the same table (``report()``).
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
sys.path.append(str(_BENCH))

from PIL import Image  # noqa: E402

from agent.models import CheckSpec, Plan, Style  # noqa: E402
from critics.base import CheckContext  # noqa: E402

PHOTOS = _BENCH / "data" / "photos"
SUBS = ("blur", "noise", "blocking", "exposure", "banding", "copy_move")
FLYERS = [
    ('A minimal flyer that says "SUMMER SALE" and "Everything half price"', "4:5", "1K"),
    ('A bold poster that says "GRAND OPENING" and "Saturday at noon"', "2:3", "1K"),
    ('A vintage concert poster: "JAZZ NIGHT" and "Live at the Blue Room"', "2:3", "2K"),
    ('A punchy square poster that says "FRESH COFFEE"', "1:1", "1K"),
    ('A poster that says "BOOK FAIR", "October 12 to 14" and "Free entry for everyone"', "3:4", "2K"),
    ('An elegant gold poster that says "GALA DINNER" and "Black tie optional"', "2:3", "1K"),
    ('A blue website banner that says "CLOUD HOSTING" and "Deploy in seconds"', "16:9", "2K"),
    ('A cinematic banner that says "THE LONG ROAD" and "In cinemas this winter"', "21:9", "2K"),
    ('A white minimal flyer that says "YOGA CLASS" and "Every Monday"', "4:5", "1K"),
    ('A clean black and white flyer: "OPEN HOUSE", "Tour the new campus", "Meet the teachers", "Free lunch"',
     "2:3", "1K"),
    ('A pastel flyer that says "SPRING PARTY" and "Friday at eight"', "2:3", "1K"),
    ('A corporate flyer that says "QUARTERLY REVIEW" and "Room 4B, 3pm"', "16:9", "1K"),
]


@dataclass
class Row:
    """One image's manifest entry and what the critic said about it."""

    file: str
    group: str
    kind: str
    label: str
    expect: str
    region: tuple[int, int, int, int] | None
    passed: dict[str, bool] = field(default_factory=dict)  # plan name -> verdict passed
    failing: dict[str, list[str]] = field(default_factory=dict)  # plan name -> failing sub-checks
    style: dict[str, str] = field(default_factory=dict)
    regions: list[list[int]] = field(default_factory=list)  # photo plan's evidence regions
    seconds: float = 0.0
    size: tuple[int, int] = (0, 0)


def photo_plan(w: int, h: int) -> Plan:
    return Plan(prompt="a photo", width=w, height=h, aspect_ratio="3:2", size="1K",
                style=Style(background="image"), checks={"artifacts": CheckSpec(threshold=0.5)})


def check_plan(w: int, h: int) -> Plan:
    """What ``pixloop check`` builds for an image it knows nothing about (the default style)."""
    return Plan(prompt="(pixloop check)", width=w, height=h, aspect_ratio="3:2", size="1K",
                checks={"artifacts": CheckSpec(threshold=0.5)})


def load_manifest(folder: Path = PHOTOS) -> list[Row]:
    rows = []
    with open(folder / "manifest.csv") as f:
        for r in csv.DictReader(f):
            region = tuple(int(v) for v in r["region"].split()) if r["region"] else None
            rows.append(Row(r["file"], r["group"], r["kind"], r["label"], r["expect"], region))  # type: ignore[arg-type]
    return rows


def run_photos(rows: list[Row], folder: Path = PHOTOS) -> None:
    from critics.artifacts import ArtifactsCritic

    critic = ArtifactsCritic(brisque=False)  # naturalness is optional; keep the numbers independent of installs
    for r in rows:
        img = Image.open(folder / r.file).convert("RGB")
        r.size = img.size
        for name, plan in (("photo", photo_plan(*img.size)), ("check", check_plan(*img.size))):
            t0 = time.perf_counter()
            v = critic.check(img, plan, CheckContext(candidate_id=Path(r.file).stem))
            if name == "photo":
                r.seconds = time.perf_counter() - t0
                r.regions = list(v.evidence.get("regions") or [])
            r.passed[name] = v.passed
            r.style[name] = v.evidence.get("style") or "?"
            r.failing[name] = [n for n, c in v.evidence["checks"].items() if not c["passed"]]


def coverage(region: tuple[int, int, int, int], boxes: list[list[int]]) -> float:
    """Share of the true defect box covered by the reported boxes."""
    import numpy as np

    x0, y0, x1, y1 = region
    m = np.zeros((max(1, y1 - y0), max(1, x1 - x0)), bool)  # rasterised on the defect box (boxes may overlap)
    for bx0, by0, bx1, by1 in boxes:
        m[max(0, by0 - y0):max(0, by1 - y0), max(0, bx0 - x0):max(0, bx1 - x0)] = True
    return float(m.mean())


def flyer_styles(quick: bool) -> list[tuple[str, str, bool, list[str]]]:
    """pixloop's own posters/flyers under the default plan: (name, style, passed, failing sub-checks)."""
    from agent.backends.compose import render
    from agent.loop.planning import RulePlanner
    from agent.models import Brief
    from agent.runtime.store import ArtifactStore
    from critics.artifacts import ArtifactsCritic

    critic = ArtifactsCritic(brisque=False)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(tmp)
        for i, (prompt, aspect, size) in enumerate(FLYERS[:4] if quick else FLYERS):
            plan = RulePlanner().plan(Brief(prompt=prompt, aspect_ratio=aspect, size=size), [], store)
            img, _ = render(plan, i, store)
            for q in (None, 90, 75):
                im = img
                if q is not None:
                    buf = io.BytesIO()
                    img.save(buf, "JPEG", quality=q)
                    im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
                v = critic.check(im, check_plan(*im.size), CheckContext(candidate_id=f"flyer{i}"))
                out.append((f"{i}{'' if q is None else f'_q{q}'}", v.evidence.get("style") or "?", v.passed,
                            [n for n, c in v.evidence["checks"].items() if not c["passed"]]))
    return out


def summarise(rows: list[Row], plan: str) -> dict[str, object]:
    scored = [r for r in rows if r.label in ("pass", "fail")]
    correct = sum((r.label == "pass") == r.passed[plan] for r in scored)
    clean = [r for r in rows if r.group == "clean"]
    return {"accuracy": correct / max(1, len(scored)), "n": len(scored),
            "clean_false": sum(not r.passed[plan] for r in clean), "clean_n": len(clean)}


def report(folder: Path = PHOTOS, quick: bool = False, show_misses: bool = False) -> bool:
    """Print the real-photo tables; False (with a hint) if the data set is not built."""
    if not (folder / "manifest.csv").is_file():
        print(f"artifacts on real photos: no data in {folder} (build it: python bench/data/get_photos.py "
              "--live CILISSA_CLONE --kodak IMAGES_CLONE; bench/data/README.md)")
        return False
    rows = load_manifest(folder)
    if quick:
        rows = [r for r in rows if r.group != "derived" or r.file.endswith(("01.png", "08.png", "13.png", "20.png"))]
    run_photos(rows, folder)
    print(f"artifacts on real photos ({len(rows)} images: {sum(r.group == 'clean' for r in rows)} pristine, "
          f"{sum(r.group == 'live' for r in rows)} LIVE distortions, {sum(r.group == 'derived' for r in rows)} derived)")
    for plan in ("photo", "check"):
        s = summarise(rows, plan)
        print(f"  {plan + ' plan':<11} accuracy {s['accuracy']:.1%} on {s['n']} labelled images; "
              f"false alarms on pristine photos {s['clean_false']}/{s['clean_n']}")
    print(f"  {'group / kind':<22} {'n':>3} {'flagged':>8} {'right sub-check':>16} {'style=photo (check)':>20}")
    by: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for r in rows:
        by[(r.group, r.kind, r.label)].append(r)
    for (group, kind, label), rs in sorted(by.items()):
        flagged = sum(not r.passed["photo"] for r in rs)
        right = sum(r.expect in r.failing["photo"] for r in rs if r.expect) if rs[0].expect and label == "fail" else None
        photo = sum(r.style["check"] == "photo" for r in rs)
        print(f"  {group + '/' + kind + ' (' + label + ')':<22} {len(rs):>3} {flagged:>8} "
              f"{'' if right is None else f'{right}/{len(rs)}':>16} {photo:>13}/{len(rs)}")
    # per sub-check: accuracy, false alarms (it fired on a must-pass image), misses (its defect passed)
    print(f"  {'sub-check':<10} {'defects':>8} {'caught':>7} {'missed':>7} {'false alarms':>13} {'accuracy':>9}")
    must_pass = [r for r in rows if r.label == "pass"]
    for sub in SUBS:
        defects = [r for r in rows if r.label == "fail" and r.expect == sub]
        caught = sum(sub in r.failing["photo"] for r in defects)
        false = sum(sub in r.failing["photo"] for r in must_pass)
        n = len(defects) + len(must_pass)
        acc = (caught + len(must_pass) - false) / n if n else float("nan")
        print(f"  {sub:<10} {len(defects):>8} {caught:>7} {len(defects) - caught:>7} {false:>8}/{len(must_pass):<4} "
              f"{acc:>9.1%}")
    local = [r for r in rows if r.region is not None and r.label == "fail"]
    if local:
        found = sum(not r.passed["photo"] and coverage(r.region, r.regions) >= 0.5 and
                    sum((b[2] - b[0]) * (b[3] - b[1]) for b in r.regions) < 0.5 * r.size[0] * r.size[1] for r in local)
        print(f"  local defects (quarter blur, copy-move) failed with a region covering >= half of the defect: "
              f"{found}/{len(local)}")
    photos = [r for r in rows]
    print(f"  style under the default plan: {sum(r.style['check'] == 'photo' for r in photos)}/{len(photos)} "
          f"real images judged photos ({sum(r.style['check'] == 'photo' for r in rows if r.group == 'clean')}/"
          f"{sum(r.group == 'clean' for r in rows)} pristine)")
    fl = flyer_styles(quick)
    print(f"  pixloop's posters/flyers under the default plan (PNG, JPEG q90, q75): "
          f"{sum(s == 'graphic' for _, s, _, _ in fl)}/{len(fl)} judged designs, {sum(p for _, _, p, _ in fl)}/{len(fl)} "
          f"pass" + ("" if all(p for _, _, p, _ in fl) else
                    " (failing: " + ", ".join(f"{n} {s} {f}" for n, s, p, f in fl if not p) + ")"))
    secs = [r.seconds for r in rows]
    print(f"  seconds per check (photo plan): median {statistics.median(secs):.3f}, max {max(secs):.3f}")
    if show_misses:
        for r in rows:
            if r.label in ("pass", "fail") and (r.label == "pass") != r.passed["photo"]:
                print(f"    {'MISS' if r.label == 'fail' else 'FALSE'} {r.file} (expect {r.expect or '-'}): "
                      f"failing {r.failing['photo']}, style {r.style['photo']}")
    wrong_kinds = Counter(r.kind for r in rows if r.label in ("pass", "fail") and (r.label == "pass") != r.passed["photo"])
    if wrong_kinds:
        print("  errors by kind (photo plan): " + ", ".join(f"{k} {v}" for k, v in wrong_kinds.most_common()))
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 of the 24 Kodak photos' derived distortions, 4 flyers")
    ap.add_argument("--show-misses", action="store_true", help="list every wrong verdict")
    ap.add_argument("--data", type=Path, default=PHOTOS)
    args = ap.parse_args()
    from _machine import machine

    print(machine())
    report(args.data, args.quick, args.show_misses)


if __name__ == "__main__":
    main()
