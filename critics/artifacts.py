"""Artifact critic: blur, noise, JPEG blocking, clipped exposure, posterisation, copy-move, naturalness.

Each sub-check is a pure function of a numpy image that returns a ``SubCheck`` (value, limit, passed,
score in [0,1], detail). ``ArtifactsCritic.check`` picks from the plan's style (checked against the
pixels) which sub-checks apply, runs them and reports the worst one:

- sub-check score: 1 when clean, exactly 0.5 at its limit, falling smoothly towards 0 beyond it
  (``limit_score``, a logistic in log(value / limit));
- verdict score = min over the applied sub-checks; passed = score >= threshold, so a 0.5 threshold
  means "every applied sub-check within its limit".

Style. Flat graphic designs (solid or gradient backgrounds: posters, UI) legitimately have few levels,
little texture, pure white or black areas and repeated elements, so "graphic" runs only blocking
and noise. A procedural "texture" background has intended grain and palette-limited levels, so it
skips noise, exposure, banding and naturalness. A "photo" runs everything. A photo is an image
background, reference subjects on a solid or gradient background, or a solid/gradient plan whose
pixels are not mostly flat (as with ``pixloop check`` on an arbitrary photo, whose plan has the
default style). Planned text regions are left out of the style test, the exposure shares and the
copy-move search (repeated glyphs are legitimate copies).

Limits (``LIMITS``, each with the numbers behind it) were calibrated on the skimage photos
(astronaut, coffee, chelsea, rocket, camera, motorcycle), at native size and upscaled 2x, clean and
degraded (blur sigma 3, JPEG q5, noise sigma 25, exposure x2, posterised to 3 bits, a pasted patch of
1/5 the short side), and on 100 clean compose posters (solid, gradient and texture backgrounds, four
palettes, with and without text and plates) plus 6 with a product. The metric survey is
shared/docs/critic-engines.md section 4.

Speed. Sharpness is judged on grey at long side <= 1024 (``BLUR_SIDE``); style, copy-move (SIFT,
the dominant cost) and BRISQUE run at long side <= 512 (``WORK_SIDE``). Noise, JPEG grid, clipping
and levels need native pixels and read at most ~1.2 MP of them (tiles or an exact nearest-neighbour
subsample). A 1024x1024 photo takes ~0.1 s on 2 cores, a flat poster ~0.01 s; an installed
``brisque`` package adds ~0.15 s.
"""

from __future__ import annotations

import glob
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import cv2
import numpy as np
from PIL import Image

from agent.models import Box, Plan, Style, Verdict
from critics.base import CheckContext, CriticBase, CriticInfo

INFO = CriticInfo(
    threshold=0.5,
    threshold_source=(
        "score = min over the applied sub-checks, each exactly 0.5 at its calibrated limit (critics/artifacts.py "
        "LIMITS); on 6 skimage photos x 6 degradations at 1x and 2x, 70/72 flagged (misses: a flat-sky pasted "
        "patch), 0 false alarms on 12 clean photos (also JPEG q90/q75) and 106 clean compose posters"
    ),
    description="blur, noise, JPEG blocking, clipped exposure, banding, copy-move (style-aware)",
    weight=1.5, measured=True, needs=(), on_by_default=True,
    strategies=("new_seed",), escalation=("best_of_n", "new_seed"),
)
"""What the loop knows about this critic (see `critics.base.CriticInfo`)."""

NAME = "artifacts"

WORK_SIDE = 512
"""Long side of the working image for style detection, copy-move and BRISQUE (downscale only)."""
BLUR_SIDE = 1024
"""Long side at which sharpness is judged (downscale only), so the blur limit does not depend on the
resolution: a 4K render is judged like its 1K preview, and a clean photo upscaled 2x still passes."""
NATIVE_MAX_PIXELS = 1_200_000
"""Above this, exposure/levels use an exact nearest-neighbour subsample and noise/blocking use tiles."""
TILE = 512
"""Side of the native-resolution tiles (8-aligned) that noise and blocking read from large images."""
HEATMAP_SIDE = 1024
"""Long side of saved heat maps."""

STYLES = ("photo", "graphic", "texture")
SUBCHECKS = ("blur", "noise", "blocking", "exposure", "banding", "copy_move", "naturalness")


@dataclass(frozen=True)
class Limit:
    """A sub-check's limit: the value at which its score is 0.5, which side is bad, and why."""

    value: float
    higher_is_worse: bool
    steepness: float
    unit: str
    source: str
    baseline: float = 0.0  # the value of a perfectly clean image (the score maps value - baseline)


LIMITS: dict[str, Limit] = {
    "blur": Limit(
        30.0, False, 2.0, "Laplacian variance of grey at <= 1024 px, over detail pixels",
        "clean photos 547-2710 (native) and 66-423 (upscaled 2x), clean texture posters 89+; "
        "Gaussian blur sigma 3: 3.5-8.2 (native) and 3.0-18 (on the 2x images)",
    ),
    "noise": Limit(
        8.0, True, 3.0, "noise sigma of grey (Haar HH MAD, grey levels)",
        "clean photos 0-2.2, flat posters 0; Gaussian noise sigma 25 per channel: 14.8-17.1 (doc §4: ~8)",
    ),
    "blocking": Limit(
        1.5, True, 3.0, "8x8 boundary step / largest other-phase step",
        "clean photos 0.92-1.02, clean posters 0.70-1.01 (JPEG q90 posters <= 1.42); JPEG q5: 2.75-5.64 "
        "(doc §4: > 1.5)", baseline=1.0,
    ),
    "exposure": Limit(
        0.08, True, 3.0, "share of pixels with max channel >= 250 (planned text left out)",
        "clean photos 0-0.018, exposure x2: 0.111-0.805 (doc §4: 0.05-0.10)",
    ),
    "exposure_dark": Limit(
        0.40, True, 3.0, "share of pixels with every channel <= 5 (planned text left out)",
        "clean photos 0-0.13 (retina's black surround 0.23); generous because night and space scenes are dark",
    ),
    "banding": Limit(
        32.0, False, 3.0, "distinct levels in the richest channel",
        "clean photos 210-256 (brick texture 142); posterised to 3 bits: 7-8 (doc §4: < ~32)",
    ),
    "copy_move": Limit(
        5.0, True, 3.0, "SIFT self-match pairs sharing one displacement",
        "clean and otherwise degraded photos 0-4; a pasted patch of 1/5 the short side 6-60, except a "
        "flat-sky patch (rocket, 0-3: undetectable and harmless); doc §4: >= 6 is a copy",
    ),
    "naturalness": Limit(
        40.0, True, 3.0, "BRISQUE at 512 px (lower is more natural)",
        "brisque package at 512 px: clean photos -8 to 22, blur sigma 3: 64-81, JPEG q5: 52-92, "
        "noise sigma 25: 19-59; doc §4: >= ~40 is bad",
    ),
}

