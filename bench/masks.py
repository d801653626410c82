"""How good are the derived edit masks? IoU per keep kind and seconds per mask, on real photos where there is
ground truth, on composites with known masks where there is not.

    python bench/masks.py [--limit N] [--mediapipe /tmp/mpvenv/bin/python] [--selfie-tflite PATH.tflite]
                          [--only person,selfie,product,text,clothing,speed]

- **person** (real): the 290 photos of bench/data/person_masks (rebuild with bench/data/get_masks.py): the kept
  region of `keep_mask(photo, "person")` (GrabCut seeded by YuNet faces; the most salient object when no face is
  found) against the ground-truth person mask; also on the photos where a face was found, and `"subject"`.
  With `--mediapipe PYTHON` (a separate venv with `mediapipe==0.10.14`, which ships
  `selfie_segmentation.tflite` in its wheel) the same photos through MediaPipe's selfie segmenter, general and
  landscape models, thresholded at 0.5; with `--selfie-tflite PATH` the general model's file run by OpenCV's own
  TFLite importer in this venv (`cv2.dnn.readNetFromTFLite`, no mediapipe import).
- **product** (composites): synthetic product renders (bottle, box, mug, can; shaded) pasted with a known mask on
  the Kodak photos of bench/data/photos/clean/ (bench/data/get_photos.py), sharp (their own subjects compete for
  saliency: the hard case) and out of focus (a product shot's backdrop), and on plain studio backdrops;
  `keep_mask(image, "product")` against the paste mask.
- **text** (compose posters): `keep_mask(poster, "text")` against the glyphs (the render minus the same plan
  rendered without text): the share of glyph pixels kept, and the IoU with the padded glyph boxes.
- **clothing** (real faces, no ground truth): the share of each face box inside the clothing mask (should be 0)
  and the mask's share of the image, on /work/shared/data/faces.
- **speed**: seconds per mask at 1024 px on the long side, per kind (median of 5), and MediaPipe's.

IoU is |A and B| / |A or B| of the kept region and the truth; p10 is the 10th percentile over images.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from agent.loop.planning.masks import derive_mask, keep_mask
from bench._machine import machine

DATA = Path(__file__).resolve().parent / "data"
PEOPLE = DATA / "person_masks"
KODAK = DATA / "photos" / "clean"
FACES = Path(os.environ.get("PIXLOOP_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data" / "faces"

MEDIAPIPE_WORKER = r"""
import json, sys, time
import numpy as np
from PIL import Image
from mediapipe.python.solutions import selfie_segmentation as ss
jobs = json.load(sys.stdin)
models = {0: ss.SelfieSegmentation(model_selection=0), 1: ss.SelfieSegmentation(model_selection=1)}
out = []
for src, dst, model in jobs:
    rgb = np.ascontiguousarray(np.asarray(Image.open(src).convert("RGB")))
    t = time.perf_counter()
    prob = models[model].process(rgb).segmentation_mask
    mask = (prob > 0.5).astype(np.uint8) * 255
    out.append(time.perf_counter() - t)
    Image.fromarray(mask).save(dst)
json.dump(out, sys.stdout)
"""


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def summary(values: list[float]) -> str:
    if not values:
        return "n=0"
    v = np.asarray(values)
    return f"mean {v.mean():.3f}, p10 {np.percentile(v, 10):.3f}, median {np.median(v):.3f} (n={len(v)})"


def kept(mask: Image.Image) -> np.ndarray:
    return np.asarray(mask) < 128


def truth(path: Path, size: tuple[int, int]) -> np.ndarray:
    m = Image.open(path).convert("L")
    if m.size != size:
        m = m.resize(size, Image.Resampling.NEAREST)
    return np.asarray(m) > 127


def selfie_tflite(path: str) -> Callable[[Image.Image], np.ndarray]:
    """MediaPipe's selfie segmentation model run by OpenCV's own TFLite importer (no mediapipe import): the photo
    stretched to 256x256, RGB in 0..1, NCHW; the person where the output exceeds 0.5, scaled back."""
    import cv2

    net = cv2.dnn.readNetFromTFLite(path)

    def segment(image: Image.Image) -> np.ndarray:
        rgb = np.asarray(image.convert("RGB").resize((256, 256), Image.Resampling.BILINEAR), np.float32) / 255
        net.setInput(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None]))
        prob = net.forward().reshape(256, 256)
        return np.asarray(cv2.resize(prob, image.size, interpolation=cv2.INTER_LINEAR) > 0.5)

    return segment


def mediapipe(python: str, jobs: list[tuple[str, str, int]]) -> list[float]:
    """Run MediaPipe's selfie segmenter in its own interpreter; seconds per image (the model call only)."""
    done = subprocess.run([python, "-c", MEDIAPIPE_WORKER], input=json.dumps(jobs), capture_output=True, text=True,
                          check=True)
    return [float(s) for s in json.loads(done.stdout.strip().splitlines()[-1])]


