"""Text: the largest balanced layout of an element that fits its region, set with an optional plate or
outline in a colour that contrasts with the text."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from agent.backends.compose.canvas import box_px, contrasting_colour, hex_rgb, paste_rgba, rounded_rect_alpha
from agent.backends.compose.fonts import FONT_LOCK, face_for, load_face
from agent.models import Style, TextElement

MAX_LINES = 3
"""Most lines a text element is wrapped into."""
MIN_FONT_PX = 6
PLATE_ALPHA = 0.85


@dataclass(frozen=True)
class TextLayout:
    """A text element set at one size: its lines, stroke and ink extents relative to the first baseline."""

    size: int
    lines: tuple[str, ...]
    stroke: int
    pitch: int
    line_extents: tuple[tuple[int, int, int, int], ...]
    fits: bool

    @property
    def ink_width(self) -> int:
        """Width of the widest line's ink."""
        return max(right - left for left, _, right, _ in self.line_extents)

    @property
    def ink_top(self) -> int:
        """Top of the ink, relative to the first baseline (negative: above it)."""
        return min(t + i * self.pitch for i, (_, t, _, _) in enumerate(self.line_extents))

    @property
    def ink_bottom(self) -> int:
        """Bottom of the ink, relative to the first baseline."""
        return max(b + i * self.pitch for i, (_, _, _, b) in enumerate(self.line_extents))

    @property
    def ink_height(self) -> int:
        """Height of the whole block's ink."""
        return self.ink_bottom - self.ink_top


