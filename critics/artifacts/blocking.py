"""JPEG blocking sub-check: the step across 8x8 block boundaries against the other grid phases, and
the per-block map behind its position words and heat map."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from critics.artifacts.common import SubCheck, make_subcheck, to_gray, where_mask

BLOCK_EPS = 0.5
"""Grey levels added to both sides of the blocking ratio, so invisible sub-level grids in flat designs
(JPEG q75+ posters) stay near 1."""


def _phase_sums(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of |grey step| - 1 (clipped at 0) by position within the 8-px grid (both axes).

    Phase 7 is the step across a block boundary (pixel 7 -> 8). One-level steps are ignored: a
    legitimate 8-bit gradient steps by 1, sometimes exactly every 8 px.
    """
    g = gray.astype(np.int16)
    sums = np.zeros(8, np.float64)
    counts = np.zeros(8, np.int64)
    for axis in (1, 0):
        d = np.maximum(np.abs(np.diff(g, axis=axis)) - 1, 0).astype(np.float32)
        prof = d.sum(axis=1 - axis)  # per column (axis=1) or per row (axis=0)
        other = g.shape[1 - axis]
        phase = np.arange(prof.shape[0]) % 8
        sums += np.bincount(phase, weights=prof, minlength=8)
        counts += np.bincount(phase, minlength=8) * other
    return sums, counts


def blocking_ratio(gray: np.ndarray | Iterable[np.ndarray]) -> float:
    """JPEG blockiness: mean step across 8x8 block boundaries / the largest mean step at any other grid phase.

    1 means no grid. Comparing with the largest other phase (not their average) keeps images that
    were upscaled by pixel doubling (period-2 steps, e.g. skimage's moon) from looking blocky.
    """
    tiles = [gray] if isinstance(gray, np.ndarray) else list(gray)
    sums = np.zeros(8, np.float64)
    counts = np.zeros(8, np.int64)
    for t in tiles:
        if min(t.shape[:2]) < 16:
            continue
        s, c = _phase_sums(t)
        sums += s
        counts += c
    if counts.min() == 0:
        return 1.0
    means = sums / counts
    if means.sum() < 0.01:  # flat: no structure to judge
        return 1.0
    eps = BLOCK_EPS
    return float((means[7] + eps) / (means[:7].max() + eps))


def blocking_check(image: np.ndarray | list[np.ndarray], limit: float | None = None,
                   spec: str = "blocking") -> SubCheck:
    """JPEG blocking on native pixels (the 8x8 grid is lost by any resize). ``spec`` picks the limit: photos
    ("blocking") or flat designs and textures ("blocking_graphic", where a few edges on the grid weigh more)."""
    tiles = image if isinstance(image, list) else [image]
    grays = [to_gray(t) for t in tiles]
    if not any(min(g.shape) >= 16 for g in grays):
        raise ValueError("image too small for the blocking check")
    sub = make_subcheck("blocking", blocking_ratio(grays), limit, spec=spec)
    if not sub.passed and len(grays) == 1:
        bm = block_map(grays[0])
        if bm.size and bm.max() > 0:
            sub.detail["where"] = where_mask(bm >= max(0.5, float(np.percentile(bm, 75))))
    return sub


def block_map(gray: np.ndarray) -> np.ndarray:
    """Per 8x8 block: mean boundary step (right and bottom edges) minus mean interior step, >= 0."""
    g = gray.astype(np.int16)
    h8, w8 = (g.shape[0] // 8) * 8, (g.shape[1] // 8) * 8
    if h8 < 16 or w8 < 16:
        return np.zeros((max(1, h8 // 8), max(1, w8 // 8)), np.float32)
    g = g[:h8, :w8]
    dx = np.maximum(np.abs(np.diff(g, axis=1)) - 1, 0).astype(np.float32)  # h8 x (w8-1)
    dy = np.maximum(np.abs(np.diff(g, axis=0)) - 1, 0).astype(np.float32)  # (h8-1) x w8
    dx = np.pad(dx, ((0, 0), (0, 1)))
    dy = np.pad(dy, ((0, 1), (0, 0)))
    bx = dx.reshape(h8 // 8, 8, w8 // 8, 8)
    by = dy.reshape(h8 // 8, 8, w8 // 8, 8)
    boundary = (bx[:, :, :, 7].mean(axis=1) + by[:, 7, :, :].mean(axis=2)) / 2
    interior = (bx[:, :, :, :7].mean(axis=(1, 3)) + by[:, :7, :, :].mean(axis=(1, 3))) / 2
    return np.maximum(boundary - interior, 0).astype(np.float32)
