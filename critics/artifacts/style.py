"""Style of an image for the artifact critic (photo, graphic, texture), the sub-checks each style skips,
and the mask of planned text regions."""

from __future__ import annotations

import math

import cv2
import numpy as np

from agent.models import Plan, Style
from critics.artifacts.common import as_rgb, max_channel

STYLES = ("photo", "graphic", "texture")

GRAPHIC_SMOOTH = 0.85
"""A solid/gradient plan whose pixels (outside text regions) are at least this flat/smooth is 'graphic'.

Compose posters are >= 0.96 outside their text; clean photos 0.02-0.75, degraded photos <= 0.83."""
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


def classify_style(plan: Plan | None, work_rgb: np.ndarray, exclude: np.ndarray | None = None) -> tuple[str, str]:
    """'photo', 'graphic' or 'texture' from the plan's style, checked against the pixels."""
    style = plan.style if plan is not None else Style()
    bg = style.background
    if bg == "image":
        return "photo", "plan background is an image"
    if bg == "texture":
        return "texture", "plan background is a procedural texture"
    if plan is not None and plan.subjects:
        return "photo", "plan places reference photos"
    smooth = smooth_fraction(work_rgb, exclude)
    if smooth >= GRAPHIC_SMOOTH:
        return "graphic", f"{bg} background and {smooth:.0%} of the pixels outside text are flat or smooth"
    return "photo", (f"plan says {bg} background but only {smooth:.0%} of the pixels are flat or smooth "
                     f"(< {GRAPHIC_SMOOTH:.0%}): judged as a photo")


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
