"""Exposure sub-check: shares of blown highlights and crushed shadows (planned text left out)."""

from __future__ import annotations

import cv2
import numpy as np

from critics.artifacts.common import SubCheck, as_rgb, make_subcheck, max_channel, round_sig, where_mask


def exposure_check(image: np.ndarray, limit: float | None = None, dark_limit: float | None = None,
                   exclude: np.ndarray | None = None) -> SubCheck:
    """Clipped exposure: share of blown highlights (max channel >= 250) and crushed shadows (all <= 5).

    The reported value is whichever of the two scores worse against its own limit. ``exclude`` (bool,
    True = ignore, same size) leaves out planned text, whose white or black is a design colour.
    """
    rgb = as_rgb(image)
    if rgb.size == 0:
        raise ValueError("empty image")
    mx = max_channel(rgb)
    bright_mask = mx >= 250
    dark_mask = mx <= 5
    if exclude is not None and exclude.shape == mx.shape and (~exclude).any():
        keep = ~exclude
        bright_mask &= keep
        dark_mask &= keep
        n = int(keep.sum())
    else:
        n = mx.size
    bright, dark = cv2.countNonZero(bright_mask.view(np.uint8)) / n, cv2.countNonZero(dark_mask.view(np.uint8)) / n
    hi = make_subcheck("exposure", bright, limit, kind="highlights", highlights=round_sig(bright, 3),
                       shadows=round_sig(dark, 3))
    lo = make_subcheck("exposure", dark, dark_limit, spec="exposure_dark", kind="shadows",
                       highlights=round_sig(bright, 3), shadows=round_sig(dark, 3))
    worst, mask = (hi, bright_mask) if hi.score <= lo.score else (lo, dark_mask)
    if not worst.passed:
        worst.detail["where"] = where_mask(mask)
    return worst