# --------------------------------------------------------------------------- person (real photos)


def person_set(limit: int | None) -> list[str]:
    names = [ln.split("\t")[0] for ln in (PEOPLE / "labels.tsv").read_text().splitlines()[1:]]
    return names[:limit] if limit else names


def bench_selfie_tflite(limit: int | None, path: str) -> None:
    """The selfie model through OpenCV: IoU on the person set, ms per mask at 1024 px (model and resizes)."""
    if not (PEOPLE / "labels.tsv").exists():
        print(f"selfie: no data at {PEOPLE}; run bench/data/get_masks.py first")
        return
    segment = selfie_tflite(path)
    scores, secs = [], []
    for name in person_set(limit):
        image = Image.open(PEOPLE / "images" / f"{name}.jpg").convert("RGB")
        scores.append(iou(segment(image), truth(PEOPLE / "masks" / f"{name}.png", image.size)))
        big = at_1024(image)
        t = time.perf_counter()
        segment(big)
        secs.append(time.perf_counter() - t)
    print(f"person, MediaPipe's selfie model run by OpenCV dnn (readNetFromTFLite, {Path(path).name}):")
    print(f"  IoU {summary(scores)}; {np.median(secs) * 1000:.0f} ms/mask at 1024 px")


def bench_people(limit: int | None, mp_python: str | None) -> None:
    if not (PEOPLE / "labels.tsv").exists():
        print(f"person: no data at {PEOPLE}; run bench/data/get_masks.py first")
        return
    names = person_set(limit)
    person, with_face, subject, secs = [], [], [], []
    found = 0
    for name in names:
        image = Image.open(PEOPLE / "images" / f"{name}.jpg").convert("RGB")
        gt = truth(PEOPLE / "masks" / f"{name}.png", image.size)
        t = time.perf_counter()
        d = keep_mask(image, "person")
        secs.append(time.perf_counter() - t)
        score = iou(kept(d.mask), gt)
        person.append(score)
        if d.faces:
            found += 1
            with_face.append(score)
        subject.append(iou(kept(keep_mask(image, "subject").mask), gt))
    print(f"person, GrabCut seeded by faces (real photos, {len(names)}; a face found in {found}):")
    print(f"  keep person  IoU {summary(person)}; {np.mean(secs):.2f} s/mask at the photos' own size")
    print(f"  with a face  IoU {summary(with_face)}")
    print(f"  keep subject IoU {summary(subject)}")
    if mp_python:
        with tempfile.TemporaryDirectory() as tmp:
            for model, label in ((0, "general 256x256"), (1, "landscape 144x256")):
                jobs = [(str(PEOPLE / "images" / f"{n}.jpg"), f"{tmp}/{n}-{model}.png", model) for n in names]
                times = mediapipe(mp_python, jobs)
                scores = [iou(np.asarray(Image.open(dst)) > 127,
                              truth(PEOPLE / "masks" / f"{n}.png", Image.open(src).size))
                          for (src, dst, _), n in zip(jobs, names)]
                print(f"  MediaPipe selfie ({label}) IoU {summary(scores)}; {np.mean(times) * 1000:.0f} ms/mask")


# --------------------------------------------------------------------------- product (composites)


