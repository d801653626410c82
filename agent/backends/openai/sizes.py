"""gpt-image output sizes: gpt-image-2 takes any valid multiple-of-16 size, the older models three fixed ones."""

from __future__ import annotations

import math
import re

FIXED_SIZES: dict[str, tuple[int, int]] = {"1024x1024": (1024, 1024), "1536x1024": (1536, 1024),
                                           "1024x1536": (1024, 1536)}
"""The only sizes gpt-image-1, -1-mini, -1.5 and chatgpt-image-latest accept (besides 'auto')."""
FLEX_STEP = 16
FLEX_MAX_RATIO = 3.0
FLEX_MAX_SIDE = 3840
FLEX_MAX_PIXELS = 3840 * 2160
FLEX_MIN_PIXELS = 655_360
"""gpt-image-2 size rules (protocols doc section 2: multiples of 16, 1:3..3:1, max 3840x2160). The pixel
budget 3840*2160 for any shape and the 655,360 floor are third-party measurements (unconfirmed)."""
FLEX_RATIO_TOLERANCE = 0.015
"""Largest aspect-ratio drift accepted when rounding to multiples of 16 (the spec critic allows 2 %)."""


def is_flex_model(model: str) -> bool:
    """gpt-image-2 (and its snapshots) take any valid WxH; the others only the fixed sizes."""
    return model.startswith("gpt-image-2")


def flex_size_ok(width: int, height: int) -> bool:
    """Whether gpt-image-2 accepts width x height."""
    long_side, short_side = max(width, height), min(width, height)
    return (width > 0 and height > 0 and width % FLEX_STEP == 0 and height % FLEX_STEP == 0
            and long_side <= FLEX_MAX_SIDE and long_side <= FLEX_MAX_RATIO * short_side
            and FLEX_MIN_PIXELS <= width * height <= FLEX_MAX_PIXELS)


def flex_size(width: int, height: int) -> tuple[int, int]:
    """The valid gpt-image-2 size nearest to width x height.

    The target is first brought inside the limits (ratio clamped to 1:3..3:1, area scaled into the pixel
    budget and under the long-side cap, keeping the ratio); then, among multiple-of-16 sizes whose ratio
    is within FLEX_RATIO_TOLERANCE, the one closest to it side by side wins (else the truest ratio).
    """
    ratio = min(max(width / height, 1 / FLEX_MAX_RATIO), FLEX_MAX_RATIO)
    area = float(min(max(width * height, FLEX_MIN_PIXELS), FLEX_MAX_PIXELS))
    area = min(area, FLEX_MAX_SIDE ** 2 * min(ratio, 1 / ratio))
    tw, th = math.sqrt(area * ratio), math.sqrt(area / ratio)
    best: tuple[tuple[int, float], tuple[int, int]] | None = None
    for dw in range(-2, 4):
        for dh in range(-2, 4):
            w = (math.floor(tw / FLEX_STEP) + dw) * FLEX_STEP
            h = (math.floor(th / FLEX_STEP) + dh) * FLEX_STEP
            if not flex_size_ok(w, h):
                continue
            ratio_error = abs(math.log(w / h / ratio))
            distance = abs(math.log(w / tw)) + abs(math.log(h / th))
            score = (0, distance) if ratio_error <= FLEX_RATIO_TOLERANCE else (1, ratio_error)
            if best is None or score < best[0]:
                best = (score, (w, h))
    return best[1] if best else (1024, 1024)


def fixed_size(width: int, height: int) -> tuple[int, int]:
    """The fixed gpt-image size closest in aspect ratio (square, 3:2 landscape or 2:3 portrait)."""
    return min(FIXED_SIZES.values(), key=lambda s: abs(math.log((s[0] / s[1]) / (width / height))))


def choose_size(model: str, width: int, height: int) -> tuple[int, int]:
    """The size to request from `model` for a plan canvas of width x height."""
    return flex_size(width, height) if is_flex_model(model) else fixed_size(width, height)


def parse_size(text: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


__all__ = ["FIXED_SIZES", "FLEX_MAX_PIXELS", "FLEX_MAX_RATIO", "FLEX_MAX_SIDE", "FLEX_MIN_PIXELS",
           "FLEX_RATIO_TOLERANCE", "FLEX_STEP", "choose_size", "fixed_size", "flex_size", "flex_size_ok",
           "is_flex_model", "parse_size"]
