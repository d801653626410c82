"""The OCR critic on real scene text and on pixloop's own posters: is the correct label passed, is a
one-letter misspelling of it failed?

Real data: 200 cropped words of IIIT 5K-word's test split with their official transcriptions, rebuilt by
``bench/data/get_scene_text.py`` into bench/data/scene_text/ (bench/data/README.md, "Scene text (OCR)").
Each word is checked as the tight benchmark crop and with a plain margin (half the crop's height, in the
crop's border colour), against its label and against a one-letter misspelling of it.

pixloop's own cases: compose posters at 512/1024/2048/4096 px, text plates, light-on-dark and dark-on-light,
small text, a huge word, the typeset_text correction (white "HELLO" on a coffee-brown plate at 1024 px),
an em dash, and CJK (Chinese and Japanese are read; Korean is reported as unverifiable).

    python bench/real_text.py [--words N] [--sweep]

``--sweep`` measures what each detection setting costs and buys (recall of correct labels, seconds per
check) on the first N words and the pixloop cases; calibrate_critics.py prints the default's table.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
sys.path.append(str(_BENCH))

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from agent.backends.compose import render  # noqa: E402
from agent.models import Box, CheckSpec, Plan, Style, TextElement, canvas_size  # noqa: E402
from critics.base import CheckContext  # noqa: E402
from critics.ocr import OcrCritic  # noqa: E402
from critics.ocr.detection import DetParams  # noqa: E402
from critics.ocr.multiscale import ScanSettings  # noqa: E402

SCENE_TEXT = _BENCH / "data" / "scene_text"
COFFEE = ["#3e2723", "#795548", "#ffe0b2"]


# --------------------------------------------------------------------------- labels and images


def misspell_one_letter(word: str, rng: random.Random) -> str:
    """One letter (or digit) substituted, deleted or inserted, or two adjacent ones swapped; spaces are left
    alone and a change of case alone does not count (matching is caseless by default)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    spots = [i for i, ch in enumerate(word) if ch.isalnum()]
    for _ in range(50):
        w = list(word)
        j = rng.choice(spots)
        op = rng.choice(["sub", "del", "ins", "swap"])
        new = rng.choice(letters)
        new = new.upper() if w[j].isupper() else new
        if op == "sub":
            w[j] = new
        elif op == "del" and len(spots) > 2:
            del w[j]
        elif op == "ins":
            w.insert(j, new)
        elif op == "swap" and j + 1 in spots:
            w[j], w[j + 1] = w[j + 1], w[j]
        out = "".join(w)
        if out.casefold() != word.casefold():
            return out
    raise ValueError(f"cannot misspell {word!r}")


