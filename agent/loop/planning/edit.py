"""Planning an edit: the source's size becomes the canvas, the mask says where the image may change, and the
source's own people become the identities the edit must keep.

The mask comes from the user (a mask file, a box, or what to keep) or, with none of those, from the instruction
(`masks.derive_mask`: "change the background" keeps the subject, "change her jacket" edits the clothing). The
faces of the source that lie mostly outside the mask become person subjects whose references are crops of the
source itself, so the face critic checks that every person keeps their identity; the preservation critic checks
that outside the mask nothing changed and inside it did; the spec critic that the size and aspect did not drift.
Product references are objects to insert (the reference critic finds them in the result).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from agent.models import Box, Brief, EditSpec, ImageRef, Plan, SizeTier, Subject, nearest_aspect_ratio
from agent.models.errors import ImageInputError
from critics import checks_for, get_critic

FACE_PAD = 0.6
"""A person's reference crop is their face box grown by this share of its size on every side."""
KEPT_FACE_SHARE = 0.5
"""A face counts as kept (its identity is checked) when at least this share of its box lies outside the mask."""
MAX_KEPT_PEOPLE = 6
PREVIEW_TINT = (230, 57, 70)


def tier_for(long_side: int) -> SizeTier:
    """The size tier an image of this long side belongs to (the nearest of 1K, 2K, 4K)."""
    return "1K" if long_side <= 1536 else "2K" if long_side <= 3072 else "4K"


def user_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A user's mask as pixloop's convention (L, 255 = may change), thresholded at half. An RGBA mask whose alpha
    varies is read the OpenAI way (transparent = may change); it must be the source's size."""
    if mask.size != size:
        raise ImageInputError(f"mask: it is {mask.width}x{mask.height} but the source is {size[0]}x{size[1]}; "
                              "a mask must be the source's size (white = may change)")
    lowest_alpha = mask.getchannel("A").getextrema()[0] if mask.mode in ("RGBA", "LA") else 255
    if isinstance(lowest_alpha, (int, float)) and lowest_alpha < 255:
        grey = Image.eval(mask.getchannel("A"), lambda a: 255 - a)
    else:
        grey = mask.convert("L")
    out = grey.point(lambda v: 255 if v >= 128 else 0)
    if not out.getbbox():
        raise ImageInputError("mask: it is black everywhere, so nothing may change; paint white where the edit goes")
    return out


def region_mask(region: tuple[int, int, int, int], size: tuple[int, int]) -> Image.Image:
    """A mask white inside the box (x, y, width, height in source pixels), which must overlap the source."""
    x, y, w, h = region
    x0, y0, x1, y1 = max(0, x), max(0, y), min(size[0], x + w), min(size[1], y + h)
    if x1 <= x0 or y1 <= y0:
        raise ImageInputError(f"region {x},{y},{w},{h} lies outside the {size[0]}x{size[1]} source")
    out = Image.new("L", size, 0)
    out.paste(255, (x0, y0, x1, y1))
    return out


