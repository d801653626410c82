"""Colour, the second signal, and the colour model the low-texture search uses.

- Where the features located the object, the candidate is warped back onto the reference and compared cell by
  cell (``colour_agreement``): a product re-coloured but for its label disagrees where it was re-coloured.
- Where the low-texture search located it (an axis-aligned box, the object maybe rotated), the chroma (Lab a*,
  b*) histograms over the object's mask are compared (``colour_similarity``, the Bhattacharyya coefficient of
  smoothed histograms): a plain object is one colour, so its histogram is its colour.
- The low-texture search back-projects a hue x saturation x value model of the object (``colour_model``).

Chroma, not RGB, for comparisons: a brightness or contrast change of +-25% moves a*, b* by at most ~14 units,
and grey, white and black objects have a defined chroma (neutral) where their hue is not.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter, maximum_filter

BINS = 32
"""Bins per chroma axis (8 OpenCV Lab units each)."""
SMOOTH_SIGMA = 1.5
"""Gaussian smoothing of the histogram, in bins."""
GRID = 4
"""Cells per side of the object's box that colour_agreement compares."""
CELL_TOLERANCE = 16.0
"""Colour distance (OpenCV 8-bit Lab units) up to which a cell agrees fully; it disagrees fully at twice this.
A +-25% brightness or contrast change moves a saturated colour's a*, b* by up to ~14."""
LIGHTNESS_WEIGHT = 0.5
"""Weight of the lightness difference (after removing the object's overall change) in a cell's distance."""
MODEL_BINS = (30, 8, 4)
"""Hue, saturation and value bins of the histogram the low-texture search back-projects."""


def _smooth(hist: np.ndarray) -> np.ndarray:
    out = gaussian_filter(hist.astype(np.float32), SMOOTH_SIGMA, mode="constant")
    total = float(out.sum())
    return out / total if total > 0 else out


def lab_of(rgb: np.ndarray) -> np.ndarray:
    """OpenCV 8-bit Lab of an RGB array."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB)


def chroma_histogram(lab: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Normalised, smoothed BINS x BINS histogram of a*, b* over the mask (None: every pixel)."""
    hist = cv2.calcHist([lab], [1, 2], mask, [BINS, BINS], [0, 256, 0, 256])
    return _smooth(hist)


def colour_agreement(ref_lab: np.ndarray, cand_lab: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> float:
    """How much of the object has the reference's colours where they are, in [0, 1], for a candidate warped onto the
    reference (pixel for pixel). The object's box is cut into GRID x GRID cells; a cell agrees when its median
    a*, b* and its lightness relative to the whole object's (a global brightness change is no difference) are
    within CELL_TOLERANCE, and fades to disagreeing at twice that; the result is the area-weighted mean over
    the cells. A bottle re-coloured but for its label agrees on the label only (a histogram would still share
    half its mass); a third of the object covered by something else disagrees on a third."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return 0.0
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    cells: list[tuple[int, np.ndarray, np.ndarray]] = []
    for gy in range(GRID):
        for gx in range(GRID):
            cy0, cy1 = y0 + (y1 - y0) * gy // GRID, y0 + (y1 - y0) * (gy + 1) // GRID
            cx0, cx1 = x0 + (x1 - x0) * gx // GRID, x0 + (x1 - x0) * (gx + 1) // GRID
            m = mask[cy0:cy1, cx0:cx1] > 0
            area = int(m.sum())
            if area == 0:
                continue
            seen = m & (valid[cy0:cy1, cx0:cx1] > 0)
            if int(seen.sum()) < 0.5 * area:
                cells.append((area, np.full(3, np.nan), np.full(3, np.nan)))  # mostly outside the candidate
                continue
            cells.append((area, np.median(ref_lab[cy0:cy1, cx0:cx1][seen].astype(np.float32), axis=0),
                          np.median(cand_lab[cy0:cy1, cx0:cx1][seen].astype(np.float32), axis=0)))
    if not cells:
        return 0.0
    areas = np.array([c[0] for c in cells], np.float64)
    diff = np.array([c[2] - c[1] for c in cells], np.float64)  # candidate - reference, per cell (L, a, b)
    seen_cells = ~np.isnan(diff[:, 0])
    if not seen_cells.any():
        return 0.0
    diff[:, 0] -= float(np.median(diff[seen_cells, 0]))  # lightness relative to the object's own
    distance = np.hypot(np.hypot(diff[:, 1], diff[:, 2]), diff[:, 0] * LIGHTNESS_WEIGHT)
    agree = np.clip(2.0 - distance / CELL_TOLERANCE, 0.0, 1.0)
    agree[~seen_cells] = 0.0
    return float(np.sum(agree * areas) / np.sum(areas))


def colour_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two normalised histograms, in [0, 1]."""
    if float(a.sum()) <= 0 or float(b.sum()) <= 0:
        return 0.0
    return float(np.clip(np.sum(np.sqrt(a * b)), 0.0, 1.0))


def hsv_of(rgb: np.ndarray) -> np.ndarray:
    """OpenCV 8-bit HSV (hue 0..179) of an RGB array."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)


def colour_model(hsv: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The object's hue x saturation x value histogram for back-projection, scaled to a peak of 1 and widened by
    one bin on every axis (``maximum_filter``, hue wrapping round). Hue and saturation do not move when a colour
    is brightened or darkened (its value does, by about one of the MODEL_BINS[2] bins at +-25%); a contrast
    change moves saturation by about one bin. Value keeps a white object apart from a grey or black one."""
    hist = cv2.calcHist([hsv], [0, 1, 2], mask, list(MODEL_BINS), [0, 180, 0, 256, 0, 256])
    peak = float(hist.max())
    if peak <= 0:
        return hist.astype(np.float32)
    hist = maximum_filter(hist / peak, size=3, mode=("wrap", "constant", "constant"))
    hist = gaussian_filter(hist, 0.5, mode=("wrap", "constant", "constant"))
    return (hist / float(hist.max())).astype(np.float32)


def back_project(hsv: np.ndarray, model: np.ndarray) -> np.ndarray:
    """How much each pixel looks like the object's colours, in [0, 1] (float32, the image's size)."""
    # indexed in NumPy: OpenCV's Python binding reads a 3-D array as a 2-D image of many channels, so
    # cv2.calcBackProject cannot take a 3-D histogram from Python
    h_bins, s_bins, v_bins = model.shape
    return model[(hsv[..., 0].astype(np.intp) * h_bins) // 180, (hsv[..., 1].astype(np.intp) * s_bins) >> 8,
                 (hsv[..., 2].astype(np.intp) * v_bins) >> 8]


__all__ = ["BINS", "CELL_TOLERANCE", "GRID", "LIGHTNESS_WEIGHT", "MODEL_BINS", "SMOOTH_SIGMA", "back_project",
           "chroma_histogram", "colour_agreement", "colour_model", "colour_similarity", "hsv_of", "lab_of"]
