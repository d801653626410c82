"""The reference critic on real photos: is a reference object found where it was put, and only there?

Objects: 12 crops of real photos (Kodak and LIVE, bench/data/photos/clean) and 5 synthetic product renders
drawn with Pillow on a white backdrop (a labelled bottle, a cereal box, a can; a plain mug and a plain ball as
low-texture references). Each is pasted (a crop as its rectangle, a product cut out of its backdrop, as compose
does) into other real photos scaled to a long side of 1024, under one condition at a time: scale 1.0/0.8/0.6/0.4
of the reference's size, rotation 10 and 30 degrees, brightness and contrast +-25%, and 30% of it covered by a
patch of the background. Negatives: the same photos without the object, and with a different object pasted.

Printed: recall per condition and object group, the box's overlap with the truth (IoU), false positives on the
negatives, the inlier and shape-score ranges that set the thresholds, and seconds per check (also at 1024x1024).

    python bench/reference.py [--quick] [--detector sift|akaze|orb] [--show-misses]

A photo's crop is never pasted into the photo it came from, nor into its duplicate in the LIVE set.
calibrate_critics.py prints a summary row (``cases()``).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
sys.path.append(str(_BENCH))

import numpy as np  # noqa: E402
from _machine import machine  # noqa: E402
from PIL import Image, ImageDraw, ImageEnhance, ImageFont  # noqa: E402

from agent.models import Box, CheckSpec, ImageRef, Plan, Subject  # noqa: E402
from agent.runtime.store import ArtifactStore  # noqa: E402
from critics.base import CheckContext  # noqa: E402

CLEAN = _BENCH / "data" / "photos" / "clean"
FONTS = _BENCH.parent / "agent" / "backends" / "compose" / "fonts"
CROPS = {
    "hat": ("kodim03.png", (0, 60, 280, 260)),
    "motorbike": ("kodim05.png", (250, 130, 530, 400)),
    "raft": ("kodim14.png", (180, 250, 480, 460)),
    "plane": ("kodim20.png", (60, 130, 360, 370)),
    "parrot": ("kodim23.png", (440, 60, 720, 330)),
    "mural": ("kodim24.png", (300, 150, 560, 400)),
    "lighthouse": ("kodim21.png", (300, 100, 500, 380)),
    "barn": ("kodim22.png", (230, 60, 500, 300)),
    "sail": ("kodim10.png", (40, 60, 280, 260)),
    "butterfly": ("live_monarch.bmp", (220, 60, 560, 360)),
    "sign": ("live_dancers.bmp", (370, 40, 610, 300)),
    "latch": ("kodim02.png", (200, 150, 450, 380)),
}
"""Object crops (photo, box): textured regions of real photos."""
DUPLICATES = {"live_buildings.bmp": "kodim08.png", "live_parrots.bmp": "kodim23.png",
              "live_lighthouse.bmp": "kodim19.png"}
"""LIVE photos that are Kodak photos: a crop of one is never pasted into the other."""
PRODUCTS = ("bottle", "cereal", "can", "mug", "ball")
LOW_TEXTURE = ("mug", "ball")
DECOYS = {"mug": ("mug_blue", "box_red", "ball_red"), "ball": ("mug_blue", "ball_red"),
          "bottle": ("bottle_purple",), "cereal": ("cereal_green",), "can": ("can_red",)}
"""Objects pasted as negatives: for the low-texture references the same shape in another colour, or the same
colour in another shape; for the products the same product with its body in another colour (label unchanged)."""
VARIANTS = {"bottle_purple": (150, 40, 140), "cereal_green": (60, 150, 60), "can_red": (190, 30, 40)}
RED, BLUE = (200, 35, 35), (30, 80, 200)
CONDITIONS: dict[str, dict[str, float]] = {
    "scale 1.0": {"scale": 1.0},
    "scale 0.8": {"scale": 0.8},
    "scale 0.6": {"scale": 0.6},
    "scale 0.4": {"scale": 0.4},
    "rotated 10°": {"scale": 0.8, "rotate": 10},
    "rotated 30°": {"scale": 0.8, "rotate": 30},
    "brightness +25%": {"scale": 0.8, "brightness": 1.25},
    "brightness -25%": {"scale": 0.8, "brightness": 0.75},
    "contrast +25%": {"scale": 0.8, "contrast": 1.25},
    "contrast -25%": {"scale": 0.8, "contrast": 0.75},
    "30% occluded": {"scale": 0.8, "occlude": 0.3},
}
LONG_SIDE = 1024


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / "Lato-Black.ttf"), size)


def product(name: str) -> tuple[Image.Image, Image.Image]:
    """A synthetic product render on white and its alpha (the cut-out compose would make)."""
    body = VARIANTS.get(name)
    name = name.split("_")[0] if body else name
    w, h = (240, 420) if name in ("bottle", "can") else (300, 400) if name == "cereal" else (360, 300)
    img = Image.new("RGB", (w, h), "white")
    alpha = Image.new("L", (w, h), 0)
    d, a = ImageDraw.Draw(img), ImageDraw.Draw(alpha)

    def shape(kind: str, box: tuple[float, ...], fill: tuple[int, int, int], r: int = 0) -> None:
        getattr(d, kind)(box, fill=fill, **({"radius": r} if r else {}))
        getattr(a, kind)(box, fill=255, **({"radius": r} if r else {}))

    if name == "bottle":
        shape("rounded_rectangle", (95, 10, 145, 90), body or (20, 90, 60), 8)
        shape("rounded_rectangle", (40, 80, 200, 410), body or (30, 120, 80), 40)
        d.rectangle((40, 170, 200, 320), fill=(245, 235, 210))
        d.text((120, 205), "GREEN", font=_font(34), fill=(150, 30, 30), anchor="mm")
        d.text((120, 248), "VALLEY", font=_font(28), fill=(30, 60, 40), anchor="mm")
        d.text((120, 290), "spring water 1L", font=_font(16), fill=(60, 60, 60), anchor="mm")
    elif name == "cereal":
        shape("rectangle", (20, 10, 280, 390), body or (230, 120, 30))
        for i in range(6):
            d.rectangle((20, 300 + i * 15, 280, 306 + i * 15), fill=(180, 40, 40))
        d.ellipse((80, 150, 220, 280), fill=(250, 220, 90))
        d.text((150, 60), "CRUNCH", font=_font(46), fill=(255, 255, 255), anchor="mm")
        d.text((150, 112), "honey oat flakes", font=_font(20), fill=(60, 30, 10), anchor="mm")
        d.text((150, 215), "NEW", font=_font(36), fill=(180, 40, 40), anchor="mm")
    elif name == "can":
        shape("rounded_rectangle", (30, 20, 210, 400), body or (40, 60, 160), 20)
        d.rectangle((30, 120, 210, 300), fill=(230, 230, 240))
        d.text((120, 170), "FIZZ", font=_font(54), fill=(200, 30, 60), anchor="mm")
        d.text((120, 235), "cola zero", font=_font(26), fill=(40, 60, 160), anchor="mm")
        d.polygon([(40, 320), (200, 310), (200, 330), (40, 340)], fill=(250, 200, 40))
    elif name in ("mug", "mug_blue"):
        colour = RED if name == "mug" else BLUE
        a.ellipse((210, 90, 330, 230), fill=255)
        d.ellipse((210, 90, 330, 230), fill=colour)
        a.ellipse((240, 120, 300, 200), fill=0)
        d.ellipse((240, 120, 300, 200), fill="white")
        shape("rounded_rectangle", (50, 40, 260, 280), colour, 24)
    elif name == "box_red":
        shape("rounded_rectangle", (40, 60, 320, 260), RED, 12)
    else:  # ball, ball_red
        shape("ellipse", (50, 20, 310, 280), BLUE if name == "ball" else RED)
    return img, alpha


@dataclass
class Case:
    """One check: what was searched for, in what, and where it really is (None: it is not there)."""

    obj: str
    group: str  # "photo crop", "product", "low-texture product"
    condition: str
    background: str
    truth: tuple[int, int, int, int] | None
    image: Image.Image
    negative: str = ""  # "", "absent", "other object"


def _objects() -> dict[str, tuple[Image.Image, Image.Image | None, str, str | None]]:
    """name -> (reference image, paste alpha or None, group, source photo)."""
    out: dict[str, tuple[Image.Image, Image.Image | None, str, str | None]] = {}
    for name, (photo, box) in CROPS.items():
        out[name] = (Image.open(CLEAN / photo).convert("RGB").crop(box), None, "photo crop", photo)
    for name in PRODUCTS:
        img, alpha = product(name)
        out[name] = (img, alpha, "low-texture product" if name in LOW_TEXTURE else "product", None)
    return out


def _background(photo: str) -> Image.Image:
    img = Image.open(CLEAN / photo).convert("RGB")
    s = LONG_SIDE / max(img.size)
    return img.resize((round(img.width * s), round(img.height * s)), Image.Resampling.LANCZOS)


def paste(bg: Image.Image, obj: Image.Image, alpha: Image.Image | None, rng: random.Random, scale: float = 1.0,
          rotate: float = 0.0, brightness: float = 1.0, contrast: float = 1.0,
          occlude: float = 0.0) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """`obj` pasted into a copy of `bg` under one condition; returns the image and the object's true box."""
    img = bg.copy()
    rgba = obj.convert("RGBA")
    rgba.putalpha(alpha if alpha is not None else Image.new("L", obj.size, 255))
    if scale != 1.0:
        rgba = rgba.resize((max(1, round(obj.width * scale)), max(1, round(obj.height * scale))),
                           Image.Resampling.LANCZOS)
    if rotate:
        rgba = rgba.rotate(rotate, resample=Image.Resampling.BICUBIC, expand=True)
    rgb = rgba.convert("RGB")
    if brightness != 1.0:
        rgb = ImageEnhance.Brightness(rgb).enhance(brightness)
    if contrast != 1.0:
        rgb = ImageEnhance.Contrast(rgb).enhance(contrast)
    x = rng.randrange(0, max(1, img.width - rgba.width))
    y = rng.randrange(0, max(1, img.height - rgba.height))
    img.paste(rgb, (x, y), rgba.getchannel("A"))
    ys, xs = np.nonzero(np.asarray(rgba.getchannel("A")) > 127)
    truth = (x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1)
    if occlude:
        # a patch of the background covers `occlude` of the object's box, from one side
        w, h = truth[2] - truth[0], truth[3] - truth[1]
        cw = round(w * occlude)
        side = rng.choice(("left", "right"))
        x0 = truth[0] if side == "left" else truth[2] - cw
        sx = (x0 + img.width // 2) % max(1, img.width - cw)
        img.paste(bg.crop((sx, truth[1], sx + cw, truth[1] + h)), (x0, truth[1]))
    return img, truth


def cases(quick: bool = False, seed: int = 0) -> tuple[list[Case], dict[str, Image.Image]]:
    """Every positive and negative case, and the references by object name."""
    rng = random.Random(seed)
    photos = sorted(p.name for p in CLEAN.iterdir() if p.suffix in (".png", ".bmp"))
    objects = _objects()
    per_object = 2 if quick else 5
    backgrounds = {p: _background(p) for p in photos}
    out: list[Case] = []
    for name, (obj, alpha, group, source) in objects.items():
        banned = {source, DUPLICATES.get(source or ""), *[k for k, v in DUPLICATES.items() if v == source]}
        chosen = rng.sample([p for p in photos if p not in banned], per_object)
        for photo in chosen:
            bg = backgrounds[photo]
            for cond, params in CONDITIONS.items():
                img, truth = paste(bg, obj, alpha, rng, **params)
                out.append(Case(name, group, cond, photo, truth, img))
            out.append(Case(name, group, "negative", photo, None, bg, negative="absent"))
            other = rng.choice([o for o in objects if o != name and objects[o][3] != photo])
            o_img, o_alpha, _, _ = objects[other]
            img, _ = paste(bg, o_img, o_alpha, rng, scale=0.8)
            out.append(Case(name, group, "negative", photo, None, img, negative=f"other object ({other})"))
            for decoy in DECOYS.get(name, ()):
                d_img, d_alpha = product(decoy)
                img, _ = paste(bg, d_img, d_alpha, rng, scale=0.8)
                out.append(Case(name, group, "negative", photo, None, img, negative=f"decoy ({decoy})"))
        if name in LOW_TEXTURE:  # colour and silhouette alone: every photo is a negative
            out += [Case(name, group, "negative", p, None, backgrounds[p], negative="absent")
                    for p in photos if p not in chosen]
    return out, {name: objects[name][0] for name in objects}


def plan_for(ref: ImageRef, name: str, size: tuple[int, int]) -> Plan:
    return Plan(prompt="a product shot", width=size[0], height=size[1], aspect_ratio="1:1", size="1K",
                subjects=[Subject(id=name, kind="product", reference=ref, region=Box(x=0, y=0, w=1, h=1))],
                checks={"reference": CheckSpec(threshold=0.5)})


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


@dataclass
class Result:
    case: Case
    found: bool
    score: float
    inliers: int
    colour: float | None
    method: str | None
    box: tuple[int, int, int, int] | None
    seconds: float
    shape: float | None = None


def run(all_cases: list[Case], refs: dict[str, Image.Image]) -> list[Result]:
    from critics.reference import ReferenceCritic

    critic = ReferenceCritic()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(tmp)
        stored = {name: store.put_image(img) for name, img in refs.items()}
        for name, ref in stored.items():  # prepare every reference once, so timings are per check
            critic.check(Image.new("RGB", (64, 64)), plan_for(ref, name, (64, 64)),
                         CheckContext(store=store, references=[ref]))
        for c in all_cases:
            ref = stored[c.obj]
            t0 = time.perf_counter()
            v = critic.check(c.image, plan_for(ref, c.obj, c.image.size), CheckContext(store=store, references=[ref]))
            dt = time.perf_counter() - t0
            (r,) = v.evidence["references"]
            results.append(Result(c, bool(r["found"]), v.score, int(r["inliers"]), r["colour"], r["method"],
                                  tuple(r["box"]) if r["box"] else None, dt, r.get("shape")))
    return results


def latency_1024(refs: dict[str, Image.Image], n: int = 12) -> tuple[float, float, float]:
    """Median seconds per check on 1024x1024 candidates (references prepared beforehand): with one reference, and
    with three (the candidate's features are computed once per check, whatever the number of references); and the
    median CPU seconds with one reference (all threads: what a check costs when the machine is shared)."""
    from critics.reference import ReferenceCritic

    critic = ReferenceCritic()
    rng = random.Random(1)
    photos = sorted(p.name for p in CLEAN.iterdir() if p.suffix in (".png", ".bmp"))
    one, three, cpu = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(tmp)
        names = list(refs)
        stored = {name: store.put_image(img) for name, img in refs.items()}
        for i in range(n):
            trio = [names[(3 * i + k) % len(names)] for k in range(3)]
            bg = Image.open(CLEAN / photos[i % len(photos)]).convert("RGB").resize((1024, 1024))
            img, _ = paste(bg, refs[trio[0]], None, rng, scale=0.6)
            for group, subset in ((one, trio[:1]), (three, trio)):
                plan = Plan(prompt="p", width=1024, height=1024, aspect_ratio="1:1", size="1K",
                            subjects=[Subject(id=k, kind="product", reference=stored[k], region=Box(x=0, y=0, w=1, h=1))
                                      for k in subset])
                ctx = CheckContext(store=store, references=[stored[k] for k in subset])
                critic.check(img, plan, ctx)  # prepares the references
                t0, c0 = time.perf_counter(), time.process_time()
                critic.check(img, plan, ctx)
                group.append(time.perf_counter() - t0)
                if group is one:
                    cpu.append(time.process_time() - c0)
    return statistics.median(one), statistics.median(three), statistics.median(cpu)


def report(results: list[Result], show_misses: bool = False) -> None:
    groups = ("photo crop", "product", "low-texture product")
    print(f"{'condition':<17} " + " ".join(f"{g:>20}" for g in groups) + f" {'all':>9} {'box IoU':>8}")
    for cond in CONDITIONS:
        rs = [r for r in results if r.case.condition == cond]
        cells = []
        for g in groups:
            gs = [r for r in rs if r.case.group == g]
            cells.append(f"{sum(r.found for r in gs):>3}/{len(gs):<3} ({100 * sum(r.found for r in gs) / max(1, len(gs)):5.1f}%)")
        ious = [iou(r.box, r.case.truth) for r in rs if r.found and r.box and r.case.truth]
        print(f"{cond:<17} " + " ".join(f"{c:>20}" for c in cells)
              + f" {100 * sum(r.found for r in rs) / max(1, len(rs)):8.1f}% {statistics.median(ious) if ious else 0:8.2f}")
    pos = [r for r in results if r.case.truth is not None]
    ious = [iou(r.box, r.case.truth) for r in pos if r.found and r.box and r.case.truth]
    print(f"{'all positives':<17} {sum(r.found for r in pos)}/{len(pos)} found "
          f"({100 * sum(r.found for r in pos) / max(1, len(pos)):.1f}%); box IoU >= 0.5 for "
          f"{sum(i >= 0.5 for i in ious)}/{len(ious)} found")
    neg = [r for r in results if r.case.truth is None]
    for kind, what in (("absent", "the object absent"), ("other object", "another object's crop pasted"),
                       ("decoy", "a decoy (re-coloured / plain) pasted")):
        ks = [r for r in neg if r.case.negative.startswith(kind)]
        lt = [r for r in ks if r.case.group == "low-texture product"]
        print(f"false positives, {what:<29} {sum(r.found for r in ks)}/{len(ks)} "
              f"(low-texture references {sum(r.found for r in lt)}/{len(lt)})")
    colours = [r.colour for r in pos if r.found and r.method == "features" and r.colour is not None]
    variant = [r.colour for r in neg if r.case.negative.startswith("decoy") and r.colour is not None
               and r.case.group == "product"]
    if colours:
        print(f"colour agreement: found by features min {min(colours):.2f}, 5th percentile "
              f"{np.percentile(colours, 5):.2f}; re-coloured products max {max(variant, default=0):.2f}")
    feat_pos = [r.inliers for r in pos if r.found and r.method == "features"]
    unrelated = [r.inliers for r in neg if not r.case.negative.startswith("decoy")]
    print(f"inliers: found by features min {min(feat_pos, default=0)}, median "
          f"{statistics.median(feat_pos) if feat_pos else 0}; without the object (absent, another object) max "
          f"{max(unrelated, default=0)}")
    lt_pos = [r.shape for r in pos if r.case.group == "low-texture product" and r.shape is not None]
    lt_neg = [r.shape for r in neg if r.case.group == "low-texture product" and r.shape is not None]
    if lt_pos and lt_neg:
        print(f"low-texture silhouette fit: positives min {min(lt_pos):.2f} median {statistics.median(lt_pos):.2f}; "
              f"negatives median {statistics.median(lt_neg):.2f} max {max(lt_neg):.2f}")
    neg_scores = [r.score for r in neg]
    pos_scores = [r.score for r in pos]
    print(f"similarity: positives median {statistics.median(pos_scores):.2f}; negatives max {max(neg_scores):.2f}")
    print(f"median seconds per check: {statistics.median(r.seconds for r in results):.3f} "
          f"(candidates {LONG_SIDE} px long side, one reference)")
    if show_misses:
        for r in results:
            if (r.case.truth is not None) != r.found:
                print(f"  {'MISS' if r.case.truth else 'FALSE'} {r.case.obj:<11} {r.case.condition:<16} "
                      f"{r.case.background:<17} {r.case.negative:<22} score {r.score:.2f} inl {r.inliers} "
                      f"colour {r.colour} {r.method}")


def scores(quick: bool = False) -> tuple[list[float], list[float]]:
    """Scores of the positives and the negatives (calibrate_critics.py's row)."""
    all_cases, refs = cases(quick)
    results = run(all_cases, refs)
    return ([r.score for r in results if r.case.truth is not None],
            [r.score for r in results if r.case.truth is None])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 backgrounds per object instead of 5")
    ap.add_argument("--detector", choices=("sift", "akaze", "orb"), default="sift")
    ap.add_argument("--side", type=int, default=None, help="candidate long side for features (default: the critic's)")
    ap.add_argument("--limit", type=int, default=None, help="candidate keypoints kept (default: the critic's; 0: all)")
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args()
    from critics.reference import features

    features.DETECTOR = args.detector
    features.CANDIDATE_SIDE = args.side or features.CANDIDATE_SIDE
    features.CANDIDATE_FEATURES = features.CANDIDATE_FEATURES if args.limit is None else args.limit
    print(machine())
    print(f"detector: {args.detector}, candidate described at a long side of {features.CANDIDATE_SIDE} px, "
          f"its strongest {features.CANDIDATE_FEATURES or 'all'} keypoints kept")
    if not CLEAN.exists() or not any(CLEAN.iterdir()):
        print(f"no photos at {CLEAN}: run bench/data/get_photos.py")
        return
    all_cases, refs = cases(args.quick)
    t0 = time.perf_counter()
    results = run(all_cases, refs)
    print(f"{len(all_cases)} checks in {time.perf_counter() - t0:.0f} s")
    report(results, args.show_misses)
    one, three, cpu = latency_1024(refs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"median seconds per check at 1024x1024: {one:.3f} with one reference ({cpu:.3f} CPU seconds), "
          f"{three:.3f} with three ({(three - one) / 2:.3f} per added reference); load average {load:.1f}")
    print("by object (found / positives, false positives / negatives):")
    by: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by[r.case.obj].append(r)
    print("  " + ", ".join(f"{k} {sum(r.found for r in v if r.case.truth)}/{sum(1 for r in v if r.case.truth)} "
                           f"{sum(r.found for r in v if not r.case.truth)}/{sum(1 for r in v if not r.case.truth)}"
                           for k, v in by.items()))


if __name__ == "__main__":
    main()
