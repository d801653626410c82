"""Blur sub-check: sharpness = 1 - the blur effect of Crete-Roffet et al. (2007), per tile of the grey at
long side <= ``BLUR_SIDE``, so that a blurred region is found (and boxed) as well as a blurred image.

The blur effect re-blurs the image with a 9-tap box filter along each axis and measures how much of the
neighbour variation survives: a sharp image loses most of it (effect ~0.2), a blurred one has little to lose
(~0.6 and more). It is the metric of ``skimage.measure.blur_effect``, computed here with OpenCV on tiles.
Being a ratio, it does not depend on the content's contrast the way the variance of the Laplacian does (which
rated a clean low-contrast photo like a blurred busy one).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from critics.artifacts.common import BLUR_SIDE, LIMITS, SubCheck, downscale, make_subcheck, round_sig, to_gray
from critics.artifacts.tiles import Grid, grid

BLUR_FILTER = 9
"""Length of the re-blurring box filter (as in Crete-Roffet et al. and skimage's default 11 at this scale)."""
STRUCTURE_MIN = 3.0
"""Band-pass contrast (grey levels) a tile needs to be judged: flat sky, a plain backdrop or a wall carry no
sharpness evidence either way, while a blurred detailed region keeps most of its band-pass contrast."""
LOCAL_DROP = 0.4
"""...and at least this much blurrier (in blur effect) than the image's sharp reference tiles."""
LOCAL_SHARE = 0.15
"""A group of blurred tiles covering at least this share of an otherwise sharp image is a local blur (a
defocused background is usually smaller, or not blurred enough to reach the local limit)."""
SHARP_QUANTILE = 25.0
"""The image's sharpness is read from its sharpest structured tiles (this percentile of their blur effect), so a
sharp subject in front of a defocused background is a sharp photo."""
DETAIL_STEP = 2
"""Kept for callers of the old metric: pixels with a grey neighbour difference above this count as detail."""


@dataclass
class BlurMap:
    """Per-tile blur effect and structure of one grey image."""

    grid: Grid
    effect: np.ndarray  # blur effect per tile, 0 sharp .. 1 flat/blurred
    structure: np.ndarray  # coarse contrast per tile
    whole: float  # blur effect of the whole image

    @property
    def structured(self) -> np.ndarray:
        return self.structure >= STRUCTURE_MIN


def _effect(sf: np.ndarray | float, sv: np.ndarray | float) -> np.ndarray:
    sf, sv = np.asarray(sf, np.float64), np.asarray(sv, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sf > 0, (sf - sv) / np.where(sf > 0, sf, 1.0), 1.0)


def blur_map(gray: np.ndarray) -> BlurMap:
    """Blur effect and structure per tile of a grey image (any size; tiles of ~``TILE_SIDE`` px)."""
    g = np.asarray(gray, np.float32)
    h, w = g.shape
    tg = grid(h, w)
    effects, whole = [], []
    for axis in (0, 1):
        ksize = (1, BLUR_FILTER) if axis == 0 else (BLUR_FILTER, 1)  # cv2 sizes are (width, height)
        b = cv2.blur(g, ksize, borderType=cv2.BORDER_REFLECT)
        df = np.zeros_like(g)
        v = np.zeros_like(g)
        if axis == 0:
            df[:-1] = np.abs(g[1:] - g[:-1])
            v[:-1] = np.maximum(df[:-1] - np.abs(b[1:] - b[:-1]), 0)
        else:
            df[:, :-1] = np.abs(g[:, 1:] - g[:, :-1])
            v[:, :-1] = np.maximum(df[:, :-1] - np.abs(b[:, 1:] - b[:, :-1]), 0)
        sf, sv = tg.sums(df), tg.sums(v)
        effects.append(_effect(sf, sv))
        whole.append(float(_effect(sf.sum(), sv.sum())))
    # Band-pass contrast (difference of Gaussians, sigma 2 and 8 at this size, computed at half size): the detail
    # a blur softens but keeps, without the grain (gone at sigma 2) or smooth shading and bokeh (in the sigma-8 copy).
    half = cv2.resize(g, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    dog = cv2.GaussianBlur(half, (0, 0), 1.0) - cv2.GaussianBlur(half, (0, 0), 4.0)
    hg = tg.halved()
    areas = np.maximum(hg.areas(), 1.0)
    structure = np.sqrt(np.maximum(hg.sums(dog * dog), 0.0) / areas)
    return BlurMap(tg, np.maximum(effects[0], effects[1]), structure, max(whole))


def blur_check(image: np.ndarray, limit: float | None = None, work_side: int = BLUR_SIDE,
               composite: bool = False) -> SubCheck:
    """Sharpness in [0, 1] (1 - blur effect) of the image's sharpest structured tiles, or of the worst sizable
    group of blurred tiles when one covers at least ``LOCAL_SHARE`` of the image (a local blur).

    ``composite``: a composite of reference photos on a designed background is as sharp as its references (a
    video still, a portrait's depth of field): it is held to the ``blur_composite`` limit, and no local blur is
    judged in it. Detail: ``local`` (a region, not the whole image, is blurred), ``regions`` (pixel boxes, in the given
    image's pixels, of the blurred tile groups when the check fails), ``blurred_share``; ``_map`` (BlurMap)
    and ``_scale`` (given image px per map px) for the heat map.
    """
    g0 = to_gray(image)
    g = downscale(g0, work_side)
    if min(g.shape) < 16:
        raise ValueError("image too small for the blur check")
    bm = blur_map(g)
    structured = bm.structured
    ref = float(np.percentile(bm.effect[structured], SHARP_QUANTILE)) if structured.sum() >= 3 else bm.whole
    sharp = 1.0 - ref
    # A tile is blurred when it is both blurred in absolute terms and far softer than the image's sharp parts.
    local_effect = max(1.0 - LIMITS["blur_local"].value, ref + LOCAL_DROP)
    blurred = structured & (bm.effect >= local_effect)
    area = bm.grid.areas() / float(g.size)
    groups = []  # (share of the image, sharpness, pixel box) per 8-connected group of blurred tiles
    if blurred.any():
        n, labels = cv2.connectedComponents(blurred.astype(np.uint8), connectivity=8)
        for k in range(1, n):
            sel = labels == k
            rows, cols = np.nonzero(sel)
            groups.append((float(area[sel].sum()), 1.0 - float(np.median(bm.effect[sel])),
                           bm.grid.box(int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max()))))
    value, is_local = sharp, False
    if not composite and sharp >= LIMITS["blur"].value:  # sharp overall: is a sizable region blurred?
        for share, group_sharp, _ in groups:
            if share >= LOCAL_SHARE and group_sharp < value:
                value, is_local = group_sharp, True
    spec = "blur_local" if is_local else ("blur_composite" if composite else "blur")
    sub = make_subcheck("blur", value, limit, spec=spec,
                        structured_share=round_sig(float(area[structured].sum()), 3),
                        blurred_share=round_sig(float(area[blurred].sum()), 3), local=is_local)
    s = g0.shape[1] / g.shape[1]
    sub.detail["_map"], sub.detail["_scale"], sub.detail["_size"] = bm, s, (g0.shape[1], g0.shape[0])
    if not sub.passed:
        keep = [b for share, _, b in groups if share >= LOCAL_SHARE] if is_local else [(0, 0, g.shape[1], g.shape[0])]
        sub.detail["regions"] = [[round(c * s) for c in b] for b in keep]
    return sub


__all__ = ["BLUR_FILTER", "BlurMap", "DETAIL_STEP", "LOCAL_DROP", "LOCAL_SHARE", "SHARP_QUANTILE", "STRUCTURE_MIN",
           "blur_check", "blur_map"]
