"""Edits of a source photo: `apply_edit(source, mask, plan, seed, store)` changes what the plan's `EditSpec` asks
for inside the mask (L, 255 = may change) and nothing outside it.

Per kind (``plan.edit.kind``):

- **background**: the planned background (`render_background`: solid, gradient, texture or
  ``style.background_image``) at the source's size, with the kept subject (mask 0) composited over it. The
  subject's edge is re-matted in a band of ``BAND_SHARE`` of the long side (`matting.matte`: alpha from colour,
  old-background colour removed from the edge pixels), lit by the new background (light wrap) and, with
  ``subject_match`` > 0, graded toward the new background's colour and brightness (off by default: it would
  change kept pixels). Without a mask the subject is estimated as a product cut-out is (`cutout_mask`).
- **clothing / region**: the masked area recoloured to ``style.palette[0]`` in CIELAB: the target's hue and
  chroma, the source's lightness variations (shading, folds, texture) around the target's lightness.
- **insert**: each product subject's reference, cut out of its backdrop (edge colours unmixed from that
  backdrop), contain-fitted in its region with a soft contact shadow and a touch of the scene's ambient colour.
  Person subjects of an edit are identities to keep and are never pasted.
- **restyle**: a global colour grade and relight read from the instruction (black and white, sepia, golden
  hour, warm, cool, dark, bright) or toward ``style.palette[0]``; per-pixel colour transforms plus a smooth
  light field, so every edge stays where it was.

The plan's text is then set, inside the mask only. Outside the mask the output is byte-identical to the source
except a blend band of ``FEATHER_SHARE`` (``BAND_SHARE`` for a background) of the long side at the mask edge;
the output is RGB at exactly the source's size.
"""

from __future__ import annotations

import math
import re
from typing import Any

import cv2
import numpy as np
from PIL import Image

from agent.backends.compose.background import render_background
from agent.backends.compose.canvas import RGB, box_px, hex_rgb, paste_rgba
from agent.backends.compose.matting import feather_weight, lab_mean, light_wrap, matte, unmix
from agent.backends.compose.subjects import cutout_mask, fit_cutout
from agent.backends.compose.text import draw_text
from agent.models import Plan, Subject
from agent.models.errors import BackendError

BAND_SHARE = 0.006
"""A background edit re-mattes the subject's edge within this share of the long side (at least 2 px) on each
side of the mask edge: 6 px at 1024."""
FEATHER_SHARE = 0.002
"""Recolour, insert and restyle edits blend into the source over this share of the long side (at least 1.5 px)
on each side of the mask edge."""
SHADOW_OPACITY = 0.45
"""Darkest point of an inserted object's contact shadow."""
AMBIENT = 0.08
"""Share of the scene's mean colour mixed into an inserted object, so it sits in the scene's light."""
HOLE_DISTANCE, HOLE_SHARE = 30.0, 0.01
"""A product cut-out's enclosed patches within this RGB distance of its backdrop colour and at least this share of
the object's area are holes (see `_open_holes`)."""
MATCH_GAIN = 0.05
"""The most a subject's channel gain moves toward the new background's (with `subject_match` = 1): 5 % changes
no pixel by more than 13 levels, under what the preservation critic counts as a visible change (16)."""
TINT = 0.35
"""How far a restyle toward a palette colour moves the image's mean chroma toward that colour."""

LOOKS: tuple[tuple[str, str], ...] = (
    (r"\bblack[\s-]+and[\s-]+white\b|\bb\s*&\s*w\b|\bmonochrome\b|\bgr[ae]yscale\b|\bdesaturat", "mono"),
    (r"\bsepia\b|\bvintage\b|\bretro\b|\bfilm\s+(?:look|stock)\b", "sepia"),
    (r"\bgolden\s+hour\b|\bsunset\b|\bsunrise\b|\bgolden\s+light\b", "golden_hour"),
    (r"\bwarm(?:er|th)?\b", "warm"),
    (r"\bcool(?:er)?\b|\bcold(?:er)?\b|\bblue\s+hour\b", "cool"),
    (r"\bnight[\s-]?time\b|\bnight\b|\bdark(?:er|en)\b|\bmoody\b", "dark"),
    (r"\bbright(?:er|en)?\b|\blighter\b|\bexposure\b", "bright"),
)
"""Looks a restyle instruction names, first match wins; anything else grades toward ``style.palette[0]``."""


def _band(size: tuple[int, int], share: float, least: float) -> float:
    return max(least, share * max(size))