def product_render(rng: np.random.Generator, height: int) -> Image.Image:
    """An RGBA product shot without its backdrop: a bottle, box, mug or can, shaded left to right."""
    kind = ["bottle", "box", "mug", "can"][int(rng.integers(4))]
    w = int(height * {"bottle": 0.38, "box": 0.7, "mug": 0.85, "can": 0.5}[kind])
    colour = tuple(int(c) for c in rng.integers(20, 235, 3))
    alpha = Image.new("L", (w, height), 0)
    d = ImageDraw.Draw(alpha)
    if kind == "bottle":
        d.rounded_rectangle((0, int(0.35 * height), w - 1, height - 1), radius=w // 4, fill=255)
        d.rectangle((int(0.33 * w), int(0.05 * height), int(0.67 * w), int(0.4 * height)), fill=255)
        d.rectangle((int(0.3 * w), 0, int(0.7 * w), int(0.1 * height)), fill=255)
    elif kind == "box":
        d.rectangle((0, 0, w - 1, height - 1), fill=255)
    elif kind == "mug":
        d.rounded_rectangle((0, int(0.15 * height), int(0.75 * w), height - 1), radius=w // 10, fill=255)
        d.ellipse((int(0.6 * w), int(0.35 * height), w - 1, int(0.75 * height)), fill=255)
        d.ellipse((int(0.7 * w), int(0.45 * height), int(0.9 * w), int(0.65 * height)), fill=0)
    else:
        d.rounded_rectangle((0, 0, w - 1, height - 1), radius=w // 6, fill=255)
    shade = np.linspace(1.25, 0.6, w)[None, :, None]
    rgb = np.clip(np.asarray(colour, np.float32)[None, None, :] * shade * np.ones((height, 1, 1)), 0, 255)
    body = Image.fromarray(rgb.astype(np.uint8), "RGB")
    if kind in ("box", "bottle", "can"):  # a label band in a contrasting colour
        ImageDraw.Draw(body).rectangle((0, int(0.55 * height), w, int(0.75 * height)),
                                       fill=tuple(255 - c for c in colour))
    body.putalpha(alpha)
    return body


def composites(rng: np.random.Generator) -> list[tuple[str, Image.Image, np.ndarray]]:
    photos = [(p.stem, Image.open(p).convert("RGB")) for p in sorted(KODAK.glob("kodim*.png"))]
    scenes = photos + [(f"blur-{name}", photo.filter(ImageFilter.GaussianBlur(5))) for name, photo in photos]
    for i in range(12):  # plain studio backdrops: a light or dark vertical gradient
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        ramp = np.linspace(0, 1, 512)[:, None, None]
        grad = (top * (1 - ramp) + bottom * ramp) * np.ones((1, 768, 1))
        scenes.append((f"plain{i}", Image.fromarray(grad.astype(np.uint8), "RGB")))
    out = []
    for name, scene in scenes:
        w, h = scene.size
        product = product_render(rng, int(h * rng.uniform(0.35, 0.6)))
        cx = w / 2 + rng.uniform(-0.2, 0.2) * w
        cy = h / 2 + rng.uniform(-0.12, 0.12) * h
        x0, y0 = int(cx - product.width / 2), int(cy - product.height / 2)
        image = scene.copy()
        shadow = Image.new("RGBA", product.size, (0, 0, 0, 0))
        shadow.putalpha(product.getchannel("A").point(lambda a: a // 3).filter(ImageFilter.GaussianBlur(6)))
        image.paste(shadow, (x0 + 8, y0 + 8), shadow)
        image.paste(product, (x0, y0), product)
        mask = Image.new("L", image.size, 0)
        mask.paste(product.getchannel("A"), (x0, y0))
        out.append((name, image, np.asarray(mask) > 127))
    return out


def bench_products(limit: int | None) -> None:
    if not KODAK.exists():
        print(f"product: no Kodak photos at {KODAK}; run bench/data/get_photos.py first")
        return
    rng = np.random.default_rng(0)
    cases = composites(rng)[: limit or None]
    scores: dict[str, list[float]] = {"kodim": [], "blur": [], "plain": []}
    for name, img, gt in cases:
        scores[name.split("-")[0].rstrip("0123456789")].append(iou(kept(keep_mask(img, "product").mask), gt))
    print("product, GrabCut seeded by saliency (synthetic products pasted with known masks):")
    print(f"  on sharp Kodak photos (their own subjects compete) IoU {summary(scores['kodim'])}")
    print(f"  on the same photos out of focus (sigma 5)          IoU {summary(scores['blur'])}")
    print(f"  on plain studio backdrops                          IoU {summary(scores['plain'])}")


# --------------------------------------------------------------------------- text (compose posters)


def posters() -> list[tuple[Image.Image, np.ndarray, np.ndarray]]:
    from agent.backends.compose import render
    from agent.models import Box, Plan, Style, TextElement

    layouts = [
        [("GRAND OPENING", Box(x=0.08, y=0.1, w=0.84, h=0.2)), ("Saturday at noon", Box(x=0.2, y=0.75, w=0.6, h=0.1))],
        [("SUMMER SALE", Box(x=0.1, y=0.4, w=0.8, h=0.22))],
        [("Jazz Night", Box(x=0.1, y=0.08, w=0.5, h=0.15)), ("Live at the Blue Room", Box(x=0.1, y=0.28, w=0.6, h=0.08)),
         ("Tickets 20", Box(x=0.55, y=0.82, w=0.35, h=0.1))],
    ]
    styles = [Style(background="gradient"), Style(background="texture", texture_strength=0.3),
              Style(background="solid", palette=["#f4efe6", "#c0392b", "#222222"], text_color="#222222")]
    out = []
    for layout in layouts:
        for style in styles:
            text = [TextElement(id=f"t{i}", content=c, region=r) for i, (c, r) in enumerate(layout)]
            plan = Plan(prompt="a poster", width=1024, height=1024, aspect_ratio="1:1", size="1K", text=text,
                        style=style)
            with_text, _ = render(plan, 0, None)
            without, _ = render(plan.model_copy(update={"text": []}), 0, None)
            glyphs = np.abs(np.asarray(with_text, np.int16) - np.asarray(without, np.int16)).max(axis=2) > 40
            boxes = np.zeros_like(glyphs)
            for el in text:
                r = el.region
                x0, y0, x1, y1 = int(r.x * 1024), int(r.y * 1024), int((r.x + r.w) * 1024), int((r.y + r.h) * 1024)
                ys, xs = np.nonzero(glyphs[y0:y1, x0:x1])
                if len(xs):
                    pad = max(3, round(0.3 * (ys.max() - ys.min())))
                    boxes[max(0, y0 + ys.min() - pad):y0 + ys.max() + pad, max(0, x0 + xs.min() - pad):x0 + xs.max() + pad] = True
            out.append((with_text, glyphs, boxes))
    return out


def bench_text(limit: int | None) -> None:
    recall, overlap = [], []
    for image, glyphs, boxes in posters()[: limit or None]:
        k = kept(keep_mask(image, "text").mask)
        recall.append(float(k[glyphs].mean()) if glyphs.any() else 1.0)
        overlap.append(iou(k, boxes))
    print("text, OCR boxes padded (compose posters, glyphs known):")
    print(f"  glyph pixels kept {summary(recall)}")
    print(f"  IoU with padded glyph boxes {summary(overlap)}")


# --------------------------------------------------------------------------- clothing (real faces)


def bench_clothing(limit: int | None) -> None:
    if not FACES.exists():
        print(f"clothing: no faces at {FACES}")
        return
    in_face, shares = [], []
    for path in sorted(FACES.glob("*.jpg"))[: limit or None]:
        image = Image.open(path).convert("RGB")
        d = derive_mask(image, "change the jacket to red")
        m = np.asarray(d.mask) > 127
        for x0, y0, x1, y1 in d.faces[:1]:
            in_face.append(float(m[y0:y1, x0:x1].mean()))
        shares.append(d.share)
    print(f"clothing (the {len(shares)} face photos, no ground truth):")
    print(f"  share of the face box in the clothing mask {summary(in_face)}; mask share {summary(shares)}")


# --------------------------------------------------------------------------- speed at 1024 px


def at_1024(image: Image.Image) -> Image.Image:
    s = 1024 / max(image.size)
    return image.resize((round(image.width * s), round(image.height * s)), Image.Resampling.LANCZOS)


def bench_speed(mp_python: str | None) -> None:
    people = [at_1024(Image.open(p).convert("RGB")) for p in sorted(FACES.glob("*.jpg"))[:5]] if FACES.exists() else []
    products = [at_1024(img) for _, img, _ in composites(np.random.default_rng(1))[:5]] if KODAK.exists() else []
    text = [img for img, _, _ in posters()[:5]]
    runs: list[tuple[str, list[Image.Image], Callable[[Image.Image], object]]] = [
        ("person (GrabCut + YuNet)", people, lambda im: keep_mask(im, "person")),
        ("clothing", people, lambda im: derive_mask(im, "make his jacket red")),
        ("product (saliency + GrabCut)", products, lambda im: keep_mask(im, "product")),
        ("text (OCR)", text, lambda im: keep_mask(im, "text")),
    ]
    print("seconds per mask at 1024 px (median of 5):")
    for label, images, fn in runs:
        if not images:
            continue
        fn(images[0])  # load models
        secs = []
        for im in images:
            t = time.perf_counter()
            fn(im)
            secs.append(time.perf_counter() - t)
        print(f"  {label:30s} {np.median(secs):.3f} s")
    if mp_python and people:
        with tempfile.TemporaryDirectory() as tmp:
            jobs = []
            for i, im in enumerate(people):
                im.save(f"{tmp}/{i}.png")
                jobs += [(f"{tmp}/{i}.png", f"{tmp}/{i}-0.png", 0), (f"{tmp}/{i}.png", f"{tmp}/{i}-1.png", 1)]
            times = mediapipe(mp_python, jobs)
            print(f"  {'MediaPipe selfie (general)':30s} {np.median(times[0::2]):.3f} s")
            print(f"  {'MediaPipe selfie (landscape)':30s} {np.median(times[1::2]):.3f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="at most this many images per kind")
    ap.add_argument("--mediapipe", default=None, help="a Python with mediapipe==0.10.14 installed")
    ap.add_argument("--selfie-tflite", default=None,
                    help="selfie_segmentation.tflite (inside the mediapipe wheel), run by OpenCV dnn in this venv")
    ap.add_argument("--only", default="person,selfie,product,text,clothing,speed")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    print(machine())
    t0 = time.perf_counter()
    if "person" in only:
        bench_people(args.limit, args.mediapipe)
    if "selfie" in only and args.selfie_tflite:
        bench_selfie_tflite(args.limit, args.selfie_tflite)
    if "product" in only:
        bench_products(args.limit)
    if "text" in only:
        bench_text(args.limit)
    if "clothing" in only:
        bench_clothing(args.limit)
    if "speed" in only:
        bench_speed(args.mediapipe)
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
