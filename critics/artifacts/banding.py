"""Banding / posterisation sub-check: distinct 8-bit levels in the richest channel."""

from __future__ import annotations

import cv2
import numpy as np

from critics.artifacts.common import SubCheck, as_rgb, make_subcheck


def levels_per_channel(image: np.ndarray, min_share: float = 2e-5) -> list[int]:
    """Distinct 8-bit levels per channel, ignoring levels held by fewer than min_share of the pixels."""
    rgb = as_rgb(image)
    n = rgb.shape[0] * rgb.shape[1]
    floor = max(1, int(n * min_share))
    out = []
    for c in range(3):
        hist = cv2.calcHist([rgb], [c], None, [256], [0, 256]).ravel()
        out.append(int((hist >= floor).sum()))
    return out


def banding_check(image: np.ndarray, limit: float | None = None) -> SubCheck:
    """Posterisation / banding: distinct levels in the richest channel (a 3-bit image has 8).

    The richest channel is used so that duotone or strongly tinted photos, whose other channels are
    legitimately narrow, are not flagged.
    """
    levels = levels_per_channel(image)
    return make_subcheck("banding", max(levels), limit, levels=levels)