def mask_preview(source: Image.Image, mask: Image.Image) -> Image.Image:
    """The source with what may change tinted and outlined: what the report shows."""
    import cv2

    rgb = np.asarray(source.convert("RGB"), np.float32)
    m = np.asarray(mask, np.float32)[..., None] / 255.0
    tint = np.array(PREVIEW_TINT, np.float32)
    out = rgb * (1 - 0.45 * m) + tint * 0.45 * m
    edge = cv2.morphologyEx((m[..., 0] > 0.5).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    out[edge > 0] = tint
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def without_faces(mask: Image.Image, faces: list[tuple[int, int, int, int]], grow: float = 0.35) -> Image.Image:
    """The mask with each face box, grown by `grow` of its size, kept (black)."""
    out = mask.copy()
    w, h = mask.size
    for x0, y0, x1, y1 in faces:
        gx, gy = round((x1 - x0) * grow), round((y1 - y0) * grow)
        out.paste(0, (max(0, x0 - gx), max(0, y0 - gy), min(w, x1 + gx), min(h, y1 + gy)))
    return out


def _outside_share(box: tuple[int, int, int, int], mask: np.ndarray) -> float:
    x0, y0, x1, y1 = box
    inside = mask[y0:y1, x0:x1]
    return float((inside < 128).mean()) if inside.size else 0.0


def kept_people(source: Image.Image, mask: Image.Image, faces: list[tuple[int, int, int, int]], store: Any,
                *, every_face: bool = False) -> list[Subject]:
    """Person subjects for the source's faces that the mask keeps (or all of them: a restyle relights faces but
    keeps who they are), each referenced by a crop of the source."""
    w, h = source.size
    m = np.asarray(mask)
    out: list[Subject] = []
    for x0, y0, x1, y1 in faces[:MAX_KEPT_PEOPLE]:
        if not every_face and _outside_share((x0, y0, x1, y1), m) < KEPT_FACE_SHARE:
            continue  # the edit may change this face: its identity is not kept
        px, py = round((x1 - x0) * FACE_PAD), round((y1 - y0) * FACE_PAD)
        crop = source.crop((max(0, x0 - px), max(0, y0 - py), min(w, x1 + px), min(h, y1 + py)))
        ref = store.put_image(crop)
        region = Box(x=x0 / w, y=y0 / h, w=max(1, x1 - x0) / w, h=max(1, y1 - y0) / h)
        n = len(out) + 1
        out.append(Subject(id=f"source_person{n}", kind="person", reference=ref, region=region,
                           name=f"person {n} of the source"))
    return out


def _inside(region: Box, mask: Image.Image) -> Box:
    """An insertion region moved into the mask's bounding box (scaled to fit it) when a mask limits the edit."""
    box = mask.getbbox()
    if box is None:
        return region
    w, h = mask.size
    bx, by, bw, bh = box[0] / w, box[1] / h, (box[2] - box[0]) / w, (box[3] - box[1]) / h
    return Box(x=bx + region.x * bw, y=by + region.y * bh, w=max(1e-3, region.w * bw), h=max(1e-3, region.h * bh))


def plan_edit(brief: Brief, base: Plan, source: ImageRef, mask: ImageRef | None, store: Any) -> Plan:
    """The base plan (what the planner read in the instruction: style, text, references) made an edit plan."""
    from agent.loop.planning.masks import derive_mask, keep_mask, named_colour, read_instruction

    src = store.open(source).convert("RGB")
    size = src.size
    products = [s for s in base.subjects if s.kind == "product"]
    people = [s for s in base.subjects if s.kind == "person"]
    kind, keep, target = read_instruction(brief.prompt, has_references=bool(products))
    method: str
    faces: list[tuple[int, int, int, int]] | None = None
    if mask is not None:
        the_mask, origin, method = user_mask(store.open(mask), size), "user", "the user's mask"
    elif brief.region is not None:
        the_mask, origin = region_mask(brief.region, size), "region"
        method = "the user's region {},{},{},{}".format(*brief.region)
    elif brief.keep is not None:
        derived = keep_mask(src, brief.keep)
        the_mask, origin, method, faces, keep = derived.mask, "keep", derived.method, derived.faces, brief.keep
    else:
        derived = derive_mask(src, brief.prompt, None, has_references=bool(products))
        the_mask, origin, method, faces = derived.mask, "derived", derived.method, derived.faces
        kind, keep, target = derived.kind, derived.keep, derived.target or target
    if faces is None:
        finder = getattr(get_critic("face"), "find_faces", None)
        faces = list(finder(src)) if callable(finder) else []
    if origin in ("derived", "keep") and not np.asarray(the_mask).any():
        # the segmentation found nothing to change (no clothing where it looked): change anything but the faces
        the_mask = without_faces(Image.new("L", size, 255), faces)
        method = f"{method}, which found nothing to change: everything but the faces may change (give --mask or " \
                 "--region for a precise edit)"
    elif origin == "derived" and kind == "region" and faces and np.asarray(the_mask).min() == 255:
        the_mask = without_faces(the_mask, faces)  # nothing named: change anything but who the people are
        method = ("the instruction names no region: everything but the faces may change (give --mask or --region "
                  "for a precise edit)")
    share = float(np.asarray(the_mask, np.float32).mean() / 255.0)
    mask_ref = store.put_image(the_mask)
    preview = store.put_image(mask_preview(src, the_mask))
    style = base.style
    colour = named_colour(brief.prompt)
    if colour is not None and kind in ("clothing", "region", "restyle"):
        style = style.model_copy(update={"palette": [colour, *style.palette[1:]]})
    if kind == "background" and style.background == "image" and style.background_image is None:
        style = style.model_copy(update={"background": "gradient"})
    inserts = [s.model_copy(update={"region": _inside(s.region, the_mask)}) for s in products]
    subjects = kept_people(src, the_mask, faces, store, every_face=kind == "restyle") + people + inserts
    spec = EditSpec(instruction=brief.prompt, kind=kind, keep=keep, mask_origin=origin, mask_share=round(share, 4),
                    target=target, method=method, preview=preview)
    notes = [f"edit {kind} of the {size[0]}x{size[1]} source; mask: {method}, {share:.0%} may change",
             *[n for n in base.notes if not n.startswith("canvas ")]]
    plan = base.model_copy(update={
        "width": size[0], "height": size[1], "aspect_ratio": nearest_aspect_ratio(*size), "size": tier_for(max(size)),
        "source": source, "mask": mask_ref, "edit": spec, "subjects": subjects, "style": style, "notes": notes,
        "negative": [*base.negative, "changes outside the mask", "a different face", "shifted or rescaled pixels"],
    })
    plan.checks = checks_for(plan, brief.thresholds, brief.critics)
    return plan


__all__ = ["FACE_PAD", "KEPT_FACE_SHARE", "kept_people", "mask_preview", "nearest_aspect_ratio", "plan_edit",
           "region_mask", "tier_for", "user_mask", "without_faces"]