GRAPHIC_SMOOTH = 0.85
"""A solid/gradient plan whose pixels (outside text regions) are at least this flat/smooth is 'graphic'.

Compose posters are >= 0.96 outside their text; clean photos 0.02-0.75, degraded photos <= 0.83."""
SMOOTH_STEP = 2
"""Neighbouring pixels differing by at most this (every channel, at the working size) are 'smooth'."""
DETAIL_STEP = 2
"""Pixels with a grey neighbour difference above this count as detail for the blur metric."""
TEXT_PAD = 0.02
"""Text regions are grown by this share of the canvas before they are excluded."""

MIN_SIDE = {"blur": 32, "noise": 16, "blocking": 16, "exposure": 8, "banding": 64, "copy_move": 64,
            "naturalness": 64}
"""Smallest short side each sub-check can judge; smaller images skip it."""

BLOCK_EPS = 0.5
"""Grey levels added to both sides of the blocking ratio, so invisible sub-level grids in flat designs
(JPEG q75+ posters) stay near 1."""

CM_NFEATURES = 2000
"""Most SIFT keypoints kept (strongest first); matching is quadratic in this."""
CM_CONTRAST = 0.01
"""SIFT contrast threshold (OpenCV default 0.04): low, so that low-texture pasted patches still carry
keypoints (a flat backdrop patch in astronaut gives 7 matches at 0.01, 4 at 0.02)."""
CM_RATIO = 0.6
"""Lowe's ratio: the best match must be this much closer than the next look-alike elsewhere."""
CM_MIN_SHIFT = 12.0
"""Matched points closer than this (working pixels) are the same structure, not a copy."""
CM_BIN = 3.0
"""Displacements are pooled in bins of this many working pixels (with their 8 neighbours)."""
CM_K = 8
"""Neighbours fetched per keypoint, enough to skip itself and its other orientations."""
CM_CANDIDATES = 5
"""Displacement clusters examined, largest first, to find one that is not a periodic structure."""

# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SubCheck:
    """One sub-check's result: the measured value against its limit, and a score in [0,1]."""

    name: str
    value: float
    limit: float
    passed: bool
    score: float
    detail: dict[str, Any] = field(default_factory=dict)

    def evidence(self) -> dict[str, Any]:
        """Compact JSON-able summary (private detail keys starting with '_' are left out)."""
        out: dict[str, Any] = {"value": _r(self.value), "limit": _r(self.limit), "passed": self.passed,
                               "score": round(self.score, 4)}
        out.update({k: v for k, v in self.detail.items() if not k.startswith("_")})
        return out


def _r(x: float, digits: int = 4) -> float:
    x = float(x)
    if not math.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


def limit_score(value: float, limit: float, higher_is_worse: bool = True, steepness: float = 3.0,
                baseline: float = 0.0) -> float:
    """Map a measurement to [0,1]: 1 clean, exactly 0.5 at the limit, towards 0 beyond it.

    ``1 / (1 + (v/L)^k)`` when higher is worse, ``1 / (1 + (L/v)^k)`` otherwise, with v and L measured
    from ``baseline`` (the clean value, e.g. 1 for the blocking ratio).
    """
    value, limit = float(value) - baseline, float(limit) - baseline
    if not math.isfinite(value):
        return 0.0 if (higher_is_worse and value > 0) or (not higher_is_worse and value < 0) else 1.0
    if limit <= 0:
        return 1.0 if (value <= 0 if higher_is_worse else True) else 0.0
    if higher_is_worse:
        if value <= 0:
            return 1.0
        ratio = value / limit
    else:
        if value <= 0:
            return 0.0
        ratio = limit / value
    ratio = min(ratio, 1e6)
    return 1.0 / (1.0 + ratio ** steepness)


def _make(name: str, value: float, limit: float | None = None, spec: str | None = None,
          **detail: Any) -> SubCheck:
    lim = LIMITS[spec or name]
    limit = lim.value if limit is None else float(limit)
    value = float(value)
    passed = value <= limit if lim.higher_is_worse else value >= limit
    score = limit_score(value, limit, lim.higher_is_worse, lim.steepness, lim.baseline)
    # The logistic is exactly 0.5 at the limit; keep passed and score >= 0.5 in agreement at the edge.
    if passed and score < 0.5:
        score = 0.5
    if not passed and score >= 0.5:
        score = 0.4999
    return SubCheck(name, value, limit, passed, score, detail)


# --------------------------------------------------------------------------- image helpers