def with_margin(image: Image.Image) -> Image.Image:
    """The crop on a plain margin of its own border colour, half its height wide on every side."""
    rgb = image.convert("RGB")
    a = np.asarray(rgb)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    colour = tuple(int(v) for v in np.median(border, axis=0))
    return ImageOps.expand(rgb, border=max(8, rgb.height // 2), fill=colour)


def word_plan(image: Image.Image, text: str, exact: bool = False) -> Plan:
    """A plan that requires `text` anywhere in the image (what `pixloop check --text` builds)."""
    return Plan(prompt="check", width=image.width, height=image.height, aspect_ratio="1:1", size="1K",
                text=[TextElement(id="text1", content=text, region=Box(x=0, y=0, w=1, h=1), exact=exact)],
                checks={"ocr": CheckSpec(threshold=0.9)})


def load_scene_text(root: Path = SCENE_TEXT, limit: int | None = None) -> list[tuple[str, Image.Image, str]]:
    """(file, image, label) of the rebuilt subset; [] when it has not been rebuilt."""
    labels = root / "labels.tsv"
    if not labels.is_file():
        return []
    rows = list(csv.DictReader(labels.open(encoding="utf-8"), delimiter="\t"))[:limit]
    out = []
    for r in rows:
        img = Image.open(root / r["file"])
        img.load()
        out.append((r["file"], img.convert("RGB"), r["label"]))
    return out


# --------------------------------------------------------------------------- pixloop's own cases


@dataclass
class Case:
    name: str
    image: Image.Image
    plan: Plan
    expect: str  # "pass" | "fail" | "unavailable"


def _poster(size: tuple[int, int], texts: list[tuple[str, Box]], style: Style, seed: int = 0) -> tuple[Image.Image, Plan]:
    w, h = size
    ratio = {(1, 1): "1:1"}.get((w // min(w, h), h // min(w, h)), "16:9" if w > h else "9:16")
    plan = Plan(prompt="poster", width=w, height=h, aspect_ratio=ratio, size="1K", style=style,
                text=[TextElement(id=f"t{i}", content=t, role="headline" if i == 0 else "subheading", region=b)
                      for i, (t, b) in enumerate(texts)], checks={"ocr": CheckSpec(threshold=0.9)})
    return render(plan, seed, None)[0], plan


def pixloop_cases(rng: random.Random | None = None) -> list[Case]:
    """Posters the loop makes (each with its correct plan, and a copy whose first element is misspelt)."""
    from agent.loop.generation import typeset

    rng = rng or random.Random(5)
    head, sub = Box(x=.07, y=.12, w=.86, h=.36), Box(x=.12, y=.62, w=.76, h=.14)
    small = Box(x=.3, y=.9, w=.4, h=.04)
    cases: list[tuple[str, Image.Image, Plan]] = []
    for long_side in (512, 1024, 2048, 4096):
        for ratio in ("1:1", "16:9"):
            size = canvas_size(ratio, "1K")
            size = (size[0] * long_side // 1024, size[1] * long_side // 1024)
            img, plan = _poster(size, [("GRAND OPENING", head), ("Saturday at noon", sub)],
                                Style(background="gradient", font="lato-black"))
            cases.append((f"poster {size[0]}x{size[1]}", img, plan))
    styles = {
        "plate on texture": Style(background="texture", font="lato-black", text_plate=True, texture_strength=0.9,
                                  palette=["#6b2c00", "#e85d04", "#ffe8a3"]),
        "light on dark": Style(background="solid", font="lato-bold", palette=["#0d0d0d", "#2b2b2b", "#e0e0e0"],
                               text_color="#f5f5f5"),
        "dark on light": Style(background="solid", font="serif-bold", palette=["#f5f5f0", "#dcdcd2", "#1f1f1f"],
                               text_color="#111111"),
        "thin on gradient": Style(background="gradient", font="lato-light", palette=["#0b2545", "#13315c", "#8da9c4"]),
    }
    for name, style in styles.items():
        for long_side in (1024, 2048):
            img, plan = _poster((long_side, long_side), [("SUMMER SALE", head), ("Free entry", sub)], style)
            cases.append((f"{name} {long_side}", img, plan))
    for long_side in (1024, 4096):
        img, plan = _poster((long_side, long_side * 9 // 16), [("LIVE MUSIC", head), ("Doors open at seven", small)],
                            Style(background="gradient", font="lato-bold"))
        cases.append((f"small text {long_side}", img, plan))
    fine_print = Box(x=.35, y=.93, w=.3, h=.025)
    for long_side in (1024, 2048):
        img, plan = _poster((long_side, long_side), [("BOOK FAIR", head), ("Tickets at the door", fine_print)],
                            Style(background="solid", font="lato-regular", palette=["#f5f5f0", "#dcdcd2", "#1f1f1f"],
                                  text_color="#222222"))
        cases.append((f"fine print {long_side}", img, plan))
    for long_side in (1024, 2048):
        img, plan = _poster((long_side, long_side), [("SALE", Box(x=.02, y=.05, w=.96, h=.9))],
                            Style(background="solid", font="lato-black", text_scale=1.0))
        cases.append((f"huge word {long_side}", img, plan))
    base, plan = _poster((1024, 1024), [("HELLO", Box(x=.07, y=.2, w=.86, h=.6))],
                         Style(background="texture", font="lato-thin", palette=COFFEE, text_color="#4a3530"))
    img, _ = typeset(base, plan, ["t0"], 0)
    cases.append(("typeset white plate 1024", img, plan))
    for long_side in (512, 1024, 2048):
        base, plan = _poster((long_side, long_side), [("HELLO", Box(x=.1, y=.35, w=.8, h=.3))],
                             Style(background="gradient", font="lato-black", text_plate=True, palette=COFFEE,
                                   text_color="#ffffff"))
        cases.append((f"white on brown plate {long_side}", base, plan))
    img, plan = _poster((1024, 1024), [("Open \u2014 9am", head)], Style(font="lato-bold"))
    cases.append(("em dash", img, plan))
    for text in ("你好世界", "こんにちは"):
        for long_side in (1024, 2048):
            img, plan = _poster((long_side, long_side), [(text, head)], Style(font="lato-black"))
            cases.append((f"CJK {text} {long_side}", img, plan))
    out = []
    for name, img, plan in cases:
        out.append(Case(name, img, plan, "pass"))
        first = plan.text[0]
        wrong = misspell_one_letter(first.content, rng) if first.content.isascii() else first.content[::-1]
        bad = plan.model_copy(update={"text": [first.model_copy(update={"content": wrong}), *plan.text[1:]]})
        out.append(Case(f"{name} (misspelt '{wrong}')", img, bad, "fail"))
    _, dash_img, dash = next(c for c in cases if c[0] == "em dash")
    for label, exact, expect in (("Open \u2013 9am", False, "pass"), ("Open - 9am", False, "pass"),
                                 ("Open - 9am", True, "fail")):  # one typographic class of dashes, unless exact
        el = dash.text[0].model_copy(update={"content": label, "exact": exact})
        out.append(Case(f"em dash labelled {label!r}{' exact' if exact else ''}", dash_img,
                        dash.model_copy(update={"text": [el]}), expect))
    img, plan = _poster((1024, 1024), [("안녕하세요", head)], Style(font="lato-black"))
    out.append(Case("Korean 1024 (not readable)", img, plan, "unavailable"))
    return out


# --------------------------------------------------------------------------- evaluation


@dataclass
class Tally:
    n: int = 0
    """Correct labels checked."""
    correct_passed: int = 0
    n_wrong: int = 0
    """Wrong labels (one-letter misspellings) checked."""
    wrong_failed: int = 0
    seconds: list[float] | None = None

    def row(self, name: str) -> str:
        nan = float("nan")
        recall = self.correct_passed / self.n if self.n else nan
        false_acc = 1 - self.wrong_failed / self.n_wrong if self.n_wrong else nan
        total = self.n + self.n_wrong
        acc = (self.correct_passed + self.wrong_failed) / total if total else nan
        secs = statistics.median(self.seconds) if self.seconds else nan
        return (f"{name:<34} {self.n:>5} {self.n_wrong:>5} {acc:>9.3f} {recall:>8.3f} {false_acc:>10.3f} "
                f"{secs:>8.3f}")


HEADER = (f"{'set':<34} {'right':>5} {'wrong':>5} {'accuracy':>9} {'recall':>8} {'false acc':>10} {'median s':>8}\n"
          f"{'':<34} {'label':>5} {'label':>5} {'':>9} {'(right':>8} {'(wrong':>10} {'per':>8}\n"
          f"{'':<34} {'':>5} {'':>5} {'':>9} {'passes)':>8} {'passes)':>10} {'check':>8}")


def _timed(critic: OcrCritic, image: Image.Image, plan: Plan) -> tuple[bool, str, float]:
    t0 = time.perf_counter()
    v = critic.check(image, plan, CheckContext(candidate_id="bench"))
    return v.passed, v.feedback, time.perf_counter() - t0


def evaluate_words(critic: OcrCritic, words: Iterable[tuple[str, Image.Image, str]], *, misspelt: bool = True,
                   rng: random.Random | None = None, failures: list[str] | None = None) -> dict[str, Tally]:
    """Per condition (tight crop, with margin): how many correct labels passed and misspellings failed."""
    rng = rng or random.Random(11)
    out = {"tight crop": Tally(seconds=[]), "plain margin": Tally(seconds=[])}
    for name, img, label in words:
        wrong = misspell_one_letter(label, rng)
        for cond, im in (("tight crop", img), ("plain margin", with_margin(img))):
            t = out[cond]
            ok, feedback, secs = _timed(critic, im, word_plan(im, label))
            t.n += 1
            t.correct_passed += ok
            assert t.seconds is not None
            t.seconds.append(secs)
            if not ok and failures is not None:
                failures.append(f"{cond}: {name} '{label}': {feedback[:110]}")
            if misspelt:
                bad, feedback, _ = _timed(critic, im, word_plan(im, wrong))
                t.n_wrong += 1
                t.wrong_failed += not bad
                if bad and failures is not None:
                    failures.append(f"{cond}: {name} '{label}' accepted for '{wrong}'")
    return out


def evaluate_cases(critic: OcrCritic, cases: list[Case], failures: list[str] | None = None) -> Tally:
    """pixloop's posters: a 'pass' case must pass, a 'fail' case fail, an 'unavailable' one be unavailable."""
    t = Tally(seconds=[])
    for c in cases:
        t0 = time.perf_counter()
        v = critic.check(c.image, c.plan, CheckContext(candidate_id="bench"))
        assert t.seconds is not None
        t.seconds.append(time.perf_counter() - t0)
        got = "unavailable" if v.status == "unavailable" else ("pass" if v.passed else "fail")
        if got != c.expect and failures is not None:
            failures.append(f"{c.name}: expected {c.expect}, got {got}: {v.feedback[:110]}")
        if c.expect == "pass":
            t.n += 1
            t.correct_passed += got == "pass"
        elif c.expect == "fail":
            t.n_wrong += 1
            t.wrong_failed += got == "fail"
    return t


def report(critic: OcrCritic, words: list[tuple[str, Image.Image, str]], cases: list[Case],
           show_failures: int = 12) -> None:
    """The calibration table: real words (tight, margin) and pixloop's cases."""
    failures: list[str] = []
    print(HEADER)
    if words:
        for cond, t in evaluate_words(critic, words, failures=failures).items():
            print(t.row(f"IIIT5K test, {cond}"))
    else:
        print("IIIT5K: not rebuilt (python bench/data/get_scene_text.py CHECKOUT; bench/data/README.md)")
    print(evaluate_cases(critic, cases, failures).row("pixloop posters (cases)"))
    for f in failures[:show_failures]:
        print("  miss:", f)
    if len(failures) > show_failures:
        print(f"  ... {len(failures) - show_failures} more")


def legacy_critic() -> OcrCritic:
    """The critic as it was: rapidocr's own pipeline (detector size from the image, min side 736) on the image
    downscaled to 1536 px, one call."""
    from critics.ocr.engines import rapidocr_engine

    engine = rapidocr_engine()

    def rapidocr_pipeline(bgr: np.ndarray) -> object:
        h, w = bgr.shape[:2]
        if max(h, w) > 1536:
            import cv2

            f = 1536 / max(h, w)
            bgr = cv2.resize(bgr, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
            out = engine(bgr)
            if getattr(out, "boxes", None) is not None and len(out.boxes):
                out.boxes = np.asarray(out.boxes) / f
            return out
        return engine(bgr)

    return OcrCritic(engine=rapidocr_pipeline)


SWEEP: list[tuple[str, Callable[[], OcrCritic]]] = [
    ("before: rapidocr pipeline, 1 call", legacy_critic),
    ("pass 1 only, side 512", lambda: OcrCritic(settings=ScanSettings(first_side=512, multiscale=False))),
    ("pass 1 only, side 736", lambda: OcrCritic(settings=ScanSettings(first_side=736, multiscale=False))),
    ("pass 1 only, side 960", lambda: OcrCritic(settings=ScanSettings(first_side=960, multiscale=False))),
    ("passes 1-3, side 512 (default)", lambda: OcrCritic()),
    ("passes 1-3, side 736", lambda: OcrCritic(settings=ScanSettings(first_side=736))),
    ("passes 1-3, side 640", lambda: OcrCritic(settings=ScanSettings(first_side=640))),
    ("passes 1-3, box_thresh 0.3", lambda: OcrCritic(settings=ScanSettings(params=DetParams(box_thresh=0.3)))),
    ("passes 1-3, box_thresh 0.6", lambda: OcrCritic(settings=ScanSettings(params=DetParams(box_thresh=0.6)))),
    ("passes 1-3, unclip 1.4", lambda: OcrCritic(settings=ScanSettings(params=DetParams(unclip_ratio=1.4)))),
    ("passes 1-3, unclip 2.0", lambda: OcrCritic(settings=ScanSettings(params=DetParams(unclip_ratio=2.0)))),
    ("passes 1-3, thresh 0.2", lambda: OcrCritic(settings=ScanSettings(params=DetParams(thresh=0.2)))),
]


def sweep(words: list[tuple[str, Image.Image, str]], cases: list[Case]) -> None:
    """Recall of correct labels and seconds per check for each detection setting (misspellings not checked)."""
    good = [c for c in cases if c.expect == "pass"]
    print(f"{'setting':<36} {'tight':>7} {'margin':>7} {'posters':>8} {'median s':>9} {'max s':>7}"
          f" {'1024 poster s':>14}")
    print(f"{'':<36} {'recall of right labels':>24} {'per check':>17} {'(best of 7)':>14}")
    poster = next(c for c in good if c.name == "poster 1024x1024")
    for name, make in SWEEP:
        critic = make()
        critic.check(poster.image, poster.plan, CheckContext(candidate_id="warm"))
        res = evaluate_words(critic, words, misspelt=False) if words else {}
        t = evaluate_cases(critic, good)
        secs = [s for r in res.values() for s in (r.seconds or [])] + (t.seconds or [])
        p = min(_timed(critic, poster.image, poster.plan)[2] for _ in range(7))
        tight, margin = (res[k].correct_passed / res[k].n if res else float("nan")
                         for k in ("tight crop", "plain margin"))
        print(f"{name:<36} {tight:>7.3f} {margin:>7.3f} {t.correct_passed / t.n:>8.3f} "
              f"{statistics.median(secs):>9.3f} {max(secs):>7.3f} {p:>14.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=None, help="use the first N words (default: all 200)")
    ap.add_argument("--sweep", action="store_true", help="compare detection settings (recall and time)")
    args = ap.parse_args()
    from _machine import machine

    print(machine())
    words = load_scene_text(limit=args.words)
    cases = pixloop_cases()
    if args.sweep:
        sweep(words, cases)
    else:
        report(OcrCritic(), words, cases)


__all__ = ["Case", "Tally", "evaluate_cases", "evaluate_words", "legacy_critic", "load_scene_text",
           "misspell_one_letter", "pixloop_cases", "report", "sweep", "with_margin", "word_plan"]

if __name__ == "__main__":
    main()
