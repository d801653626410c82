"""Preparation of one image for the artifact sub-checks: native pixels (or an exact subsample and tiles
of a huge image), the working-size RGB and the sharpness grey."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
from PIL import Image

from critics.artifacts.common import BLUR_SIDE, WORK_SIDE, as_rgb, downscale

NATIVE_MAX_PIXELS = 1_200_000
"""Above this, exposure/levels use an exact nearest-neighbour subsample and noise/blocking use tiles."""
TILE = 512
"""Side of the native-resolution tiles (8-aligned) that noise and blocking read from large images."""


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
        im = im if im.mode == "RGBA" else im.convert("RGBA")  # an RGBA image is not copied (memory)
        extrema = cast("tuple[tuple[int, int], ...]", im.getextrema())  # RGBA: one (min, max) per band
        alpha = extrema[3][0] < 255
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
        return Prepared((w, h), native, [native], np.ascontiguousarray(downscale(native, WORK_SIDE)),
                        downscale(gray, BLUR_SIDE), alpha)
    k = math.sqrt(w * h / NATIVE_MAX_PIXELS)
    sub = pil.resize((max(1, int(w / k)), max(1, int(h / k))), Image.Resampling.NEAREST)
    factor = max(1, int(max(w, h) / (2 * BLUR_SIDE)))
    reduced = downscale(np.asarray(pil.reduce(factor) if factor > 1 else pil, dtype=np.uint8), BLUR_SIDE)
    sharp = cv2.cvtColor(reduced, cv2.COLOR_RGB2GRAY)
    work = downscale(reduced, WORK_SIDE)
    tw, th = min(TILE, w), min(TILE, h)
    origins = set()
    for fx in (0.25, 0.75):
        for fy in (0.25, 0.75):
            x0 = int(min(max(0, fx * w - tw / 2), w - tw)) // 8 * 8
            y0 = int(min(max(0, fy * h - th / 2), h - th)) // 8 * 8
            origins.add((x0, y0))
    tiles = [np.asarray(pil.crop((x0, y0, x0 + tw, y0 + th)), dtype=np.uint8) for x0, y0 in sorted(origins)]
    return Prepared((w, h), np.asarray(sub, dtype=np.uint8), tiles, np.ascontiguousarray(work), sharp, alpha, True)