def _edit_area(mask: Image.Image | None, size: tuple[int, int], notes: list[str]) -> np.ndarray | None:
    """The mask as a boolean 'may change' array at the source's size (None: the whole image may change)."""
    if mask is None:
        return None
    m = mask.convert("L")
    if m.size != size:
        notes.append(f"mask {m.width}x{m.height} resized to the source's {size[0]}x{size[1]}")
        m = m.resize(size, Image.Resampling.NEAREST)
    return np.asarray(m) >= 128


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor((rgb / 255.0).astype(np.float32), cv2.COLOR_RGB2LAB)


def _rgb(lab: np.ndarray) -> np.ndarray:
    return np.clip(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB) * 255.0, 0, 255)


def _lab_of(colour: RGB) -> np.ndarray:
    return _lab(np.array([[colour]], np.float32))[0, 0]


# --------------------------------------------------------------------------- background


def _background(src: np.ndarray, edit: np.ndarray | None, plan: Plan, seed: int, store: Any, subject_match: float,
                info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    h, w = src.shape[:2]
    new_img, info["background"] = render_background(plan, seed, store)
    new_bg = np.asarray(new_img, np.float32)
    if edit is None:
        alpha, method = cutout_mask(Image.fromarray(src.astype(np.uint8)))
        edit = alpha < 0.5
        info["mask"] = f"estimated ({method})"
    keep = ~edit
    band = round(_band((w, h), BAND_SHARE, 2))
    alpha, colours, sd, matting = matte(src, keep, band)
    info["matting"] = matting
    allowed = (sd > -band) & (sd <= band)
    colours = light_wrap(colours, alpha, new_bg, allowed, band)
    changed = sd <= band
    rim, near_bg = (sd > band) & (sd <= 8 * band), (sd < -band) & (sd >= -8 * band)
    subject_lab, bg_lab = lab_mean(src, rim), lab_mean(new_bg, near_bg)
    if subject_lab is not None and bg_lab is not None:
        info["subject_vs_background_lab"] = [round(float(v), 2) for v in subject_lab - bg_lab]
    if subject_match > 0 and keep.any():
        colours, gains = _match_subject(colours, keep, new_bg, near_bg, subject_match)
        info["subject_match"] = {"strength": subject_match, "gains": gains}
        changed = np.ones_like(changed)
    a = alpha[..., None]
    out = colours * a + new_bg * (1.0 - a)
    ring = (sd < 0) & (sd >= -band)
    if ring.any():
        info["rim_to_new_background"] = round(float(np.linalg.norm(out[ring] - new_bg[ring], axis=1).mean()), 2)
    return out, changed


def _match_subject(colours: np.ndarray, keep: np.ndarray, new_bg: np.ndarray, near_bg: np.ndarray,
                   strength: float) -> tuple[np.ndarray, list[float]]:
    """The kept subject's channel gains moved toward the new background's light (at most MATCH_GAIN)."""
    subject = colours[keep].mean(axis=0)
    target = new_bg[near_bg].mean(axis=0) if near_bg.any() else new_bg.reshape(-1, 3).mean(axis=0)
    # the background's colour cast, normalised to the subject's brightness, then half its brightness difference
    cast = (target / max(1e-3, float(target.mean()))) * float(subject.mean())
    cast = cast * (1 + 0.5 * (float(target.mean()) / max(1e-3, float(subject.mean())) - 1))
    gains = np.clip(1 + strength * (cast / np.maximum(subject, 1e-3) - 1), 1 - MATCH_GAIN, 1 + MATCH_GAIN)
    out = colours.copy()
    out[keep] = np.clip(colours[keep] * gains, 0, 255)
    return out, [round(float(g), 4) for g in gains]


# --------------------------------------------------------------------------- recolour


def _recolour(src: np.ndarray, edit: np.ndarray | None, colour: RGB, info: dict[str, Any]
              ) -> tuple[np.ndarray, np.ndarray]:
    h, w = src.shape[:2]
    weight = feather_weight(edit, _band((w, h), FEATHER_SHARE, 1.5)) if edit is not None else np.ones((h, w),
                                                                                                        np.float32)
    area = edit if edit is not None else np.ones((h, w), bool)
    if not area.any():
        info["notes"].append("the mask is empty: nothing to recolour")
        return src, np.zeros((h, w), bool)
    lab = _lab(src)
    lightness = lab[..., 0]
    detail = lightness - float(lightness[area].mean())
    target = _lab_of(colour)
    lo, hi = (float(v) for v in np.percentile(detail[area], (5, 95)))
    gain = 1.0
    if hi > 1e-3:
        gain = min(gain, (98.0 - target[0]) / hi)
    if lo < -1e-3:
        gain = min(gain, (target[0] - 2.0) / -lo)
    gain = float(np.clip(gain, 0.35, 1.0))
    new = np.empty_like(lab)
    new[..., 0] = np.clip(target[0] + gain * detail, 0, 100)
    new[..., 1], new[..., 2] = target[1], target[2]
    recoloured = _rgb(new)
    info.update(colour="#{:02x}{:02x}{:02x}".format(*colour), texture_gain=round(gain, 3))
    wt = weight[..., None]
    return src * (1.0 - wt) + recoloured * wt, weight > 0


# --------------------------------------------------------------------------- insert


def _border_colour(rgb: np.ndarray) -> np.ndarray:
    b = max(2, round(0.02 * min(rgb.shape[:2])))
    border = np.concatenate([rgb[:b].reshape(-1, 3), rgb[-b:].reshape(-1, 3),
                             rgb[:, :b].reshape(-1, 3), rgb[:, -b:].reshape(-1, 3)])
    return np.median(border, axis=0).astype(np.float32)


def _open_holes(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A cut-out's alpha with enclosed patches of its backdrop colour (a mug's handle, the inside of a ring) made
    transparent; specks under HOLE_SHARE of the object stay (a white label is no hole)."""
    backdrop = _border_colour(rgb)
    like = (np.linalg.norm(rgb - backdrop, axis=2) < HOLE_DISTANCE) & (alpha > 0.5)
    if not like.any():
        return alpha
    n, labels, stats, _ = cv2.connectedComponentsWithStats(like.astype(np.uint8), connectivity=8)
    big = 1 + np.nonzero(stats[1:, cv2.CC_STAT_AREA] >= max(16.0, HOLE_SHARE * float((alpha > 0.5).sum())))[0]
    if not len(big):
        return alpha
    holes = cv2.GaussianBlur(np.isin(labels, big).astype(np.float32), (0, 0), 0.8)
    return (alpha * (1.0 - holes)).astype(np.float32)


def _contact_shadow(ow: int, oh: int, obj_alpha: np.ndarray) -> tuple[np.ndarray, int, int]:
    """A soft shadow layer (0..1) for an object of ow x oh: a dark ellipse where it touches the ground plus a
    faint blurred copy of its silhouette; returned with its offset from the object's top-left corner."""
    pad = max(4, round(0.12 * max(ow, oh)))
    hh, ww = oh + 2 * pad, ow + 2 * pad
    layer = np.zeros((hh, ww), np.float32)
    centre = (pad + ow // 2, pad + oh - max(1, round(0.01 * oh)))
    axes = (max(2, round(0.46 * ow)), max(1, round(0.05 * oh)))
    cv2.ellipse(layer, centre, axes, 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    layer = cv2.GaussianBlur(layer, (0, 0), max(1.0, 0.03 * ow)) * SHADOW_OPACITY
    silhouette = np.zeros((hh, ww), np.float32)
    dy = max(1, round(0.02 * oh))
    silhouette[pad + dy:pad + dy + oh, pad:pad + ow] = obj_alpha
    silhouette = cv2.GaussianBlur(silhouette, (0, 0), max(1.0, 0.04 * max(ow, oh))) * 0.2
    return np.maximum(layer, silhouette), -pad, -pad


def _place(canvas: Image.Image, subject: Subject, ref: Image.Image) -> dict[str, Any]:
    """Cut a product out of its backdrop, unmix its edge from that backdrop, contain-fit it in its region and
    set it down with a contact shadow."""
    x0, y0, x1, y1 = box_px(subject.region, canvas.width, canvas.height)
    alpha, method = cutout_mask(ref, subject.reference.sha256)
    rgb = np.asarray(ref.convert("RGB"), np.float32)
    if method == "border":
        alpha = _open_holes(rgb, alpha)
    if method != "full":
        rgb = unmix(rgb, alpha, _border_colour(rgb), rgb)
    obj, ox, oy = fit_cutout(rgb, alpha, (x0, y0, x1, y1))
    ow, oh = obj.size
    scene = np.asarray(canvas.crop((max(0, x0), max(0, y0), x1, y1)), np.float32).reshape(-1, 3).mean(axis=0)
    obj_rgb = np.asarray(obj.convert("RGB"), np.float32)
    lit = np.clip(obj_rgb * (1 - AMBIENT) + scene * AMBIENT + 0.5, 0, 255).astype(np.uint8)
    obj_alpha = np.asarray(obj.getchannel("A"), np.float32) / 255.0
    shadow, sx, sy = _contact_shadow(ow, oh, obj_alpha)
    shadow_rgba = np.zeros((*shadow.shape, 4), np.uint8)
    shadow_rgba[..., 3] = np.clip(shadow * 255 + 0.5, 0, 255).astype(np.uint8)
    paste_rgba(canvas, Image.fromarray(shadow_rgba, "RGBA"), (ox + sx, oy + sy))
    layer = Image.fromarray(np.dstack([lit, np.asarray(obj.getchannel("A"))]), "RGBA")
    paste_rgba(canvas, layer, (ox, oy))
    return {"box": [x0, y0, x1, y1], "object_box": [ox, oy, ox + ow, oy + oh], "cutout": method}


def _insert(src: np.ndarray, edit: np.ndarray | None, plan: Plan, store: Any, info: dict[str, Any]
            ) -> tuple[np.ndarray, np.ndarray]:
    h, w = src.shape[:2]
    products = [s for s in plan.subjects if s.kind == "product"]
    if not products:
        info["notes"].append("no product subject to insert: the source is returned unchanged")
        return src, np.zeros((h, w), bool)
    if store is None:
        raise BackendError("an insert edit needs an artifact store to open its object references")
    canvas = Image.fromarray(np.clip(src + 0.5, 0, 255).astype(np.uint8), "RGB")
    info["inserted"] = {s.id: _place(canvas, s, store.open(s.reference)) for s in products}
    placed = np.asarray(canvas, np.float32)
    if edit is None:
        return placed, np.ones((h, w), bool)
    weight = feather_weight(edit, _band((w, h), FEATHER_SHARE, 1.5))[..., None]
    return src * (1.0 - weight) + placed * weight, weight[..., 0] > 0


# --------------------------------------------------------------------------- restyle


def look_of(instruction: str) -> str | None:
    """The look a restyle instruction names ('golden_hour', 'warm', ...), or None."""
    text = instruction.lower()
    return next((look for pattern, look in LOOKS if re.search(pattern, text)), None)


def _light_field(h: int, w: int, seed: int, amplitude: float) -> np.ndarray:
    """A smooth directional light: +amplitude on the lit side, -amplitude on the far side (L units)."""
    angle = (seed % 8) * math.pi / 4 + math.pi / 8
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    proj = ((xs / max(1, w - 1)) - 0.5) * math.cos(angle) + ((ys / max(1, h - 1)) - 0.5) * math.sin(angle)
    return (np.clip(proj / 0.7, -1, 1) * amplitude).astype(np.float32)


def _grade(src: np.ndarray, look: str | None, colour: RGB, seed: int, info: dict[str, Any]) -> np.ndarray:
    lab = _lab(src)
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    if look == "mono":
        L, a, b = 50 + (L - 50) * 1.05, a * 0, b * 0
    elif look == "sepia":
        L, a, b = 50 + (L - 50) * 0.92 + 3, a * 0.15 + 6, b * 0.15 + 20
    elif look == "golden_hour":
        L = L + _light_field(L.shape[0], L.shape[1], seed, 7.0) + 3 * (1 - L / 100)
        a, b = a + 7, b + 22
    elif look == "warm":
        a, b = a + 4, b + 14
    elif look == "cool":
        a, b = a - 2, b - 14
    elif look == "dark":
        L, b = L * 0.75, b - 6
    elif look == "bright":
        L = 100 * np.power(np.clip(L / 100, 0, 1), 0.8)
    else:
        target = _lab_of(colour)
        L = L + 0.15 * (target[0] - float(L.mean()))
        a = a + TINT * (target[1] - float(a.mean()))
        b = b + TINT * (target[2] - float(b.mean()))
        info["colour"] = "#{:02x}{:02x}{:02x}".format(*colour)
    info["look"] = look or "palette tint"
    return _rgb(np.dstack([np.clip(L, 0, 100), a, b]))


def _restyle(src: np.ndarray, edit: np.ndarray | None, plan: Plan, seed: int, info: dict[str, Any]
             ) -> tuple[np.ndarray, np.ndarray]:
    h, w = src.shape[:2]
    instruction = plan.edit.instruction if plan.edit is not None else plan.prompt
    graded = _grade(src, look_of(instruction), hex_rgb(plan.style.palette[0]), seed, info)
    if edit is None:
        return graded, np.ones((h, w), bool)
    weight = feather_weight(edit, _band((w, h), FEATHER_SHARE, 1.5))[..., None]
    return src * (1.0 - weight) + graded * weight, weight[..., 0] > 0


# --------------------------------------------------------------------------- text and entry point


def _set_text(out: np.ndarray, edit: np.ndarray | None, plan: Plan, info: dict[str, Any]
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """The plan's text set on the edited image, kept only inside the mask."""
    if not plan.text:
        return out, None
    canvas = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")
    boxes: dict[str, list[int]] = {}
    for element in plan.text:
        boxes[element.id] = draw_text(canvas, element, plan.style)["box"]
    info["text_boxes"] = boxes
    texted = np.asarray(canvas, np.float32)
    drawn = np.any(texted != np.clip(out + 0.5, 0, 255).astype(np.uint8), axis=2)
    where = drawn if edit is None else drawn & edit
    if edit is not None and (drawn & ~edit).any():
        info["notes"].append("text outside the mask was left out")
    return np.where(where[..., None], texted, out), where


def apply_edit(source: Image.Image, mask: Image.Image | None, plan: Plan, seed: int, store: Any, *,
               subject_match: float = 0.0) -> tuple[Image.Image, dict[str, Any]]:
    """The source edited as ``plan.edit`` asks, inside the mask (L, 255 = may change; None: anywhere), plus render
    meta. RGB at exactly the source's size; byte-identical to the source outside the mask and its blend band
    (``subject_match`` > 0 lets a background edit grade the kept subject too). See the module docstring."""
    src_img = source.convert("RGB")
    size = src_img.size
    src = np.asarray(src_img, np.float32)
    kind = plan.edit.kind if plan.edit is not None else "region"
    notes: list[str] = []
    info: dict[str, Any] = {"kind": kind, "notes": notes}
    if (plan.width, plan.height) != size:
        notes.append(f"plan canvas {plan.width}x{plan.height} differs from the source: edited at {size[0]}x{size[1]}")
        plan = plan.model_copy(update={"width": size[0], "height": size[1]})
    edit = _edit_area(mask, size, notes)
    if edit is not None:
        info["mask_share"] = round(float(edit.mean()), 4)
    try:
        if kind == "background":
            out, changed = _background(src, edit, plan, seed, store, subject_match, info)
        elif kind in ("clothing", "region"):
            out, changed = _recolour(src, edit, hex_rgb(plan.style.palette[0]), info)
        elif kind == "insert":
            out, changed = _insert(src, edit, plan, store, info)
        else:
            out, changed = _restyle(src, edit, plan, seed, info)
        out, texted = _set_text(out, edit, plan, info)
    except ValueError as e:
        raise BackendError(f"compose could not edit the source: {e}") from e
    if texted is not None:
        changed = changed | texted
    result = np.where(changed[..., None], np.clip(out + 0.5, 0, 255), src).astype(np.uint8)
    info["changed_share"] = round(float(changed.mean()), 4)
    if not notes:
        del info["notes"]
    meta: dict[str, Any] = {"backend": "compose", "seed": seed, "edit": info}
    if "text_boxes" in info:
        meta["text_boxes"] = info.pop("text_boxes")
    return Image.fromarray(result, "RGB"), meta


def blend_inside(base: Image.Image, content: Image.Image, mask: Image.Image) -> Image.Image:
    """`content` inside the mask (L, 255 = may change), `base` outside it, with the recolour feather; both at
    `content`'s size (`base` is resized when it differs). Byte-identical to `base` beyond the feather."""
    size = content.size
    base_rgb = base.convert("RGB")
    if base_rgb.size != size:
        base_rgb = base_rgb.resize(size, Image.Resampling.LANCZOS)
    edit = np.asarray(mask.convert("L").resize(size, Image.Resampling.NEAREST) if mask.size != size
                      else mask.convert("L")) >= 128
    weight = feather_weight(edit, _band(size, FEATHER_SHARE, 1.5))[..., None]
    b = np.asarray(base_rgb, np.float32)
    mixed = b * (1.0 - weight) + np.asarray(content.convert("RGB"), np.float32) * weight
    return Image.fromarray(np.where(weight > 0, np.clip(mixed + 0.5, 0, 255), b).astype(np.uint8), "RGB")


__all__ = ["AMBIENT", "BAND_SHARE", "FEATHER_SHARE", "HOLE_DISTANCE", "HOLE_SHARE", "LOOKS", "MATCH_GAIN",
           "SHADOW_OPACITY", "TINT", "apply_edit", "blend_inside", "look_of"]
