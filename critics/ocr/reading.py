"""Reading: the image prepared for rapidocr (BGR, downscaled) and the OCR call, giving ``OcrLine``s with
quads in the original image's pixels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from agent.runtime.images import flatten_rgb

MAX_SIDE = 3072
"""Images whose long side exceeds this are area-reduced before OCR (boxes map back): the working image that
recognition crops come from. Detection chooses its own scale per pass (``critics.ocr.multiscale``), so this
only bounds memory and time; text that is legible at 4096 px stays legible at 3/4 of it."""

Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]
PixelBox = tuple[int, int, int, int]


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class OcrLine:
    """One line read by OCR: text, confidence 0..1, and a 4-point quad in the ORIGINAL image's pixels."""

    text: str
    score: float
    box: Quad

    def bbox(self) -> PixelBox:
        """Axis-aligned [x0, y0, x1, y1] integer bounds of the quad."""
        xs = [p[0] for p in self.box]
        ys = [p[1] for p in self.box]
        return (int(np.floor(min(xs))), int(np.floor(min(ys))),
                int(np.ceil(max(xs))), int(np.ceil(max(ys))))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image as RGB: alpha flattened onto white, palette/grey/16-bit/float converted."""
    return flatten_rgb(image)


def prepare_image(image: Image.Image) -> tuple[np.ndarray, float]:
    """The image as a contiguous uint8 **BGR** array for rapidocr, and the downscale factor (<= 1).

    rapidocr passes 3-channel ndarrays through untouched and treats them as BGR (it converts only
    PIL/path/bytes input from RGB), so the RGB pixels are reversed here.
    """
    w, h = image.size
    factor = max(w, h) // (2 * MAX_SIDE)
    if factor >= 2 and image.mode in ("RGB", "RGBA", "L", "LA"):
        image = image.reduce(factor)  # a huge image: box-average in PIL first, so no full-size copy is made
    rgb = to_rgb(image)
    scale = 1.0
    if max(w, h) > MAX_SIDE:
        scale = MAX_SIDE / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    arr = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[:, :, ::-1])
    return arr, scale


def read_text(image: Image.Image, engine: Callable[[np.ndarray], Any] | None = None) -> list[OcrLine]:
    """OCR the image: lines with text, confidence and quads in the original image's pixels.

    Without ``engine``: rapidocr's models, one detection pass at a fixed scale (``critics.ocr.multiscale``;
    the OCR critic adds passes while required text is unread). ``engine``: any callable taking a BGR array and
    returning rapidocr-shaped output (``txts``, ``boxes``, ``scores``), called once on the working image.
    Engine errors propagate; an image without text (or 0-sized) gives [].
    """
    if image.width == 0 or image.height == 0:
        return []
    if engine is None:
        from critics.ocr.multiscale import read_image

        return read_image(image).lines
    arr, _ = prepare_image(image)
    if arr.size == 0 or int(arr.max()) == int(arr.min()):
        return []  # a uniform image has no text (and tiny ones would be upscaled to 736 px for nothing)
    out = engine(arr)
    txts = getattr(out, "txts", None)
    boxes = getattr(out, "boxes", None)
    scores = getattr(out, "scores", None)
    if not txts or boxes is None or len(boxes) == 0:
        return []
    sx, sy = image.width / arr.shape[1], image.height / arr.shape[0]  # back to original pixels
    lines: list[OcrLine] = []
    for txt, quad, sc in zip(txts, boxes, scores if scores is not None else [1.0] * len(txts)):
        if not str(txt).strip():
            continue
        q = np.asarray(quad, dtype=np.float64).reshape(-1, 2)[:4] * (sx, sy)
        q[:, 0] = q[:, 0].clip(0, image.width)
        q[:, 1] = q[:, 1].clip(0, image.height)
        pts = tuple((round(float(x), 1), round(float(y), 1)) for x, y in q)
        lines.append(OcrLine(text=str(txt), score=float(sc), box=pts))  # type: ignore[arg-type]
    return lines
