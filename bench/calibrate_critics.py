"""Calibrate every critic on labelled data and print accuracy, ROC AUC, false alarms and thresholds.

Data (all offline):
- ocr: posters rendered by compose with known text, correct vs one-character misspellings;
- ocr on real text: 200 IIIT 5K-word crops (bench/data/README.md) and pixloop's own posters
  (bench/real_text.py), printed as a table of its own after the others;
- face: ../shared/data/faces (labels.csv), same vs different identity pairs, the candidate photo
  pasted into a poster canvas;
- artifacts: scikit-image's bundled photos, clean vs blurred / noisy / JPEG q5 / over-exposed /
  posterised / copy-moved, plus clean compose posters (flat, gradient, texture); then, per sub-check, real
  photos (LIVE and Kodak) with the LIVE database's own and derived distortions (bench/real_photos.py);
- spec: renders at the requested size vs wrong size, wrong ratio and blank images;
- preservation: edits inside the mask vs edits that also change the outside.

"Positive" = an image that should pass. The chosen threshold maximises balanced accuracy
(ties: the midpoint of the gap); the table also shows the shipped default's error rates.

    python bench/calibrate_critics.py [--quick]
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import random
import sys
import tempfile
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
sys.path.append(str(_BENCH))

import numpy as np  # noqa: E402
from _machine import machine  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from agent.backends.compose import render  # noqa: E402
from agent.models import Box, CheckSpec, Plan, Style, Subject, TextElement, canvas_size  # noqa: E402
from agent.runtime.store import ArtifactStore  # noqa: E402
from critics import (  # noqa: E402
    CheckContext,
    critic_info,  # noqa: E402
    critic_names,
    get_critic,
)

FACES = _BENCH.parents[1] / "shared" / "data" / "faces"
WORDS = ["GRAND", "OPENING", "SUMMER", "SALE", "FRESH", "COFFEE", "LIVE", "MUSIC", "TONIGHT", "BAKERY",
         "WEEKEND", "MARKET", "Saturday", "noon", "Free", "entry", "Garden", "Party", "Books", "Jazz"]


def auc(pos: list[float], neg: list[float]) -> float:
    """ROC AUC as the Mann-Whitney probability that a positive outscores a negative (ties count half)."""
    if not pos or not neg:
        return float("nan")
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def best_threshold(pos: list[float], neg: list[float]) -> float:
    cands = sorted(set(pos) | set(neg))
    best, best_acc = 0.5, -1.0
    for lo, hi in zip(cands, cands[1:] + [1.0 + 1e-9]):
        t = (lo + hi) / 2 if hi <= 1 else min(1.0, lo + 1e-6)
        acc = (np.mean([s >= t for s in pos]) + np.mean([s < t for s in neg])) / 2
        if acc > best_acc + 1e-12:
            best, best_acc = t, acc
    return round(min(1.0, best), 3)


def poster(text: str, seed: int, style: Style) -> Image.Image:
    w, h = canvas_size("16:9", "1K")
    plan = Plan(prompt="p", width=w, height=h, aspect_ratio="16:9", size="1K", style=style,
                text=[TextElement(id="headline", content=text, region=Box(x=.08, y=.25, w=.84, h=.5))])
    return render(plan, seed, None)[0]


def misspell(text: str, rng: random.Random) -> str:
    words = text.split()
    i = rng.randrange(len(words))
    w = list(words[i])
    j = rng.randrange(len(w))
    op = rng.choice(["sub", "del", "ins", "swap"])
    letters = "ABCDEFGHIJKLMNOPRSTUVW" if w[j].isupper() else "abcdefghijklmnoprstuvw"
    if op == "sub":
        w[j] = rng.choice([c for c in letters if c != w[j].upper() and c != w[j]])
    elif op == "del" and len(w) > 2:
        del w[j]
    elif op == "ins":
        w.insert(j, rng.choice(letters))
    elif len(w) > 1:
        k = min(j + 1, len(w) - 1) if j < len(w) - 1 else j - 1
        w[j], w[k] = w[k], w[j]
        if w == list(words[i]):
            w[j] = rng.choice([c for c in letters if c != w[j]])
    words[i] = "".join(w)
    return " ".join(words)


def calibrate_ocr(n: int) -> tuple[list[float], list[float]]:
    critic, rng = get_critic("ocr"), random.Random(7)
    styles = [Style(background="solid", font="lato-black", palette=["#1d2b4f", "#3f6fb5", "#f2c14e"]),
              Style(background="gradient", font="lato-bold", palette=["#0b3d20", "#2d6a4f", "#b7e4c7"]),
              Style(background="texture", font="lato-black", text_plate=True, texture_strength=0.8,
                    palette=["#6b2c00", "#e85d04", "#ffe8a3"]),
              Style(background="solid", font="serif-bold", palette=["#f5f5f0", "#dcdcd2", "#1f1f1f"],
                    text_color="#111111")]
    pos, neg = [], []
    for i in range(n):
        text = " ".join(rng.sample(WORDS, rng.choice([1, 2, 3])))
        style = styles[i % len(styles)]
        plan = Plan(prompt="p", width=1024, height=576, aspect_ratio="16:9", size="1K",
                    text=[TextElement(id="headline", content=text, region=Box(x=.08, y=.25, w=.84, h=.5))],
                    checks={"ocr": CheckSpec(threshold=0.9)})
        ctx = CheckContext(candidate_id=f"o{i}")
        pos.append(critic.check(poster(text, i, style), plan, ctx).score)
        neg.append(critic.check(poster(misspell(text, rng), i, style), plan, ctx).score)
    return pos, neg


def _paste_photo(path: Path) -> Image.Image:
    canvas = Image.new("RGB", (1024, 1024), (236, 230, 220))
    photo = Image.open(path).convert("RGB")
    photo.thumbnail((700, 700))
    canvas.paste(photo, ((1024 - photo.width) // 2, (1024 - photo.height) // 2))
    return canvas


def calibrate_face(store: ArtifactStore) -> tuple[list[float], list[float]]:
    if "face" not in critic_names() or not (FACES / "labels.csv").exists():
        return [], []
    critic = get_critic("face")
    rows = list(csv.DictReader(open(FACES / "labels.csv")))
    refs = {r["file"]: store.put_file(FACES / r["file"]) for r in rows}
    cands = {r["file"]: _paste_photo(FACES / r["file"]) for r in rows}
    pos, neg = [], []
    for a, b in itertools.permutations(rows, 2):
        if a["file"] == b["file"]:
            continue
        plan = Plan(prompt="a portrait", width=1024, height=1024, aspect_ratio="1:1", size="1K",
                    subjects=[Subject(id="person1", kind="person", reference=refs[a["file"]],
                                      region=Box(x=.1, y=.1, w=.8, h=.8))],
                    checks={"face": CheckSpec(threshold=critic_info("face").threshold)})
        v = critic.check(cands[b["file"]], plan, CheckContext(candidate_id="f", store=store,
                                                               references=[refs[a["file"]]]))
        (pos if a["identity"] == b["identity"] else neg).append(v.score)
    return pos, neg


def degrade(img: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    if kind == "blur":
        return img.filter(ImageFilter.GaussianBlur(3))
    if kind == "noise":
        a = np.asarray(img, np.float32) + rng.normal(0, 25, (img.height, img.width, 3))
        return Image.fromarray(a.clip(0, 255).astype(np.uint8))
    if kind == "jpeg":
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=5)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if kind == "overexposed":
        return Image.fromarray((np.asarray(img, np.float32) * 2).clip(0, 255).astype(np.uint8))
    if kind == "posterised":
        from PIL import ImageOps

        return ImageOps.posterize(img, 3)
    if kind == "copy_move":
        out = img.copy()
        s = min(img.size) // 5
        patch = img.crop((img.width // 8, img.height // 8, img.width // 8 + s, img.height // 8 + s))
        out.paste(patch, (img.width - s - img.width // 10, img.height - s - img.height // 10))
        return out
    raise ValueError(kind)


def calibrate_artifacts() -> tuple[list[float], list[float], dict[str, list[float]], list[float]]:
    if "artifacts" not in critic_names():
        return [], [], {}, []
    from skimage import data

    critic, rng = get_critic("artifacts"), np.random.default_rng(3)
    photos = [Image.fromarray(getattr(data, n)()).convert("RGB") for n in
              ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")]
    photo_plan = Plan(prompt="a photo", width=512, height=512, aspect_ratio="1:1", size="1K",
                      style=Style(background="image"), checks={"artifacts": CheckSpec(threshold=0.5)})
    pos, neg, by_kind, posters = [], [], {}, []
    for i, img in enumerate(photos):
        ctx = CheckContext(candidate_id=f"a{i}")
        pos.append(critic.check(img, photo_plan, ctx).score)
        for kind in ("blur", "noise", "jpeg", "overexposed", "posterised", "copy_move"):
            s = critic.check(degrade(img, kind, rng), photo_plan, ctx).score
            neg.append(s)
            by_kind.setdefault(kind, []).append(s)
    for i, bg in enumerate(["solid", "gradient", "texture", "solid", "gradient", "texture"]):
        style = Style(background=bg, font="lato-black", text_plate=bg == "texture", texture_strength=0.8)
        img = poster("GRAND OPENING", i, style)
        plan = Plan(prompt="a poster", width=img.width, height=img.height, aspect_ratio="16:9", size="1K",
                    style=style, checks={"artifacts": CheckSpec(threshold=0.5)})
        s = critic.check(img, plan, CheckContext(candidate_id=f"p{i}")).score
        posters.append(s)
        pos.append(s)
    return pos, neg, by_kind, posters


def calibrate_spec() -> tuple[list[float], list[float]]:
    critic = get_critic("spec")
    pos, neg = [], []
    for i, ratio in enumerate(["1:1", "16:9", "9:16", "4:5", "21:9", "3:2"]):
        w, h = canvas_size(ratio, "1K")
        plan = Plan(prompt="p", width=w, height=h, aspect_ratio=ratio, size="1K",
                    checks={"spec": CheckSpec(threshold=critic_info("spec").threshold)})
        good = poster("SPEC", i, Style(background="gradient")).resize((w, h))
        ctx = CheckContext(candidate_id="s")
        pos.append(critic.check(good, plan, ctx).score)
        neg.append(critic.check(good.resize((w // 2, h // 2)), plan, ctx).score)
        neg.append(critic.check(good.resize((w, int(h * 1.3))), plan, ctx).score)
        neg.append(critic.check(Image.new("RGB", (w, h), "white"), plan, ctx).score)
    return pos, neg


def calibrate_preservation(store: ArtifactStore) -> tuple[list[float], list[float]]:
    from skimage import data

    critic = get_critic("preservation")
    pos, neg = [], []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        original = Image.fromarray(getattr(data, name)()).convert("RGB")
        w, h = original.size
        mask = Image.new("L", (w, h), 0)
        box = (w // 3, h // 3, w // 3 + w // 4, h // 3 + h // 4)
        ImageDraw.Draw(mask).rectangle(box, fill=255)
        plan = Plan(prompt="edit", width=w, height=h, aspect_ratio="1:1", size="1K",
                    source=store.put_image(original), mask=store.put_image(mask),
                    checks={"preservation": CheckSpec(threshold=critic_info("preservation").threshold)})
        ctx = CheckContext(candidate_id="e", store=store)
        inside = original.copy()
        ImageDraw.Draw(inside).ellipse(box, fill=(30, 160, 60))
        pos.append(critic.check(inside, plan, ctx).score)
        pos.append(critic.check(inside.filter(ImageFilter.GaussianBlur(0.6)), plan, ctx).score)
        outside = inside.copy()
        ImageDraw.Draw(outside).rectangle((10, 10, w // 4, h // 4), fill=(240, 240, 20))
        neg.append(critic.check(outside, plan, ctx).score)
        neg.append(critic.check(original, plan, ctx).score)  # nothing changed inside
        shifted = Image.fromarray(np.roll(np.asarray(inside), 12, axis=1))
        neg.append(critic.check(shifted, plan, ctx).score)
    return pos, neg


def calibrate_ocr_real(quick: bool) -> None:
    """The OCR critic on real scene text (IIIT 5K-word crops, bench/data/README.md) and on pixloop's own
    posters: recall of correct labels and false acceptance of one-letter misspellings (bench/real_text.py)."""
    from real_text import load_scene_text, pixloop_cases, report

    print("\nOCR on real scene text (IIIT5K test subset, tight crops and with a plain margin) and pixloop's posters")
    report(get_critic("ocr"), load_scene_text(limit=50 if quick else None), pixloop_cases())


def calibrate_artifacts_real(quick: bool) -> None:
    """The artifact critic on real photos (LIVE and Kodak, with the LIVE database's own and derived distortions,
    bench/data/README.md) and on pixloop's posters: accuracy, false alarms and misses per sub-check
    (bench/real_photos.py)."""
    from real_photos import report as photos_report

    print("\nartifacts on real photos and their standard distortions, and on pixloop's posters/flyers")
    photos_report(quick=quick)


def calibrate_reference(quick: bool) -> None:
    """The reference critic on real photos (bench/reference.py): object crops of Kodak/LIVE photos and product
    renders pasted into other photos at 4 scales, 2 rotations, +-25% lighting and 30% covered must pass; the
    photos without them, with another object, or with a re-coloured product or a plain decoy, must fail. Printed
    as a row of the table above."""
    from reference import CLEAN, scores

    if not CLEAN.exists() or not any(CLEAN.iterdir()):
        row("reference", [], [])
        return
    row("reference", *scores(quick))


def row(name: str, pos: list[float], neg: list[float]) -> None:
    if not pos or not neg:
        print(f"{name:<13} (no data: critic or data set unavailable)")
        return
    t = critic_info(name).threshold
    fa = float(np.mean([s < t for s in pos]))
    miss = float(np.mean([s >= t for s in neg]))
    acc = (1 - fa + 1 - miss) / 2
    print(f"{name:<13} {len(pos):>4} {len(neg):>4} {auc(pos, neg):>7.3f} {acc:>9.3f} {fa:>8.3f} {miss:>7.3f} "
          f"{t:>8.2f} {best_threshold(pos, neg):>8.3f}   pass [{min(pos):.2f}..{max(pos):.2f}] "
          f"fail [{min(neg):.2f}..{max(neg):.2f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer OCR posters (12 instead of 40)")
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(tmp)
        results = {
            "ocr": calibrate_ocr(12 if args.quick else 40),
            "face": calibrate_face(store),
            "spec": calibrate_spec(),
            "preservation": calibrate_preservation(store),
        }
        a_pos, a_neg, by_kind, posters = calibrate_artifacts()
        results["artifacts"] = (a_pos, a_neg)
    print("positives should pass, negatives should fail; accuracy = balanced accuracy at the default threshold")
    print(f"{'critic':<13} {'pos':>4} {'neg':>4} {'ROC AUC':>7} {'accuracy':>9} {'false':>8} {'missed':>7} "
          f"{'default':>8} {'best':>8}")
    print(f"{'':<13} {'':>4} {'':>4} {'':>7} {'':>9} {'alarms':>8} {'':>7} {'thresh.':>8} {'thresh.':>8}")
    for name in ("ocr", "face", "artifacts", "spec", "preservation"):
        row(name, *results[name])
    calibrate_reference(args.quick)
    if by_kind:
        t = critic_info("artifacts").threshold
        print("artifacts by degradation (flagged / total): " + ", ".join(
            f"{k} {sum(s < t for s in v)}/{len(v)}" for k, v in by_kind.items())
            + f"; clean posters falsely flagged {sum(s < t for s in posters)}/{len(posters)}")
    calibrate_ocr_real(args.quick)
    calibrate_artifacts_real(args.quick)


if __name__ == "__main__":
    main()