def _as_uint8(a: np.ndarray) -> np.ndarray:
    """Any numeric array as uint8: floats in [0,1] are scaled by 255, wider integers are rescaled."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    f = a.astype(np.float64)
    f = np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0)
    if np.issubdtype(a.dtype, np.floating):
        hi = float(f.max()) if f.size else 0.0
        f = f * 255.0 if hi <= 1.0 else f
    elif a.dtype.itemsize > 1 or np.issubdtype(a.dtype, np.signedinteger):
        hi = float(f.max()) if f.size else 0.0
        f = f * (255.0 / 65535.0) if hi > 255 else f
    return np.clip(f + 0.5, 0, 255).astype(np.uint8)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A numpy image (HxW, HxWx1, HxWx3, HxWx4; any numeric dtype) as contiguous uint8 RGB.

    Alpha is composited onto mid grey, so transparency does not read as clipped white or black.
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] == 0:
        raise ValueError(f"expected an HxW or HxWxC image, got shape {a.shape}")
    a = _as_uint8(a)
    c = a.shape[2]
    if c == 1:
        return np.ascontiguousarray(np.repeat(a, 3, axis=2))
    if c == 2:  # grey + alpha
        g = a[:, :, :1].astype(np.float32)
        al = a[:, :, 1:2].astype(np.float32) / 255.0
        return np.ascontiguousarray(np.repeat(np.clip(g * al + 128 * (1 - al) + 0.5, 0, 255), 3, 2).astype(np.uint8))
    if c >= 4:
        rgb = a[:, :, :3].astype(np.float32)
        al = a[:, :, 3:4].astype(np.float32) / 255.0
        return np.ascontiguousarray(np.clip(rgb * al + 128 * (1 - al) + 0.5, 0, 255).astype(np.uint8))
    return np.ascontiguousarray(a[:, :, :3])


def _gray(image: np.ndarray) -> np.ndarray:
    """uint8 grey of an RGB (or already grey) array."""
    a = np.asarray(image)
    if a.ndim == 2:
        return _as_uint8(a)
    a = as_rgb(a)
    return cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)


def _downscale(a: np.ndarray, long_side: int) -> np.ndarray:
    h, w = a.shape[:2]
    s = long_side / max(h, w)
    if s >= 1.0:
        return a
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(a, size, interpolation=cv2.INTER_AREA)


def _where(cx: float, cy: float) -> str:
    """Words for a relative position (0..1): 'top left', 'centre', 'bottom right'."""
    return Box(x=min(max(cx, 0.0), 1.0) * 0.999, y=min(max(cy, 0.0), 1.0) * 0.999,
               w=0.001, h=0.001).describe()


def _where_mask(mask: np.ndarray) -> str:
    """Where most of a boolean map's True pixels are, in words: 'at top left' (a 3x3 grid cell),
    'along the top' (a row of cells), 'down the left side' (a column) or 'across the image'."""
    h, w = mask.shape[:2]
    if h == 0 or w == 0 or not mask.any():
        return "across the image"
    ys = np.minimum(np.arange(h) * 3 // h, 2)
    xs = np.minimum(np.arange(w) * 3 // w, 2)
    rows = np.stack([mask[ys == i].sum(axis=0) for i in range(3)])  # 3 x w
    grid = np.stack([rows[:, xs == j].sum(axis=1) for j in range(3)], axis=1)  # 3 x 3
    total = float(grid.sum())
    i, j = np.unravel_index(int(np.argmax(grid)), grid.shape)
    if grid[i, j] >= 0.4 * total:
        return "at " + _where((j + 0.5) / 3, (i + 0.5) / 3)
    rows, cols = grid.sum(axis=1), grid.sum(axis=0)
    if rows.max() >= 0.6 * total:
        return ("along the top", "across the middle", "along the bottom")[int(np.argmax(rows))]
    if cols.max() >= 0.6 * total:
        return ("down the left side", "down the centre", "down the right side")[int(np.argmax(cols))]
    return "across the image"


# --------------------------------------------------------------------------- sub-checks


def blur_check(image: np.ndarray, limit: float | None = None, work_side: int = BLUR_SIDE) -> SubCheck:
    """Sharpness: variance of the Laplacian of grey at the working size, over detail pixels only.

    Flat areas are left out (a product on a plain backdrop is not blurred); if fewer than 1% of
    pixels carry detail the whole image is used, so a uniformly soft image still scores low.
    """
    g = _downscale(_gray(image), work_side)
    if min(g.shape) < 3:
        raise ValueError("image too small for the blur check")
    gi = g.astype(np.int16)
    d = np.zeros(g.shape, np.int16)
    np.maximum(d[:, :-1], np.abs(np.diff(gi, axis=1)), out=d[:, :-1])
    np.maximum(d[:-1, :], np.abs(np.diff(gi, axis=0)), out=d[:-1, :])
    lap = cv2.Laplacian(g.astype(np.float32), cv2.CV_32F)[1:-1, 1:-1]
    detail = d[1:-1, 1:-1] > DETAIL_STEP
    share = float(detail.mean()) if detail.size else 0.0
    n = int(detail.sum())
    value = float(lap[detail].var()) if n >= max(64, 0.01 * detail.size) else float(lap.var())
    return _make("blur", value, limit, detail_share=_r(share, 3))


def noise_sigma(gray: np.ndarray | Iterable[np.ndarray]) -> float:
    """Gaussian noise sigma from the finest Haar diagonal detail band: median(|HH|) / 0.6745.

    The same robust estimator as skimage.restoration.estimate_sigma (which needs PyWavelets and uses
    db2), with a Haar wavelet so it is a few array operations. Several tiles may be given.
    """
    tiles = [gray] if isinstance(gray, np.ndarray) else list(gray)
    parts = []
    for t in tiles:
        f = np.asarray(t, np.float32)
        h, w = (f.shape[0] // 2) * 2, (f.shape[1] // 2) * 2
        if h < 2 or w < 2:
            continue
        f = f[:h, :w]
        hh = (f[0::2, 0::2] - f[0::2, 1::2] - f[1::2, 0::2] + f[1::2, 1::2]) * 0.5
        parts.append(np.abs(hh).ravel())
    if not parts:
        return 0.0
    return float(np.median(np.concatenate(parts))) / 0.6745


def noise_check(image: np.ndarray | list[np.ndarray], limit: float | None = None) -> SubCheck:
    """Noise: sigma of the grey image (native pixels: downscaling would average the noise away)."""
    tiles = image if isinstance(image, list) else [image]
    grays = [_gray(t) for t in tiles]
    if not any(min(g.shape) >= 2 for g in grays):
        raise ValueError("image too small for the noise check")
    return _make("noise", noise_sigma(grays))


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


def blocking_check(image: np.ndarray | list[np.ndarray], limit: float | None = None) -> SubCheck:
    """JPEG blocking on native pixels (the 8x8 grid is lost by any resize)."""
    tiles = image if isinstance(image, list) else [image]
    grays = [_gray(t) for t in tiles]
    if not any(min(g.shape) >= 16 for g in grays):
        raise ValueError("image too small for the blocking check (needs 16x16)")
    sub = _make("blocking", blocking_ratio(grays), limit)
    if not sub.passed and len(grays) == 1:
        bm = block_map(grays[0])
        if bm.size and bm.max() > 0:
            sub.detail["where"] = _where_mask(bm >= max(0.5, float(np.percentile(bm, 75))))
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


def _max_channel(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel max over the three channels (cv2 is ~10x faster than ndarray.max(axis=2))."""
    r, g, b = cv2.split(np.ascontiguousarray(rgb))
    return cv2.max(cv2.max(r, g), b)