def _stroke_px(size: int) -> int:
    """Outline width at a font size: thick enough to separate glyphs from any background."""
    return max(2, size // 14)


def _plate_pad(size: int) -> tuple[int, int]:
    """Horizontal and vertical padding of a text plate at a font size."""
    return max(4, round(0.45 * size)), max(3, round(0.28 * size))


def _wrap(font: ImageFont.FreeTypeFont, paragraphs: list[list[str]], max_w: float, stroke: int,
          force: bool = False) -> list[str] | None:
    """Greedy word wrap; None when a word alone is too wide (unless forced)."""
    lines: list[str] = []
    for words in paragraphs:
        current = ""
        for word in words:
            trial = f"{current} {word}" if current else word
            if font.getlength(trial) + 2 * stroke <= max_w:
                current = trial
                continue
            if not current:
                if not force:
                    return None
                lines.append(word)
                continue
            lines.append(current)
            current = word
            if font.getlength(word) + 2 * stroke > max_w and not force:
                return None
        if current:
            lines.append(current)
    return lines


def layout_text(content: str, font_key: str, max_w: int, max_h: int, *, outline: bool = False,
                plate_box: tuple[int, int] | None = None) -> TextLayout:
    """The largest layout of `content` (at most MAX_LINES balanced lines) fitting max_w x max_h.

    With `plate_box` (region width, height) the plate padding must fit the region too.
    If nothing fits, the smallest size is returned with fits=False. Text the font has no glyphs for is set in
    a fallback font that has them all (``fonts.face_for``; MissingFontError when none is installed).
    """
    face = face_for(font_key, content)
    paragraphs = [p.split() for p in content.splitlines() if p.split()] or [[content.strip() or content]]

    def measure(size: int, lines: list[str], fits: bool) -> TextLayout:
        font = load_face(face, size)
        stroke = _stroke_px(size) if outline else 0
        ascent, descent = font.getmetrics()
        extents: list[tuple[int, int, int, int]] = []
        for line in lines:
            left, top, right, bottom = font.getbbox(line, stroke_width=stroke, anchor="ls")
            extents.append((int(left), int(top), int(right), int(bottom)))
        return TextLayout(size, tuple(lines), stroke, round((ascent + descent) * 1.02), tuple(extents), fits)

    def width_limit(size: int) -> int:
        padx = _plate_pad(size)[0] if plate_box else 0
        return min(max_w, (plate_box[0] if plate_box else max_w) - 2 * padx)

    def attempt(size: int) -> TextLayout | None:
        limit = width_limit(size)
        if limit <= 0:
            return None
        stroke = _stroke_px(size) if outline else 0
        lines = _wrap(load_face(face, size), paragraphs, limit, stroke)
        if lines is None or len(lines) > MAX_LINES:
            return None
        lay = measure(size, lines, True)
        ok = lay.ink_width <= limit and lay.ink_height <= max_h
        if plate_box:
            ok = ok and lay.ink_height + 2 * _plate_pad(size)[1] <= plate_box[1]
        return lay if ok else None

    def balanced(lay: TextLayout) -> TextLayout:
        """Re-wrap at the narrowest width that keeps the line count, so no line is a lonely word."""
        if len(lay.lines) < 2:
            return lay
        font = load_face(face, lay.size)
        lo, hi = 1, width_limit(lay.size)
        while lo < hi:
            mid = (lo + hi) // 2
            lines = _wrap(font, paragraphs, mid, lay.stroke)
            if lines is not None and len(lines) <= len(lay.lines):
                hi = mid
            else:
                lo = mid + 1
        lines = _wrap(font, paragraphs, hi, lay.stroke)
        if lines is None or len(lines) != len(lay.lines):
            return lay
        even = measure(lay.size, lines, True)
        return even if even.ink_height <= lay.ink_height else lay

    lo, hi = MIN_FONT_PX, max(MIN_FONT_PX, int(max_h * 1.6))
    best: TextLayout | None = None
    with FONT_LOCK:
        while lo <= hi:
            mid = (lo + hi) // 2
            lay = attempt(mid)
            if lay is not None:
                best, lo = lay, mid + 1
            else:
                hi = mid - 1
        if best is not None:
            return balanced(best)
        font = load_face(face, MIN_FONT_PX)
        stroke = _stroke_px(MIN_FONT_PX) if outline else 0
        lines = _wrap(font, paragraphs, max(1, width_limit(MIN_FONT_PX)), stroke, force=True) or [content]
        return measure(MIN_FONT_PX, lines, False)


def draw_text(canvas: Image.Image, element: TextElement, style: Style) -> dict[str, Any]:
    """Set one text element centred in its region (with plate/outline as styled); returns its meta."""
    x0, y0, x1, y1 = box_px(element.region, canvas.width, canvas.height)
    rw, rh = x1 - x0, y1 - y0
    text_rgb = hex_rgb(style.text_color)
    back_rgb = contrasting_colour(text_rgb, style.palette)
    face = face_for(style.font, element.content)
    lay = layout_text(element.content, style.font, rw, max(1, round(rh * style.text_scale)),
                      outline=style.text_outline, plate_box=(rw, rh) if style.text_plate else None)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    base_y = round(cy - (lay.ink_top + lay.ink_bottom) / 2)
    half_w = lay.ink_width / 2
    box = [math.floor(cx - half_w), base_y + lay.ink_top, math.ceil(cx + half_w), base_y + lay.ink_bottom]
    if lay.fits:
        box = [max(x0, box[0]), max(y0, box[1]), min(x1, box[2]), min(y1, box[3])]
    meta: dict[str, Any] = {"box": box, "size": lay.size, "lines": list(lay.lines), "fits": lay.fits}
    if face.name != style.font:
        meta["fallback_font"] = face.name

    if style.text_plate:
        padx, pady = _plate_pad(lay.size)
        plate = [max(0, box[0] - padx), max(0, box[1] - pady),
                 min(canvas.width, box[2] + padx), min(canvas.height, box[3] + pady)]
        pw, ph = plate[2] - plate[0], plate[3] - plate[1]
        if pw > 0 and ph > 0:
            a = rounded_rect_alpha(pw, ph, min(0.35 * lay.size, ph / 2)) * (PLATE_ALPHA * 255)
            rgba = np.empty((ph, pw, 4), np.uint8)
            rgba[..., :3] = back_rgb
            rgba[..., 3] = np.clip(a + 0.5, 0, 255).astype(np.uint8)
            paste_rgba(canvas, Image.fromarray(rgba, "RGBA"), (plate[0], plate[1]))
            meta["plate"] = plate

    draw = ImageDraw.Draw(canvas)
    with FONT_LOCK:
        font = load_face(face, lay.size)
        for i, (line, (left, _, right, _)) in enumerate(zip(lay.lines, lay.line_extents)):
            x = round(cx - (left + right) / 2)
            draw.text((x, base_y + i * lay.pitch), line, font=font, fill=text_rgb, anchor="ls",
                      stroke_width=lay.stroke, stroke_fill=back_rgb if lay.stroke else None)
    return meta


__all__ = ["MAX_LINES", "MIN_FONT_PX", "PLATE_ALPHA", "TextLayout", "draw_text", "layout_text"]
