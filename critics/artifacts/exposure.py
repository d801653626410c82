"""Exposure sub-check: blown highlights that cost the picture detail, crushed shadows, and under-exposure
(planned text left out).

A white sky or a plain white backdrop above a normally exposed scene is a natural highlight, not a fault: the
clipped share alone flagged clean photos of bright skies (a clean plane photo is 51% blown sky). What marks
over-exposure is where the clipping is and what the rest of the picture looks like:

- ``blown``: the clipped share counts in full when the unclipped rest of the picture is bright as well
  (median grey >= ``BRIGHT_REST``: the whole exposure is too high), and at a fifth otherwise (a sky);
- ``ragged``: clipped pixels outside large smooth blobs (left by a morphological opening), i.e. texture cut
  by clipping, as on a blown-out face, wall or foliage (x ``RAGGED_WEIGHT``);
- ``colour``: one channel clipped while another is far below, i.e. saturated colours pushed into the
  ceiling (x ``COLOUR_WEIGHT``).

The highlights value is the largest of the three, in "effective blown share" units against one limit.
Under-exposure is judged on the brightest 1% of the picture, planned text included: a well exposed photo
reaches the upper part of the range somewhere (a night scene has its lights, a dark design its headline); one
whose 99th grey percentile stays low is too dark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from critics.artifacts.common import SubCheck, as_rgb, make_subcheck, max_channel, round_sig, where_mask

CLIP_LEVEL = 250
"""A pixel is blown when its largest channel (median-filtered, so grain does not fragment a clipped sky)
reaches this level."""
DARK_LEVEL = 5
BRIGHT_REST = 95.0
"""Median grey of the unclipped pixels above which a large clipped share is over-exposure, not a sky."""
SKY_WEIGHT = 0.2
"""Weight of the clipped share when the rest of the picture is normally exposed (a natural bright sky)."""
RAGGED_WEIGHT = 3.0
COLOUR_WEIGHT = 4.0
COLOUR_FLOOR = 160
"""A clipped pixel whose smallest channel is below this is a saturated colour pushed into the ceiling."""
OPEN_SHARE = 0.02
"""Diameter of the opening that keeps large smooth clipped blobs, as a share of the short side."""
UNDER_PERCENTILE = 99.0


@dataclass
class ExposureMeasures:
    """The exposure measures of one image (shares of the judged pixels) and its blown and dark masks."""

    share: float  # blown (median-filtered max channel >= CLIP_LEVEL)
    ragged: float  # blown outside large smooth blobs
    colour: float  # a channel clipped while another is far below
    rest_median: float  # median grey of the unclipped pixels
    shadows: float  # every channel <= DARK_LEVEL
    p99: float  # 99th percentile of grey, planned text included
    blown_mask: np.ndarray
    dark_mask: np.ndarray

    def effective(self) -> float:
        """The effective blown share (see the module docstring)."""
        blown = self.share if self.rest_median >= BRIGHT_REST else SKY_WEIGHT * self.share
        return max(blown, RAGGED_WEIGHT * self.ragged, COLOUR_WEIGHT * self.colour)


def exposure_measures(rgb: np.ndarray, exclude: np.ndarray | None = None) -> ExposureMeasures:
    """The exposure measures of an RGB image (see the module docstring) and the blown mask."""
    mx = max_channel(rgb)
    mn = cv2.min(cv2.min(rgb[:, :, 0], rgb[:, :, 1]), rgb[:, :, 2])
    smooth_mx = cv2.medianBlur(np.ascontiguousarray(mx), 5) if min(mx.shape) >= 5 else mx
    blown = smooth_mx >= CLIP_LEVEL
    dark = mx <= DARK_LEVEL
    colour = (mx >= CLIP_LEVEL) & (mn < COLOUR_FLOOR)
    keep = None
    if exclude is not None and exclude.shape == mx.shape and (~exclude).any():
        keep = ~exclude
        blown, dark, colour = blown & keep, dark & keep, colour & keep
    n = int(keep.sum()) if keep is not None else mx.size
    b8 = blown.view(np.uint8)
    ragged = _ragged(b8) / n
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    rest_mask = (~blown if keep is None else (~blown & keep)).view(np.uint8)
    return ExposureMeasures(
        share=cv2.countNonZero(b8) / n, ragged=ragged, colour=cv2.countNonZero(colour.view(np.uint8)) / n,
        rest_median=_percentile(grey, 50.0, rest_mask, empty=255.0), shadows=cv2.countNonZero(dark.view(np.uint8)) / n,
        # Planned text counts here: a dark design lit by its white headline is not under-exposed.
        p99=_percentile(grey, UNDER_PERCENTILE, None, empty=0.0),
        blown_mask=blown, dark_mask=dark)


def _percentile(grey: np.ndarray, q: float, mask: np.ndarray | None, empty: float) -> float:
    """A percentile of uint8 grey (under a 0/1 mask) from its histogram (the lower level at a tie)."""
    hist = cv2.calcHist([grey], [0], mask, [256], [0, 256]).ravel()
    total = float(hist.sum())
    if total <= 0:
        return empty
    return float(np.searchsorted(np.cumsum(hist), q / 100.0 * total))


def _ragged(b8: np.ndarray) -> int:
    """Blown pixels outside large smooth blobs: those a morphological opening removes (at half size when the
    image is large, which is plenty for a share)."""
    h, w = b8.shape
    small = b8 if max(h, w) <= 512 else cv2.resize(b8, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST)
    k = max(3, int(round(min(small.shape) * OPEN_SHARE)) | 1)
    if min(small.shape) <= k:
        return 0
    opened = cv2.morphologyEx(small, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return int(cv2.countNonZero(cv2.subtract(small, opened))) * (b8.size // max(1, small.size))


def exposure_check(image: np.ndarray, limit: float | None = None, dark_limit: float | None = None,
                   exclude: np.ndarray | None = None, under_limit: float | None = None,
                   judge_under: bool = True) -> SubCheck:
    """Exposure: blown highlights (effective blown share), crushed shadows (share of pixels with every channel
    <= 5) and under-exposure (99th grey percentile); the reported value is whichever scores worst against its
    own limit. ``exclude`` (bool, True = ignore, same size) leaves planned text out of the highlights and
    shadows, whose white or black is a design colour. ``judge_under=False`` skips under-exposure (a composite
    on a designed background: a product on a black backdrop is dark by design)."""
    rgb = as_rgb(image)
    if rgb.size == 0:
        raise ValueError("empty image")
    m = exposure_measures(rgb, exclude)
    detail: dict[str, Any] = {
        "highlights": round_sig(m.share, 3), "shadows": round_sig(m.shadows, 3), "ragged": round_sig(m.ragged, 3),
        "colour_clipped": round_sig(m.colour, 3), "rest_median": round_sig(m.rest_median, 3),
        "p99": round_sig(m.p99, 3)}
    hi = make_subcheck("exposure", m.effective(), limit, kind="highlights", **detail)
    lo = make_subcheck("exposure", m.shadows, dark_limit, spec="exposure_dark", kind="shadows", **detail)
    subs = [hi, lo]
    if judge_under:
        subs.append(make_subcheck("exposure", m.p99, under_limit, spec="exposure_under", kind="under", **detail))
    worst = min(subs, key=lambda s: s.score)
    mask = {"highlights": m.blown_mask, "shadows": m.dark_mask}.get(worst.detail["kind"])
    if isinstance(mask, np.ndarray) and mask.any():
        worst.detail["where"] = where_mask(mask)
    if not worst.passed:
        h, w = rgb.shape[:2]
        # Blown highlights in a normally exposed picture (a blown face, a burnt-out window) are local: their
        # boxes; a picture exposed too bright or too dark as a whole is global.
        local = worst.detail["kind"] == "highlights" and m.rest_median < BRIGHT_REST
        if local and isinstance(mask, np.ndarray) and mask.any():
            worst.detail["regions"] = mask_regions(mask)
        else:
            worst.detail["regions"] = [[0, 0, w, h]]
    return worst


def mask_regions(mask: np.ndarray, min_share: float = 0.002, max_regions: int = 8) -> list[list[int]]:
    """Bounding boxes of the larger connected parts of a mask (pixels of the mask's image), largest first."""
    m = np.asarray(mask, np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    total = float(m.size)
    parts = sorted((stats[k] for k in range(1, n)), key=lambda s: -int(s[4]))
    out = [[int(x), int(y), int(x + bw), int(y + bh)] for x, y, bw, bh, area in parts
           if area >= min_share * total][:max_regions]
    if not out and parts:
        x, y, bw, bh, _ = parts[0]
        out = [[int(x), int(y), int(x + bw), int(y + bh)]]
    return out


__all__ = ["BRIGHT_REST", "CLIP_LEVEL", "COLOUR_WEIGHT", "ExposureMeasures", "RAGGED_WEIGHT", "SKY_WEIGHT",
           "exposure_check", "exposure_measures", "mask_regions"]