def exposure_check(image: np.ndarray, limit: float | None = None, dark_limit: float | None = None,
                   exclude: np.ndarray | None = None) -> SubCheck:
    """Clipped exposure: share of blown highlights (max channel >= 250) and crushed shadows (all <= 5).

    The reported value is whichever of the two scores worse against its own limit. ``exclude`` (bool,
    True = ignore, same size) leaves out planned text, whose white or black is a design colour.
    """
    rgb = as_rgb(image)
    if rgb.size == 0:
        raise ValueError("empty image")
    mx = _max_channel(rgb)
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
    hi = _make("exposure", bright, limit, kind="highlights", highlights=_r(bright, 3), shadows=_r(dark, 3))
    lo = _make("exposure", dark, dark_limit, spec="exposure_dark", kind="shadows", highlights=_r(bright, 3),
               shadows=_r(dark, 3))
    worst, mask = (hi, bright_mask) if hi.score <= lo.score else (lo, dark_mask)
    if not worst.passed:
        worst.detail["where"] = _where_mask(mask)
    return worst


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
    return _make("banding", max(levels), limit, levels=levels)


def _sift() -> Any:
    tls = _TLS
    sift = getattr(tls, "sift", None)
    if sift is None:
        sift = cv2.SIFT_create(nfeatures=CM_NFEATURES, contrastThreshold=CM_CONTRAST)
        tls.sift = sift
    return sift


_TLS = threading.local()


def copy_move_pairs(gray: np.ndarray, mask: np.ndarray | None = None) -> tuple[int, np.ndarray, np.ndarray]:
    """SIFT self-matching: the largest group of matched keypoint pairs sharing one displacement.

    Returns (count, src points Nx2, dst points Nx2) in the given image's pixels. The self match is
    excluded by index (``trainIdx != queryIdx``, exact copies tie at distance 0), matches closer than
    CM_MIN_SHIFT are the same structure, and Lowe's ratio test against the next other neighbour drops
    periodic texture (bricks, tiles) where every point has many look-alikes.
    """
    empty = np.zeros((0, 2), np.float32)
    kps, desc = _sift().detectAndCompute(gray, mask)
    if desc is None or len(kps) < 4:
        return 0, empty, empty
    pts = np.array([k.pt for k in kps], np.float32)
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(desc, desc, k=min(CM_K, len(kps)))
    pairs: dict[tuple[int, int], None] = {}
    for q, ms in enumerate(knn):
        best = nxt = None
        for m in ms:
            t = m.trainIdx
            if t == q or float(np.hypot(*(pts[t] - pts[q]))) < CM_MIN_SHIFT:
                continue  # the keypoint itself, or the same structure at another scale/orientation
            if best is None:
                best = m
            elif float(np.hypot(*(pts[t] - pts[best.trainIdx]))) >= CM_MIN_SHIFT:
                nxt = m  # the next look-alike somewhere else (not the best match's other orientation)
                break
        if best is None:
            continue
        if nxt is None and len(ms) < CM_K:
            nxt_d = float("inf")
        elif nxt is None:
            continue
        else:
            nxt_d = nxt.distance
        if best.distance < CM_RATIO * nxt_d:
            i, j = sorted((q, best.trainIdx))
            pairs[(i, j)] = None
    if len(pairs) < 2:
        return len(pairs), empty, empty
    idx = np.array(list(pairs), np.int64)
    a, b = pts[idx[:, 0]], pts[idx[:, 1]]
    v = b - a
    flip = (v[:, 0] < 0) | ((v[:, 0] == 0) & (v[:, 1] < 0))
    a2 = np.where(flip[:, None], b, a)
    b2 = np.where(flip[:, None], a, b)
    v = b2 - a2
    bins = np.round(v / CM_BIN).astype(np.int64)
    keys, inv = np.unique(bins, axis=0, return_inverse=True)
    inv = inv.ravel()
    counts = np.bincount(inv, minlength=len(keys))
    # Neighbouring bins pool: a displacement split across a bin edge still counts once.
    lookup = {tuple(k): c for k, c in zip(keys.tolist(), counts.tolist())}
    pooled = np.array([sum(lookup.get((k[0] + dx, k[1] + dy), 0) for dx in (-1, 0, 1) for dy in (-1, 0, 1))
                       for k in keys.tolist()])
    for ci in np.argsort(-pooled, kind="stable")[:CM_CANDIDATES]:
        if pooled[ci] < 2:
            break
        sel = np.abs(bins - keys[ci]).max(axis=1) <= 1
        src, dst = a2[sel], b2[sel]
        if _overlapping(src, dst):
            continue  # a periodic structure (lattice, fence) repeating onto itself, not a pasted patch
        return int(sel.sum()), src, dst
    return 0, empty, empty


