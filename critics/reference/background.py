"""The reference's own backdrop: a product shot on a plain background is the object, not its backdrop.

The backdrop colour is estimated from the image border (median Lab colour of a strip ``BORDER_SHARE`` wide);
when most of the border is within ``PLAIN_TOLERANCE`` of it the backdrop is plain and every pixel within the
tolerance that is connected to the border is masked out (holes inside the object, such as a white label on a
bottle shot on white, stay in). A reference with transparency uses its alpha. A busy border (a photo crop) keeps
the whole image.
"""

from __future__ import annotations

import cv2
import numpy as np

BORDER_SHARE = 0.03
"""Width of the border strip the backdrop colour is estimated from, as a share of the short side."""
PLAIN_TOLERANCE = 14.0
"""Lab distance (OpenCV 8-bit Lab) within which a pixel has the backdrop's colour (JPEG noise and soft shadows
on a studio backdrop stay within ~10)."""
PLAIN_BORDER_SHARE = 0.85
"""The backdrop is plain when at least this share of the border is within the tolerance."""
MIN_OBJECT_SHARE = 0.01
"""A mask covering less than this (or more than 1 - this) of the image is degenerate: the whole image is kept."""


def object_mask(rgb: np.ndarray, alpha: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """255 where the reference's object is, and how it was found: ``alpha`` (its transparency), ``backdrop``
    (a plain backdrop masked out) or ``full`` (the whole image: a busy or missing backdrop)."""
    h, w = rgb.shape[:2]
    full = np.full((h, w), 255, np.uint8)
    if alpha is not None and int(alpha.min()) < 250:
        mask = np.where(alpha >= 128, 255, 0).astype(np.uint8)
        return (mask, "alpha") if _reasonable(mask) else (full, "full")
    if min(h, w) < 16:
        return full, "full"
    b = max(2, round(BORDER_SHARE * min(h, w)))
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    border = np.concatenate([lab[:b].reshape(-1, 3), lab[-b:].reshape(-1, 3),
                             lab[:, :b].reshape(-1, 3), lab[:, -b:].reshape(-1, 3)])
    backdrop = np.median(border, axis=0)
    if float(np.mean(np.linalg.norm(border - backdrop, axis=1) < PLAIN_TOLERANCE)) < PLAIN_BORDER_SHARE:
        return full, "full"
    near = (np.linalg.norm(lab - backdrop, axis=2) < PLAIN_TOLERANCE).astype(np.uint8)
    # the backdrop is what is near its colour and connected to the border: flood it from a 1-px frame
    framed = cv2.copyMakeBorder(near, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    flood = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(framed, flood, (0, 0), 2, flags=4)
    filled = np.where(framed[1:-1, 1:-1] == 2, 0, 255).astype(np.uint8)
    k = max(1, round(0.01 * min(h, w)))
    opened = np.asarray(cv2.morphologyEx(filled, cv2.MORPH_OPEN,
                                         cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))), np.uint8)
    return (opened, "backdrop") if _reasonable(opened) else (full, "full")


def _reasonable(mask: np.ndarray) -> bool:
    share = float(np.count_nonzero(mask)) / mask.size
    return MIN_OBJECT_SHARE <= share <= 1.0 - MIN_OBJECT_SHARE


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The mask's bounding box (x0, y0, x1, y1), exclusive ends; the whole image for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return 0, 0, mask.shape[1], mask.shape[0]
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


__all__ = ["BORDER_SHARE", "MIN_OBJECT_SHARE", "PLAIN_BORDER_SHARE", "PLAIN_TOLERANCE", "mask_box", "object_mask"]
