"""Reading an image for its required text: one detection pass in the common case, more only while required
text is still not read exactly.

Passes (each names the scale of the working image in the detector's input; ``critics.ocr.detection``):

1. **whole** image with its long side at ``ScanSettings.first_side`` px (512). Finds glyphs from about 8 to
   110 px tall in the detector's input: on a 1024 px poster text 16-220 px tall. Most checks end here.
2. **coarse**: the whole image at a third, then an eighth, of that scale, for text too large for pass 1
   (a headline filling a poster, a tight word crop), when an unread element's region is tall enough to hold
   such text. Cheap: a ninth of pass 1's pixels or fewer.
3. **fine**: each not-yet-read element's planned region (grown by a tenth of the canvas) at twice pass 1's
   scale, up to full resolution and ``fine_max_pixels``, for text too small for pass 1.

A later pass only *replaces* earlier lines, and only where that makes some required element read better
without making any worse: its lines that the improved elements use go in, the earlier lines they overlap go
out. A new line that merely re-spaces or shortens what the lines it overlaps read is never taken (a required
'ay' is not rescued by a pass that reads the image's 'way' as 'w ay'). So extra passes can rescue a detection
miss but never add stray text, and misspelt text, which no pass reads as the expected text, is still failed
(it costs the extra passes, ~0.2 s at 1024 px).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from agent.models import TextElement
from critics.ocr.detection import DetParams, Region, detect, recognise
from critics.ocr.matching import OcrScore, score_elements
from critics.ocr.reading import MAX_SIDE, OcrLine, prepare_image


@dataclass(frozen=True)
class ScanSettings:
    """Which passes run, at which scales; bench/real_text.py --sweep measures the alternatives."""

    first_side: int = 512
    """Pass 1: the whole image's long side in the detector, px. 512 reads a poster's headline whole when its
    capitals are up to ~20% of the image tall (at 736 they split from ~15%; rapidocr's own pipeline ran a
    1024 px image at 1024) at half the pixels of 736; smaller text than ~1.5% of the long side is left to
    pass 3 (bench/real_text.py --sweep)."""
    coarse_factors: tuple[float, ...] = (1 / 3, 1 / 8)
    """Pass 2: scales relative to pass 1, tried in order while an element is still not read exactly."""
    coarse_min_region: float = 96.0
    """Pass 2 runs only for an element whose planned region is at least this tall in pass 1's input (px): text
    too large for pass 1 (glyphs over ~110 px there) needs a region about that tall."""
    fine_factor: float = 2.0
    """Pass 3: scale relative to pass 1, capped at the working image's full resolution."""
    fine_max_pixels: int = 1_600_000
    """Largest detector input of a fine pass (a larger region is detected at a smaller scale)."""
    region_margin: float = 0.1
    """A fine pass looks at the element's planned region grown by this share of the canvas on every side."""
    params: DetParams = field(default_factory=DetParams)
    multiscale: bool = True
    """False: pass 1 only (for measuring what the later passes add)."""


DEFAULT_SETTINGS = ScanSettings()


@dataclass
class Reading:
    """What OCR read: lines in original-image pixels, and how (the passes run, the time spent)."""

    lines: list[OcrLine]
    passes: list[str]
    downscaled: bool
    seconds: float = 0.0


def _area(b: tuple[float, float, float, float]) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _overlaps(a: OcrLine, b: OcrLine, share: float = 0.5) -> bool:
    """Whether the two lines' boxes share at least `share` of the smaller one."""
    ba, bb = a.bbox(), b.bbox()
    ix = max(0, min(ba[2], bb[2]) - max(ba[0], bb[0]))
    iy = max(0, min(ba[3], bb[3]) - max(ba[1], bb[1]))
    small = min(_area(ba), _area(bb))
    return small > 0 and ix * iy >= share * small


def _key(text: str) -> str:
    return "".join(text.split()).casefold()


def _only_respaces(new: OcrLine, lines: Sequence[OcrLine]) -> bool:
    """Whether `new` reads nothing the earlier lines it overlaps did not: its characters (spaces and case aside)
    are a run of theirs. Such a line can only re-split or shorten a word already read ('way' read again as
    'w ay' would pass a required 'ay'), so it never replaces them."""
    old = [ln for ln in lines if _overlaps(ln, new)]
    return bool(old) and _key(new.text) in _key(" ".join(ln.text for ln in old))


def _accuracies(result: OcrScore) -> list[float]:
    return [m.accuracy for m in result.elements]