def _overlapping(src: np.ndarray, dst: np.ndarray) -> bool:
    """Whether the bounding boxes of two point sets overlap by more than half the smaller box."""
    (sx0, sy0), (sx1, sy1) = src.min(axis=0), src.max(axis=0)
    (dx0, dy0), (dx1, dy1) = dst.min(axis=0), dst.max(axis=0)
    iw = min(sx1, dx1) - max(sx0, dx0)
    ih = min(sy1, dy1) - max(sy0, dy0)
    if iw <= 0 or ih <= 0:
        return False
    smaller = min((sx1 - sx0) * (sy1 - sy0), (dx1 - dx0) * (dy1 - dy0))
    return smaller <= 0 or iw * ih > 0.5 * smaller


def copy_move_check(image: np.ndarray, limit: float | None = None, mask: np.ndarray | None = None,
                    work_side: int = WORK_SIDE) -> SubCheck:
    """Copy-move: SIFT self-match pairs of one displacement on grey at the working size.

    ``mask`` (same size as image, non-zero = search) excludes areas such as planned text, whose
    repeated glyphs are legitimate copies. Points come back in the input image's pixels.
    """
    g0 = _gray(image)
    h0, w0 = g0.shape
    if min(h0, w0) < 16:
        raise ValueError("image too small for the copy-move check")
    g = _downscale(g0, work_side)
    s = g.shape[1] / w0
    m = None
    if mask is not None:
        m = (np.asarray(mask) > 0).astype(np.uint8) * 255
        if m.shape != g.shape:
            m = cv2.resize(m, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_NEAREST)
    count, src, dst = copy_move_pairs(g, m)
    detail: dict[str, Any] = {}
    if count > 0 and len(src):
        src, dst = src / s, dst / s
        shift = (dst - src).mean(axis=0)
        detail["displacement"] = [round(float(shift[0])), round(float(shift[1]))]
        detail["source"] = _where(float(src[:, 0].mean()) / w0, float(src[:, 1].mean()) / h0)
        detail["target"] = _where(float(dst[:, 0].mean()) / w0, float(dst[:, 1].mean()) / h0)
        detail["_pairs"] = (src, dst)
    return _make("copy_move", count, limit, **detail)


# --------------------------------------------------------------------------- BRISQUE (optional)

BRISQUE_DIRS = ("/usr/share/opencv4/quality", "/usr/share/opencv/quality", "/usr/local/share/opencv4/quality")
_brisque_lock = threading.Lock()
_brisque_cache: dict[tuple, tuple[Callable[[np.ndarray], float] | None, str]] = {}


def _brisque_files() -> tuple[str, str] | None:
    model, rng = os.environ.get("PIXLOOP_BRISQUE_MODEL"), os.environ.get("PIXLOOP_BRISQUE_RANGE")
    if model and rng and os.path.isfile(model) and os.path.isfile(rng):
        return model, rng
    for d in BRISQUE_DIRS:
        m = sorted(glob.glob(os.path.join(d, "brisque_model*.yml")))
        r = sorted(glob.glob(os.path.join(d, "brisque_range*.yml")))
        if m and r:
            return m[0], r[0]
    return None


