"""Colours and pixel helpers the compose renderers share: hex colours and WCAG contrast, plan boxes in
pixels, cover-fitting an image, alpha masks and compositing RGBA layers."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from agent.models.errors import BackendError

RGB = tuple[int, int, int]
PixelBox = tuple[int, int, int, int]


def hex_rgb(hex_colour: str) -> RGB:
    """'#rrggbb' -> (r, g, b)."""
    h = hex_colour.lstrip("#")
    if len(h) != 6:
        raise BackendError(f"colour {hex_colour!r} is not #rrggbb")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def relative_luminance(rgb: RGB) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""
    def lin(c: int) -> float:
        v = c / 255.0
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG 2 contrast ratio between two colours (1..21)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def contrasting_colour(text: RGB, palette: list[str]) -> RGB:
    """A backing colour for text: a palette colour if it reaches AAA contrast (7:1), else black or white."""
    best = max(((0, 0, 0), (255, 255, 255)), key=lambda c: contrast_ratio(text, c))
    for c in (hex_rgb(p) for p in palette):
        if contrast_ratio(text, c) >= 7.0:
            return c
    return best


def box_px(box: Any, width: int, height: int) -> PixelBox:
    """A canvas-relative Box in pixels, clamped to the canvas and at least 1 px wide and high."""
    x0, y0, x1, y1 = box.to_pixels(width, height)
    x0, y0 = max(0, min(x0, width - 1)), max(0, min(y0, height - 1))
    return x0, y0, max(x0 + 1, min(x1, width)), max(y0 + 1, min(y1, height))


def cover_fit(img: Image.Image, width: int, height: int, centre: tuple[float, float] = (0.5, 0.5)) -> Image.Image:
    """Scale an image to fill width x height and crop the overflow around `centre` (relative)."""
    iw, ih = img.size
    s = max(width / iw, height / ih)
    cw, ch = min(iw, width / s), min(ih, height / s)
    x0 = max(0.0, min(max(0.0, centre[0] * iw - cw / 2), iw - cw))
    y0 = max(0.0, min(max(0.0, centre[1] * ih - ch / 2), ih - ch))
    return img.resize((width, height), Image.Resampling.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch))


def rounded_rect_alpha(w: int, h: int, radius: float, feather: float = 1.0) -> np.ndarray:
    """Anti-aliased (or, with a larger feather, soft-edged) rounded-rectangle mask in [0,1]."""
    radius = max(0.0, min(radius, w / 2, h / 2))
    xs = np.abs(np.arange(w, dtype=np.float32) + 0.5 - w / 2)[None, :] - (w / 2 - radius)
    ys = np.abs(np.arange(h, dtype=np.float32) + 0.5 - h / 2)[:, None] - (h / 2 - radius)
    outside = np.hypot(np.maximum(xs, 0), np.maximum(ys, 0))
    inside = np.minimum(np.maximum(xs, ys), 0)
    d = outside + inside - radius
    return np.clip(-d / feather, 0, 1) if feather > 1 else np.clip(0.5 - d, 0, 1)


def paste_rgba(canvas: Image.Image, layer: Image.Image, xy: tuple[int, int]) -> None:
    """Alpha-composite an RGBA layer onto the RGB canvas at xy, clipped to the canvas."""
    x, y = xy
    cx0, cy0 = max(0, x), max(0, y)
    cx1, cy1 = min(canvas.width, x + layer.width), min(canvas.height, y + layer.height)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    part = layer.crop((cx0 - x, cy0 - y, cx1 - x, cy1 - y))
    under = canvas.crop((cx0, cy0, cx1, cy1)).convert("RGBA")
    canvas.paste(Image.alpha_composite(under, part).convert("RGB"), (cx0, cy0))


__all__ = ["RGB", "PixelBox", "box_px", "contrast_ratio", "contrasting_colour", "cover_fit", "hex_rgb",
           "paste_rgba", "relative_luminance", "rounded_rect_alpha"]
