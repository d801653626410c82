"""Style of an image for the artifact critic (photo, graphic, texture), the sub-checks each style skips,
and the mask of planned text regions."""

from __future__ import annotations

import math

import cv2
import numpy as np

from agent.models import Plan, Style
from critics.artifacts.common import as_rgb, max_channel

STYLES = ("photo", "graphic", "texture")

GRAPHIC_SMOOTH = 0.80
"""Smooth share (outside text regions, at the working size) from which flat pixels can make an image 'graphic'.

Compose posters are >= 0.96 outside their text (0.82-0.90 once saved as JPEG q75-q90, or with lots of text);
clean photos 0.02-0.75, degraded photos <= 0.83 (a heavy blur), and 0.98 for a blurred sky: smoothness alone
does not tell a design from a soft photo, hence ``GRAPHIC_EXACT``."""
GRAPHIC_EXACT = 0.5
"""...and at least this share of native pixels must equal both their right and lower neighbours exactly (every
channel): flat fills and slow 8-bit gradients do, a photo's grain does not (clean photos 0-0.28, a blurred or
under-exposed photo <= 0.31, compose posters 0.67-0.98, JPEG q75 included, text on a plain ground 0.83-0.91)."""
GRAPHIC_EXACT_ALONE = 0.7
"""An image this exactly flat is a design even when text or edges make it less smooth (dense text, a JPEG'd
flyer); only photos destroyed by JPEG q1 reach it (they are still judged for blocking)."""
SMOOTH_STEP = 2
"""Neighbouring pixels differing by at most this (every channel, at the working size) are 'smooth'."""
TEXT_PAD = 0.02
"""Text regions are grown by this share of the canvas before they are excluded."""


def smooth_fraction(rgb: np.ndarray, exclude: np.ndarray | None = None) -> float:
    """Share of pixels whose right and lower neighbours differ by <= SMOOTH_STEP in every channel.

    ``exclude`` (bool, True = ignore) leaves out planned text; it is ignored if it covers > 75%.
    """
    a = as_rgb(rgb)
    h, w = a.shape[:2]
    if h < 2 or w < 2:
        return 1.0
    base = np.ascontiguousarray(a[:-1, :-1])
    dx = max_channel(cv2.absdiff(np.ascontiguousarray(a[:-1, 1:]), base))
    dy = max_channel(cv2.absdiff(np.ascontiguousarray(a[1:, :-1]), base))
    smooth = cv2.max(dx, dy) <= SMOOTH_STEP
    if exclude is not None:
        keep = ~np.asarray(exclude, bool)[:-1, :-1]
        if keep.mean() >= 0.25:
            return float(smooth[keep].mean())
    return float(smooth.mean())


EXACT_SAMPLE = 300_000
"""At most about this many native pixels are read for the exactness (bands of rows spread over the image)."""


def _bands(a: np.ndarray, budget: int) -> list[np.ndarray]:
    """The whole image if small, else horizontal bands of 17 rows spread evenly, about ``budget`` pixels."""
    h, w = a.shape[:2]
    if h * w <= budget or h < 34:
        return [a]
    n = max(1, min(h // 17, budget // (17 * w)))
    starts = np.linspace(0, h - 17, n).round().astype(int)
    return [a[y:y + 17] for y in starts]


def exact_flat_fraction(tiles: list[np.ndarray] | np.ndarray) -> float:
    """Share of pixels equal to their right and lower neighbours in every channel, over native RGB tiles (a
    sample of row bands when they are large)."""
    parts = [tiles] if isinstance(tiles, np.ndarray) else list(tiles)
    budget = max(20_000, EXACT_SAMPLE // max(1, len(parts)))
    parts = [band for t in parts for band in _bands(np.asarray(t), budget)]
    same = total = 0
    for t in parts:
        a = as_rgb(t)
        if a.shape[0] < 2 or a.shape[1] < 2:
            continue
        base = np.ascontiguousarray(a[:-1, :-1])
        dx = max_channel(cv2.absdiff(np.ascontiguousarray(a[:-1, 1:]), base))
        dy = max_channel(cv2.absdiff(np.ascontiguousarray(a[1:, :-1]), base))
        flat = cv2.max(dx, dy) == 0
        same += int(cv2.countNonZero(flat.view(np.uint8)))
        total += flat.size
    return same / total if total else 1.0


def text_mask(plan: Plan | None, width: int, height: int, pad: float = TEXT_PAD) -> np.ndarray | None:
    """Boolean mask (True = planned text, grown by ``pad`` of the canvas) at width x height, or None."""
    if plan is None or not plan.text:
        return None
    m = np.zeros((height, width), bool)
    for el in plan.text:
        b = el.region
        x0 = int(math.floor(max(0.0, b.x - pad) * width))
        y0 = int(math.floor(max(0.0, b.y - pad) * height))
        x1 = int(math.ceil(min(1.0, b.x + b.w + pad) * width))
        y1 = int(math.ceil(min(1.0, b.y + b.h + pad) * height))
        m[y0:y1, x0:x1] = True
    return m


def classify_style(plan: Plan | None, work_rgb: np.ndarray, exclude: np.ndarray | None = None,
                   native: list[np.ndarray] | np.ndarray | None = None) -> tuple[str, str]:
    """'photo', 'graphic' or 'texture' from the plan's style, checked against the pixels.

    Without a plan that says so (``pixloop check`` builds one with the default gradient style), the pixels
    decide: a design is smooth *and* made of exactly flat fills (``GRAPHIC_SMOOTH`` and ``GRAPHIC_EXACT``), or
    exactly flat almost everywhere (``GRAPHIC_EXACT_ALONE``); everything else is judged as a photo. ``native``
    is the native-resolution pixels (or tiles of them) the exactness is read on; the working image otherwise.
    """
    style = plan.style if plan is not None else Style()
    bg = style.background
    if bg == "image":
        return "photo", "plan background is an image"
    if bg == "texture":
        return "texture", "plan background is a procedural texture"
    if plan is not None and plan.subjects:
        return "photo", "plan places reference photos"
    smooth = smooth_fraction(work_rgb, exclude)
    exact = exact_flat_fraction(native if native is not None else work_rgb)
    if (smooth >= GRAPHIC_SMOOTH and exact >= GRAPHIC_EXACT) or exact >= GRAPHIC_EXACT_ALONE:
        return "graphic", (f"{bg} background, {smooth:.0%} of the pixels outside text are flat or smooth and "
                           f"{exact:.0%} exactly flat")
    return "photo", (f"plan says {bg} background but only {smooth:.0%} of the pixels are flat or smooth and "
                     f"{exact:.0%} exactly flat (a design has >= {GRAPHIC_SMOOTH:.0%} and >= {GRAPHIC_EXACT:.0%}): "
                     "judged as a photo")


SKIP_REASONS: dict[str, dict[str, str]] = {
    "graphic": {
        "blur": "flat graphic design: low texture is intended, not blur",
        "exposure": "flat graphic design: pure white/black areas are design colours",
        "banding": "flat graphic design: few levels are intended",
        "copy_move": "flat graphic design: repeated elements are intended",
        "naturalness": "flat graphic design: not a natural image",
    },
    "texture": {
        "noise": "procedural texture: grain is intended",
        "exposure": "procedural texture: palette colours may be pure white/black",
        "banding": "procedural texture: levels are limited to the palette",
        "naturalness": "procedural texture: not a natural image",
    },
    "photo": {},
}