def brisque_engine() -> tuple[Callable[[np.ndarray], float] | None, str]:
    """A BRISQUE scorer of RGB uint8 arrays if one works offline, and which one (or why none).

    Tried in order: cv2.quality.QualityBRISQUE (opencv-contrib) with model files from
    PIXLOOP_BRISQUE_MODEL / PIXLOOP_BRISQUE_RANGE or /usr/share/opencv4/quality/*.yml; then the
    ``brisque`` package (numpy-2 patched). Nothing is ever downloaded.
    """
    key = (os.environ.get("PIXLOOP_BRISQUE_MODEL"), os.environ.get("PIXLOOP_BRISQUE_RANGE"))
    with _brisque_lock:
        if key in _brisque_cache:
            return _brisque_cache[key]
        engine: Callable[[np.ndarray], float] | None = None
        why = ""
        quality = getattr(cv2, "quality", None)
        files = _brisque_files()
        if quality is not None and hasattr(quality, "QualityBRISQUE_create") and files:
            try:
                model = quality.QualityBRISQUE_create(*files)
                lock = threading.Lock()

                def _cv(rgb: np.ndarray, _m=model, _l=lock) -> float:
                    with _l:
                        return float(_m.compute(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[0])

                _cv(np.full((64, 64, 3), 128, np.uint8) + np.arange(64, dtype=np.uint8)[None, :, None])
                engine, why = _cv, f"cv2.quality.QualityBRISQUE ({os.path.basename(files[0])})"
            except Exception as e:  # noqa: BLE001 - optional engine
                why = f"cv2.quality BRISQUE failed: {type(e).__name__}: {e}"
        if engine is None:
            try:
                from brisque import BRISQUE  # type: ignore[import-not-found]

                if not getattr(BRISQUE, "_pixloop_patched", False):
                    orig = BRISQUE.scale_features
                    # numpy >= 2.4 refuses float() of 1-element arrays (critic-engines.md §4).
                    BRISQUE.scale_features = lambda s, f, _o=orig: _o(
                        s, [float(np.ravel(np.asarray(x, float))[0]) for x in f])
                    BRISQUE._pixloop_patched = True
                obj = BRISQUE(url=False)
                lock = threading.Lock()

                def _pkg(rgb: np.ndarray, _o=obj, _l=lock) -> float:
                    with _l:
                        return float(_o.score(rgb))

                engine, why = _pkg, "brisque package"
            except ImportError:
                why = (why + "; " if why else "") + ("no BRISQUE model offline (needs opencv-contrib cv2.quality "
                                                     "with brisque_*.yml, or the brisque package)")
            except Exception as e:  # noqa: BLE001
                why = (why + "; " if why else "") + f"brisque package failed: {type(e).__name__}: {e}"
        _brisque_cache[key] = (engine, why)
        return engine, why


def naturalness_check(image: np.ndarray, limit: float | None = None, work_side: int = WORK_SIDE,
                      engine: Callable[[np.ndarray], float] | None = None) -> SubCheck | None:
    """BRISQUE at the working size (the doc's calibration was at ~512 px); None if no engine is available."""
    if engine is None:
        engine, _ = brisque_engine()
        if engine is None:
            return None
    rgb = _downscale(as_rgb(image), work_side)
    return _make("naturalness", float(engine(rgb)), limit)


# --------------------------------------------------------------------------- style


def smooth_fraction(rgb: np.ndarray, exclude: np.ndarray | None = None) -> float:
    """Share of pixels whose right and lower neighbours differ by <= SMOOTH_STEP in every channel.

    ``exclude`` (bool, True = ignore) leaves out planned text; it is ignored if it covers > 75%.
    """
    a = as_rgb(rgb)
    h, w = a.shape[:2]
    if h < 2 or w < 2:
        return 1.0
    base = np.ascontiguousarray(a[:-1, :-1])
    dx = _max_channel(cv2.absdiff(np.ascontiguousarray(a[:-1, 1:]), base))
    dy = _max_channel(cv2.absdiff(np.ascontiguousarray(a[1:, :-1]), base))
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


# --------------------------------------------------------------------------- preparation


@dataclass
class Prepared:
    """The views of one image the sub-checks read."""

    size: tuple[int, int]  # original (w, h)
    native: np.ndarray  # RGB, whole image, or an exact nearest-neighbour subsample when huge
    tiles: list[np.ndarray]  # native-resolution RGB tiles (8-aligned origins) for noise/blocking
    work: np.ndarray  # RGB at long side <= WORK_SIDE
    sharp: np.ndarray  # grey at long side <= BLUR_SIDE
    alpha: bool = False
    subsampled: bool = False


def _pil_rgb(image: Image.Image) -> tuple[Image.Image, bool]:
    """Any PIL image as RGB; alpha composited on mid grey; 16-bit/float rescaled."""
    im = image
    alpha = False
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        alpha = im.getextrema()[3][0] < 255
        bg = Image.new("RGBA", im.size, (128, 128, 128, 255))
        bg.alpha_composite(im)
        return bg.convert("RGB"), alpha
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        return Image.fromarray(as_rgb(np.asarray(im)), "RGB"), False
    return (im if im.mode == "RGB" else im.convert("RGB")), alpha


def prepare(image: Image.Image | np.ndarray) -> Prepared:
    """Working views of an image. A huge image is never converted to numpy whole: it is reduced in PIL
    first, and native pixels come from an exact nearest-neighbour subsample and 8-aligned tiles."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(as_rgb(image), "RGB")
    pil, alpha = _pil_rgb(image)
    w, h = pil.size
    if w * h <= NATIVE_MAX_PIXELS:
        native = np.asarray(pil, dtype=np.uint8)
        gray = cv2.cvtColor(native, cv2.COLOR_RGB2GRAY)
        return Prepared((w, h), native, [native], np.ascontiguousarray(_downscale(native, WORK_SIDE)),
                        _downscale(gray, BLUR_SIDE), alpha)
    k = math.sqrt(w * h / NATIVE_MAX_PIXELS)
    sub = pil.resize((max(1, int(w / k)), max(1, int(h / k))), Image.Resampling.NEAREST)
    factor = max(1, int(max(w, h) / (2 * BLUR_SIDE)))
    reduced = _downscale(np.asarray(pil.reduce(factor) if factor > 1 else pil, dtype=np.uint8), BLUR_SIDE)
    sharp = cv2.cvtColor(reduced, cv2.COLOR_RGB2GRAY)
    work = _downscale(reduced, WORK_SIDE)
    tw, th = min(TILE, w), min(TILE, h)
    origins = set()
    for fx in (0.25, 0.75):
        for fy in (0.25, 0.75):
            x0 = int(min(max(0, fx * w - tw / 2), w - tw)) // 8 * 8
            y0 = int(min(max(0, fy * h - th / 2), h - th)) // 8 * 8
            origins.add((x0, y0))
    tiles = [np.asarray(pil.crop((x0, y0, x0 + tw, y0 + th)), dtype=np.uint8) for x0, y0 in sorted(origins)]
    return Prepared((w, h), np.asarray(sub, dtype=np.uint8), tiles, np.ascontiguousarray(work), sharp, alpha, True)


# --------------------------------------------------------------------------- heat maps


def _overlay(base_rgb: np.ndarray, heat: np.ndarray) -> Image.Image:
    """Heat (float, any size, 0..1) in JET over a dimmed grey copy of the image, at <= HEATMAP_SIDE."""
    base = _downscale(base_rgb, HEATMAP_SIDE)
    h, w = base.shape[:2]
    hm = cv2.resize(np.clip(heat, 0, 1).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    colour = cv2.applyColorMap((hm * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    grey = cv2.cvtColor(cv2.cvtColor(base, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    alpha = (0.25 + 0.6 * hm)[:, :, None]
    out = grey.astype(np.float32) * (1 - alpha) + colour.astype(np.float32) * alpha
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


def blocking_heatmap(rgb: np.ndarray) -> Image.Image:
    bm = block_map(_gray(rgb))
    top = float(np.percentile(bm, 99)) if bm.size else 0.0
    heat = bm / top if top > 0 else bm
    h8, w8 = bm.shape[0] * 8, bm.shape[1] * 8
    return _overlay(rgb[:h8, :w8] if h8 and w8 else rgb, heat)


def exposure_heatmap(rgb: np.ndarray, kind: str) -> Image.Image:
    mx = _max_channel(rgb)
    mask = (mx >= 250) if kind == "highlights" else (mx <= 5)
    return _overlay(rgb, mask.astype(np.float32))


def copy_move_heatmap(rgb: np.ndarray, src: np.ndarray, dst: np.ndarray) -> Image.Image:
    base = _downscale(rgb, HEATMAP_SIDE)
    s = base.shape[1] / rgb.shape[1]
    img = cv2.cvtColor(cv2.cvtColor(base, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    img = np.ascontiguousarray((img * 0.6).astype(np.uint8))
    r = max(3, round(0.006 * max(img.shape[:2])))
    for (x0, y0), (x1, y1) in zip(src * s, dst * s):
        p0, p1 = (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1)))
        cv2.line(img, p0, p1, (255, 220, 0), 1, cv2.LINE_AA)
        cv2.circle(img, p0, r, (0, 255, 255), 2, cv2.LINE_AA)
        cv2.circle(img, p1, r, (255, 0, 80), 2, cv2.LINE_AA)
    for pts, colour in ((src * s, (0, 255, 255)), (dst * s, (255, 0, 80))):
        x, y, bw, bh = cv2.boundingRect(pts.astype(np.float32))
        cv2.rectangle(img, (x - r, y - r), (x + bw + r, y + bh + r), colour, 2)
    return Image.fromarray(img, "RGB")


# --------------------------------------------------------------------------- feedback


def feedback_for(sub: SubCheck) -> str:
    """One actionable line for a failing sub-check."""
    d, v, lim = sub.detail, sub.value, sub.limit
    where = f" {d['where']}" if d.get("where") else ""
    if sub.name == "blur":
        if v < 1e-6:
            return (f"image is uniform, with no detail at all (sharpness 0 < {lim:.0f}): "
                    "re-render with the planned content, sharp and in focus")
        return f"image is blurred (sharpness {v:.1f} < {lim:.0f}): re-render sharp and in focus, no motion blur"
    if sub.name == "noise":
        return f"image is noisy (noise sigma {v:.1f} > {lim:.0f}): re-render clean, without grain or sensor noise"
    if sub.name == "blocking":
        return f"JPEG blocking {v:.1f} > {lim:.1f}{where}: regenerate as PNG or at higher quality"
    if sub.name == "exposure":
        if d.get("kind") == "shadows":
            return (f"crushed shadows: {v:.0%} of pixels are pure black (> {lim:.0%}){where}: "
                    "lift the shadows, expose brighter")
        return (f"clipped exposure: {v:.0%} of pixels are blown out (> {lim:.0%}){where}: "
                "reduce exposure, keep highlight detail")
    if sub.name == "banding":
        return (f"posterised / banding: only {v:.0f} levels per channel (< {lim:.0f}): "
                "re-render with smooth tonal gradation, no colour reduction")
    if sub.name == "copy_move":
        src, dst = d.get("source", "one place"), d.get("target", "another")
        if src == dst:
            return (f"duplicated patch: a region at {src} is repeated nearby ({v:.0f} matching points, shift "
                    f"{d.get('displacement')} px): regenerate that area or use a new seed")
        return (f"duplicated patch: region at {src} is copied to {dst} ({v:.0f} matching points): "
                "regenerate that area or use a new seed")
    if sub.name == "naturalness":
        return f"image looks unnatural (BRISQUE {v:.0f} > {lim:.0f}): re-render cleaner, without distortions"
    return f"{sub.name} {v:.3g} beyond its limit {lim:.3g}"


# --------------------------------------------------------------------------- critic


def _threshold(plan: Plan | None) -> float:
    spec = plan.checks.get(NAME) if plan is not None else None
    return float(spec.threshold) if spec is not None else INFO.threshold


class ArtifactsCritic(CriticBase):
    """Technical image quality: the worst applied sub-check's score against the threshold."""

    name = NAME
    info = INFO

    def __init__(self, brisque: Callable[[np.ndarray], float] | None | bool = True) -> None:
        # True: use an offline BRISQUE if one is found; False: never; a callable: that scorer (tests).
        self._brisque = brisque

    def _naturalness_engine(self) -> tuple[Callable[[np.ndarray], float] | None, str]:
        if self._brisque is False or self._brisque is None:
            return None, "BRISQUE disabled"
        if callable(self._brisque):
            return self._brisque, "custom scorer"
        return brisque_engine()

    def run_subchecks(self, prep: Prepared, plan: Plan | None) -> tuple[str, str, dict[str, SubCheck],
                                                                       dict[str, str], dict[str, float]]:
        """Style, style reason, the applied sub-checks' results, skipped reasons and timings (ms)."""
        timings: dict[str, float] = {}
        t = time.perf_counter()
        w, h = prep.size
        ww, wh = prep.work.shape[1], prep.work.shape[0]
        tmask = text_mask(plan, ww, wh)
        style, why = classify_style(plan, prep.work, tmask)
        timings["style"] = (time.perf_counter() - t) * 1000
        skip = dict(SKIP_REASONS[style])
        if style == "photo" and plan is not None and plan.subjects and plan.style.background in ("solid", "gradient"):
            skip["naturalness"] = "composite of reference photos on a designed background: not a natural image"
        short = min(w, h)
        for name, side in MIN_SIDE.items():
            if name not in skip and short < side:
                skip[name] = f"image too small ({w}x{h}; needs a short side of {side} px)"
        results: dict[str, SubCheck] = {}

        def run(name: str, fn: Callable[[], SubCheck | None]) -> None:
            if name in skip:
                return
            t0 = time.perf_counter()
            try:
                out = fn()
            except Exception as e:  # noqa: BLE001 - one sub-check failing never sinks the verdict
                skip[name] = f"could not run: {type(e).__name__}: {e}"[:200]
                out = None
            timings[name] = (time.perf_counter() - t0) * 1000
            if out is not None:
                results[name] = out

        run("blur", lambda: blur_check(prep.sharp))
        run("noise", lambda: noise_check(prep.tiles))
        run("blocking", lambda: blocking_check(prep.tiles))
        native_text = None
        if tmask is not None and tmask.mean() <= 0.75:
            native_text = text_mask(plan, prep.native.shape[1], prep.native.shape[0])
        run("exposure", lambda: exposure_check(prep.native, exclude=native_text))
        run("banding", lambda: banding_check(prep.native))
        cm_mask = None
        if tmask is not None and tmask.mean() <= 0.75:
            cm_mask = ~tmask
        run("copy_move", lambda: copy_move_check(prep.work, mask=cm_mask))
        if "copy_move" in results and prep.work.shape[1] != w:
            # copy_move_check reported points in work pixels: scale them (and the shift) to the original.
            sub = results["copy_move"]
            f = w / prep.work.shape[1]
            if "_pairs" in sub.detail:
                s0, d0 = sub.detail["_pairs"]
                sub.detail["_pairs"] = (s0 * f, d0 * f)
            if "displacement" in sub.detail:
                sub.detail["displacement"] = [round(c * f) for c in sub.detail["displacement"]]
        if "naturalness" not in skip:
            engine, how = self._naturalness_engine()
            if engine is None:
                skip["naturalness"] = f"skipped: {how}"
            else:
                run("naturalness", lambda: naturalness_check(prep.work, engine=engine))
                if "naturalness" in results:
                    results["naturalness"].detail["engine"] = how
        if prep.subsampled:
            for name in ("exposure", "banding"):
                if name in results:
                    results[name].detail["sampled"] = "nearest-neighbour subsample of a large image"
            for name in ("noise", "blocking"):
                if name in results:
                    results[name].detail["sampled"] = f"{len(prep.tiles)} native tiles of {TILE} px"
        return style, why, results, skip, timings

    def _heatmap(self, worst: SubCheck, prep: Prepared, store: Any) -> str | None:
        """Save a heat map for the worst failing sub-check if it has one; its store-relative path."""
        if store is None or worst.passed or worst.name not in ("blocking", "copy_move", "exposure"):
            return None
        if worst.name == "blocking":
            rgb = prep.native if not prep.subsampled else prep.tiles[0]
            img = blocking_heatmap(rgb)
        elif worst.name == "copy_move":
            pairs = worst.detail.get("_pairs")
            if pairs is None:
                return None
            base = prep.work
            f = base.shape[1] / prep.size[0]
            img = copy_move_heatmap(base, pairs[0] * f, pairs[1] * f)
        else:
            img = exposure_heatmap(prep.native, worst.detail.get("kind", "highlights"))
        return store.put_image(img).path

    def check(self, image: Image.Image | np.ndarray, plan: Plan | None, context: CheckContext | None = None) -> Verdict:
        t0 = time.perf_counter()
        context = context or CheckContext()
        threshold = _threshold(plan)
        try:
            prep = prepare(image)
            t_prep = (time.perf_counter() - t0) * 1000
            style, why, results, skipped, timings = self.run_subchecks(prep, plan)
            timings = {"prepare": t_prep, **timings}
        except Exception as e:  # noqa: BLE001 - a critic never crashes the loop
            error = f"{type(e).__name__}: {e}"
            return Verdict(critic=NAME, candidate_id=context.candidate_id, score=0.0, passed=False,
                           threshold=threshold, evidence={"style": None, "checks": {}, "skipped": {}, "heatmap": None},
                           feedback=f"artifact check failed; image quality could not be checked ({error[:200]})",
                           seconds=round(time.perf_counter() - t0, 3), error=error)
        evidence: dict[str, Any] = {
            "style": style,
            "style_reason": why,
            "checks": {n: results[n].evidence() for n in SUBCHECKS if n in results},
            "skipped": {n: skipped[n] for n in SUBCHECKS if n in skipped},
            "heatmap": None,
        }
        if prep.alpha:
            evidence["alpha"] = "transparent pixels composited on mid grey"
        if not results:
            score = 1.0
            feedback = f"no artifact sub-check applies to this {prep.size[0]}x{prep.size[1]} image"
            evidence["worst"] = None
        else:
            worst = min(results.values(), key=lambda s: s.score)
            score = worst.score
            evidence["worst"] = worst.name
            if worst.passed:
                feedback = (f"no artifacts ({style}): {len(results)} checks within limits; "
                            f"closest to its limit: {worst.name} (score {worst.score:.2f})")
            else:
                feedback = feedback_for(worst)
                failing = [n for n in SUBCHECKS if n in results and not results[n].passed and n != worst.name]
                if failing:
                    feedback += f" (also failing: {', '.join(failing)})"
            try:
                t = time.perf_counter()
                evidence["heatmap"] = self._heatmap(worst, prep, context.store)
                if evidence["heatmap"]:
                    timings["heatmap"] = (time.perf_counter() - t) * 1000
            except Exception as e:  # noqa: BLE001
                evidence["heatmap_error"] = f"{type(e).__name__}: {e}"[:200]
        evidence["timings_ms"] = {k: round(v, 1) for k, v in timings.items()}
        passed = score >= threshold
        return Verdict(critic=NAME, candidate_id=context.candidate_id, score=float(min(1.0, max(0.0, score))),
                       passed=passed, threshold=threshold, evidence=evidence, feedback=feedback,
                       seconds=round(time.perf_counter() - t0, 3))


__all__ = ["ArtifactsCritic", "LIMITS", "Limit", "Prepared", "SubCheck", "as_rgb", "banding_check", "block_map",
           "blocking_check", "blocking_ratio", "blur_check", "brisque_engine", "classify_style", "copy_move_check",
           "copy_move_pairs", "exposure_check", "levels_per_channel", "limit_score", "naturalness_check",
           "noise_check", "noise_sigma", "prepare", "smooth_fraction", "text_mask"]