def merge_pass(lines: list[OcrLine], new: list[OcrLine], elements: Sequence[TextElement],
               size: tuple[int, int], current: OcrScore) -> tuple[list[OcrLine], OcrScore, bool]:
    """`lines` with `new` swapped in where that reads some element better and none worse.

    Only the new lines that an improved element's match uses are taken; the old lines they overlap go.
    Returns the lines, their score and whether anything changed.
    """
    new = [n for n in new if not _only_respaces(n, lines)]
    if not new:
        return lines, current, False
    trial = [ln for ln in lines if not any(_overlaps(ln, n) for n in new)] + new
    scored = score_elements(elements, trial, size)
    before = _accuracies(current)
    improved = [k for k, (a, b) in enumerate(zip(_accuracies(scored), before)) if a > b + 1e-9]
    if not improved:
        return lines, current, False
    keep_new = {id(scored.lines[i]) for k in improved for i in scored.elements[k].line_ids}
    taken = [n for n in new if id(n) in keep_new]
    merged = [ln for ln in lines if not any(_overlaps(ln, n) for n in taken)] + taken
    result = score_elements(elements, merged, size)
    after = _accuracies(result)
    if any(a < b - 1e-9 for a, b in zip(after, before)) or after == before:
        return lines, current, False
    return merged, result, True


def _grow(region: Region, margin: float, size: tuple[int, int]) -> Region:
    w, h = size
    mx, my = round(margin * w), round(margin * h)
    return max(0, region[0] - mx), max(0, region[1] - my), min(w, region[2] + mx), min(h, region[3] + my)


def read_image(image: Image.Image, elements: Sequence[TextElement] = (), engine: Any = None,
               settings: ScanSettings = DEFAULT_SETTINGS) -> Reading:
    """OCR `image` for `elements` with rapidocr's models (the shared engine unless `engine` is a RapidOCR).

    Without elements, or with every element read exactly after pass 1, that is the only pass.
    """
    t0 = time.perf_counter()
    size = (max(1, image.width), max(1, image.height))
    downscaled = max(image.size) > MAX_SIDE
    if image.width == 0 or image.height == 0:
        return Reading([], [], downscaled, 0.0)
    if engine is None:
        from critics.ocr.engines import rapidocr_engine

        engine = rapidocr_engine()
    bgr, _ = prepare_image(image)
    if bgr.size == 0 or int(bgr.max()) == int(bgr.min()):
        return Reading([], [], downscaled, time.perf_counter() - t0)
    hw, ww = bgr.shape[:2]
    to_original = (image.width / ww, image.height / hw)
    whole: Region = (0, 0, ww, hw)
    first = settings.first_side / max(ww, hw)
    params = settings.params

    def run(region: Region, scale: float) -> list[OcrLine]:
        quads = detect(engine, bgr, region, scale, params)
        return recognise(engine, bgr, quads, params, to_original, size)

    lines = run(whole, first)
    passes = [f"whole@{first:.2f}"]
    if not elements or not settings.multiscale:
        return Reading(lines, passes, downscaled, time.perf_counter() - t0)
    result = score_elements(elements, lines, size)

    def pending() -> list[int]:
        return [k for k, m in enumerate(result.elements) if m.accuracy < 1.0]

    def could_be_too_large(k: int) -> bool:
        """The element's region is tall enough (at pass 1's scale) to hold glyphs pass 1 splits."""
        box = elements[k].region.to_pixels(ww, hw)
        return (box[3] - box[1]) * first >= settings.coarse_min_region

    for factor in settings.coarse_factors:
        if not any(could_be_too_large(k) for k in pending()):
            break
        scale = first * factor
        new = run(whole, scale)
        lines, result, kept = merge_pass(lines, new, elements, size, result)
        passes.append(f"coarse@{scale:.2f}" + (" kept" if kept else ""))
    for k in pending():
        fine = min(1.0, first * settings.fine_factor)
        if fine < 1.25 * first:
            break  # a small image: pass 1 already ran at (or above) full resolution
        box = elements[k].region.to_pixels(ww, hw)
        region = _grow((box[0], box[1], box[2], box[3]), settings.region_margin, (ww, hw))
        rw, rh = region[2] - region[0], region[3] - region[1]
        if rw < 2 or rh < 2:
            continue
        fine = min(fine, (settings.fine_max_pixels / (rw * rh)) ** 0.5)
        if fine < 1.25 * first:
            continue
        new = run(region, fine)
        lines, result, kept = merge_pass(lines, new, elements, size, result)
        passes.append(f"fine@{fine:.2f}:{elements[k].id}" + (" kept" if kept else ""))
    return Reading(lines, passes, downscaled, time.perf_counter() - t0)


__all__ = ["DEFAULT_SETTINGS", "Reading", "ScanSettings", "merge_pass", "read_image"]
