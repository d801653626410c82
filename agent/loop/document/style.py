"""Palette and style of a document's images: each image's dominant palette (k-means in CIE Lab) and a few
colour/texture statistics, and how far each image sits from the rest of the document (leave-one-out).

- ``image_look(bgr)``: the image's `Look` -- 5 palette colours (Lab centres, hex, shares, largest share first)
  found by k-means on a copy downscaled to ``PALETTE_SIDE`` px, and the statistics vector (``STAT_NAMES``:
  mean saturation, mean lightness, lightness contrast, edge density, Hasler-Suesstrunk colourfulness).
- ``palette_distance(look, others)``: the median over the other images of ``palette_gap``: the share-weighted mean
  over the image's palette of the CIE76 Delta E to the nearest colour of that image's palette (colours below
  ``MIN_DOCUMENT_SHARE`` of their image ignored).
- ``style_distance(look, others)``: RMS over the statistics of (value - median of the others) / ``STAT_SCALES``.

The thresholds that turn these distances into verdicts live in ``agent.loop.document.consistency``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PALETTE_SIZE = 5
PALETTE_SIDE = 96
"""The long side (px) of the copy the palette is clustered on: 96 px keeps k-means at a few ms."""
STATS_SIDE = 256
"""The long side (px) of the copy the statistics are measured on, so edge density does not depend on size."""
MIN_DOCUMENT_SHARE = 0.05
"""A colour under this share of its own image is noise (anti-aliasing, a small detail), not the document's."""
KMEANS_ITERATIONS = 20
STAT_NAMES = ("saturation", "lightness", "contrast", "edges", "colourfulness")
STAT_SCALES = np.array([0.15, 0.10, 0.05, 0.05, 15.0])
"""Each statistic's typical spread across unrelated images: a style distance of 1 is one such spread (RMS)."""


@dataclass(frozen=True)
class Look:
    """An image's palette (Lab centres, hex, shares; largest share first) and style statistics."""

    lab: np.ndarray
    hex: tuple[str, ...]
    shares: np.ndarray
    stats: np.ndarray


def _downscale(bgr: np.ndarray, side: int) -> np.ndarray:
    h, w = bgr.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return bgr
    return cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def to_lab(bgr: np.ndarray) -> np.ndarray:
    """uint8 BGR -> float32 CIE Lab (L 0..100, a/b about -128..127), D65."""
    return cv2.cvtColor(bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)


def lab_hex(lab: np.ndarray) -> str:
    rgb = cv2.cvtColor(lab.reshape(1, 1, 3).astype(np.float32), cv2.COLOR_LAB2RGB).reshape(3)
    r, g, b = (int(round(float(np.clip(c, 0.0, 1.0)) * 255)) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def kmeans(points: np.ndarray, k: int, iterations: int = KMEANS_ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means (k-means++ start from a fixed seed): centres and shares, empty clusters dropped."""
    rng = np.random.default_rng(0)
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d2 = np.min([((points - c) ** 2).sum(1) for c in centres], axis=0)
        if float(d2.sum()) <= 1e-9:
            break
        centres.append(points[rng.choice(len(points), p=d2 / d2.sum())])
    c = np.array(centres, dtype=np.float32)
    for _ in range(iterations):
        labels = ((points[:, None, :] - c[None]) ** 2).sum(2).argmin(1)
        new = np.array([points[labels == j].mean(0) if (labels == j).any() else c[j] for j in range(len(c))])
        if np.allclose(new, c, atol=0.05):
            break
        c = new.astype(np.float32)
    labels = ((points[:, None, :] - c[None]) ** 2).sum(2).argmin(1)
    counts = np.bincount(labels, minlength=len(c)).astype(np.float64)
    keep = counts > 0
    return c[keep], counts[keep] / counts.sum()


def style_stats(bgr: np.ndarray) -> np.ndarray:
    """[mean saturation 0..1, mean lightness 0..1, lightness std 0..~0.5, Canny edge share, colourfulness]."""
    small = _downscale(bgr, STATS_SIDE)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    light = to_lab(small)[:, :, 0] / 100.0
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    edges = float((cv2.Canny(gray, 100, 200) > 0).mean())
    b, g, r = (small[:, :, i].astype(np.float32) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    colourful = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
    return np.array([hsv[:, :, 1].mean() / 255.0, light.mean(), light.std(), edges, colourful])


def image_look(bgr: np.ndarray, k: int = PALETTE_SIZE) -> Look:
    """The image's dominant palette (k colours in Lab, by share) and its style statistics."""
    points = to_lab(_downscale(bgr, PALETTE_SIDE)).reshape(-1, 3)
    centres, shares = kmeans(points, k)
    order = np.argsort(-shares, kind="stable")
    centres, shares = centres[order], shares[order]
    return Look(lab=centres, hex=tuple(lab_hex(c) for c in centres), shares=shares, stats=style_stats(bgr))


def palette_gap(look: Look, other: Look) -> float:
    """Share-weighted mean Delta E (CIE76) from the image's palette colours to the nearest colour of another's."""
    ref = other.lab[other.shares >= MIN_DOCUMENT_SHARE]
    if not len(ref):
        ref = other.lab
    nearest = np.sqrt(((look.lab[:, None, :] - ref[None]) ** 2).sum(2)).min(1)
    return float((nearest * look.shares).sum() / look.shares.sum())


def palette_distance(look: Look, others: Sequence[Look]) -> float:
    """How far the image's palette is from the document's: the median over the other images of `palette_gap`.

    The median, not the nearest colour of the pooled palettes: in a pool one other image of the same odd palette
    would vouch for an intruder (measured: two pink renders among six teal ones scored Delta E 3.3 and 4.6
    against the pool, 14+ against the median), while the median holds while intruders are a minority.
    """
    if not others:
        return 0.0
    return float(np.median([palette_gap(look, o) for o in others]))


def style_distance(look: Look, others: Sequence[Look]) -> float:
    """RMS of the statistics' differences from the others' median, each in units of ``STAT_SCALES``."""
    if not others:
        return 0.0
    median = np.median(np.stack([o.stats for o in others]), axis=0)
    return float(np.sqrt((((look.stats - median) / STAT_SCALES) ** 2).mean()))


def document_palette(looks: Sequence[Look], k: int = PALETTE_SIZE) -> list[str]:
    """The document's palette: the share-weighted union of its images' palettes, clustered to k colours."""
    if not looks:
        return []
    points = np.concatenate([lk.lab for lk in looks])
    weights = np.concatenate([lk.shares / len(looks) for lk in looks])
    reps = np.repeat(points, np.maximum(1, np.round(weights * 1000).astype(int)), axis=0)
    centres, shares = kmeans(reps.astype(np.float32), min(k, len(points)))
    return [lab_hex(c) for c in centres[np.argsort(-shares, kind="stable")]]
