"""Blur sub-check: variance of the Laplacian over detail pixels, judged at long side <= ``BLUR_SIDE``."""

from __future__ import annotations

import cv2
import numpy as np

from critics.artifacts.common import BLUR_SIDE, SubCheck, downscale, make_subcheck, round_sig, to_gray

DETAIL_STEP = 2
"""Pixels with a grey neighbour difference above this count as detail for the blur metric."""


def blur_check(image: np.ndarray, limit: float | None = None, work_side: int = BLUR_SIDE) -> SubCheck:
    """Sharpness: variance of the Laplacian of grey at the working size, over detail pixels only.

    Flat areas are left out (a product on a plain backdrop is not blurred); if fewer than 1% of
    pixels carry detail the whole image is used, so a uniformly soft image still scores low.
    """
    g = downscale(to_gray(image), work_side)
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
    return make_subcheck("blur", value, limit, detail_share=round_sig(share, 3))
