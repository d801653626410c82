"""Drawings for the visual report (report.html): a critic's evidence drawn on a copy of a candidate image,
an edit mask tinted over an image, and small JPEG data URLs of any of them.

Everything here works on a thumbnail: the evidence's pixel boxes (in the candidate's own pixels) are scaled to
it. Unknown or malformed evidence is skipped, never raised: the drawing illustrates a verdict, it is not one.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

FINAL_SIDE = 1024  # long side of the final image's thumbnail
CANDIDATE_SIDE = 512  # long side of a candidate's evidence drawing
EXTRA_SIDE = 320  # long side of a heat map, difference map or mask thumbnail
JPEG_QUALITY = 80

PASS, FAIL, INFO, WARN = (22, 163, 74), (220, 38, 38), (37, 99, 235), (234, 88, 12)
MASK_TINT = (236, 72, 153)


def open_image(path: Path) -> Image.Image | None:
    """An image file as RGB (transparency flattened on mid grey), or None when it cannot be read."""
    try:
        with Image.open(path) as im:
            im.draft("RGB", (FINAL_SIDE, FINAL_SIDE))  # JPEG: decode at a reduced scale, much faster
            img: Image.Image = ImageOps.exif_transpose(im) or im
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (128, 128, 128))
                flat.paste(rgba, mask=rgba.getchannel("A"))
                return flat
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def thumbnail(image: Image.Image, side: int) -> Image.Image:
    """A copy no longer than ``side`` on its long side (never enlarged)."""
    out = image.copy()
    out.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return out


def data_url(image: Image.Image, quality: int = JPEG_QUALITY) -> str:
    """The image as an inline JPEG data: URL."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality, optimize=False)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _box(value: Any) -> tuple[float, float, float, float] | None:
    """[x0, y0, x1, y1] (or a polygon of [x, y] points) as a normalised box; None if it is not one."""
    try:
        if isinstance(value, Sequence) and len(value) >= 3 and all(isinstance(p, Sequence) for p in value):
            xs, ys = [float(p[0]) for p in value], [float(p[1]) for p in value]
            return min(xs), min(ys), max(xs), max(ys)
        if isinstance(value, Sequence) and len(value) == 4 and not isinstance(value, str):
            x0, y0, x1, y1 = (float(v) for v in value)
            return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
    except (TypeError, ValueError, IndexError):
        return None
    return None


class _Painter:
    """Boxes and labels on a thumbnail, given in the original image's pixels."""

    def __init__(self, image: Image.Image, original_size: tuple[int, int]):
        self.image = image
        self.draw = ImageDraw.Draw(image)
        ow, oh = original_size
        self.sx = image.width / ow if ow > 0 else 1.0
        self.sy = image.height / oh if oh > 0 else 1.0
        self.font = ImageFont.load_default()
        self.count = 0

    def box(self, value: Any, colour: tuple[int, int, int], label: str = "", width: int = 3) -> None:
        b = _box(value)
        if b is None:
            return
        x0, y0, x1, y1 = b[0] * self.sx, b[1] * self.sy, b[2] * self.sx, b[3] * self.sy
        if x1 - x0 < 1 or y1 - y0 < 1:
            return
        self.draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)
        self.count += 1
        if label:
            self.label(x0, y0, label[:60], colour)

    def label(self, x: float, y: float, text: str, colour: tuple[int, int, int]) -> None:
        left, t, r, b = self.draw.textbbox((0, 0), text, font=self.font)
        w, h = r - left + 6, b - t + 4
        x = max(0.0, min(x, self.image.width - w))
        y = y - h if y - h >= 0 else y
        self.draw.rectangle((x, y, x + w, y + h), fill=colour)
        self.draw.text((x + 3, y + 2 - t), text, fill=(255, 255, 255), font=self.font)


def _ocr(p: _Painter, ev: dict[str, Any]) -> None:
    for line in ev.get("lines") or []:
        if isinstance(line, dict):
            p.box(line.get("box"), INFO, f"read: {line.get('text', '')}", width=2)
    for el in ev.get("elements") or []:
        if not isinstance(el, dict):
            continue
        ok = el.get("cer") == 0 or (el.get("read") and el.get("read") == el.get("expected"))
        if el.get("box") is not None:
            p.box(el["box"], PASS if ok else FAIL, "" if ok else f"read: {el.get('read', '')}")
        else:  # nothing read: show where it was expected
            p.box(el.get("region"), FAIL, f"missing: {el.get('expected', '')}", width=2)


def _face(p: _Painter, ev: dict[str, Any]) -> None:
    for ident in ev.get("identities") or []:
        if not isinstance(ident, dict):
            continue
        sim = ident.get("similarity")
        sim_txt = f" sim {sim:.2f}" if isinstance(sim, int | float) else " no match"
        p.box(ident.get("box"), PASS if ident.get("same") else FAIL, f"{ident.get('subject', 'face')}{sim_txt}")
    for extra in ev.get("extra_faces") or []:
        p.box(extra, WARN, "extra face")


def _artifacts(p: _Painter, ev: dict[str, Any]) -> None:
    full = (0, 0, p.image.width / p.sx, p.image.height / p.sy)
    for region in ev.get("regions") or []:
        b = _box(region)
        if b is not None and not all(abs(a - c) < 2 for a, c in zip(b, full)):  # a whole-image box says nothing
            p.box(region, WARN, f"artifact: {ev.get('worst') or ''}".strip())


def _preservation(p: _Painter, ev: dict[str, Any]) -> None:
    if ev.get("worst_region") is not None:
        p.box(ev["worst_region"], FAIL, "most changed outside the mask", width=2)


_DRAWERS = {"ocr": _ocr, "face": _face, "artifacts": _artifacts, "preservation": _preservation}


def draw_evidence(image: Image.Image, original_size: tuple[int, int], verdicts: Iterable[dict[str, Any]]) -> int:
    """Draw every known critic's evidence on ``image`` (a thumbnail of an image of ``original_size``) in place;
    the number of boxes drawn."""
    p = _Painter(image, original_size)
    for v in verdicts:
        ev = v.get("evidence") if isinstance(v, dict) else None
        drawer = _DRAWERS.get(str(v.get("critic"))) if isinstance(v, dict) else None
        if drawer is not None and isinstance(ev, dict):
            try:
                drawer(p, ev)
            except (TypeError, ValueError, KeyError, AttributeError):
                continue  # malformed evidence: skip its drawing
    return p.count


def tint_mask(image: Image.Image, mask: Image.Image, alpha: float = 0.45) -> Image.Image:
    """``image`` with the mask's white (may change) area tinted; the mask is resized to the image."""
    m = mask.convert("L").resize(image.size, Image.Resampling.NEAREST)
    m = m.point(lambda v: int(v * alpha) if v >= 128 else 0)
    tint = Image.new("RGB", image.size, MASK_TINT)
    return Image.composite(tint, image, m)


__all__ = ["CANDIDATE_SIDE", "EXTRA_SIDE", "FINAL_SIDE", "data_url", "draw_evidence", "open_image", "thumbnail",
           "tint_mask"]
