"""Edit masks the planner derives when the user gives none: from what to keep (`keep_mask`) or from the instruction
(`derive_mask`), offline, with classical segmentation (`segmentation` for people, text and clothing, `saliency` for
the salient object) and the instruction's typed reading (`instruction`).

The convention is pixloop's: an "L" image the source's size, 255 where the image may change, 0 where it must stay.

- **background**: everything but the kept subject may change: the people (GrabCut seeded by their faces), else
  the salient object; the product (the salient object that is no person) or the text (OCR boxes) when the
  instruction says so;
- **clothing**: the people's clothes (their mask below the chin, minus head and skin);
- **insert**: everything but the people (the inserted object may go anywhere else); the whole image without people;
- **restyle**, **region**: the whole image (a restyle keeps layout and people by its prompt and critics, not by a
  mask; a region edit with no mask or box has nothing to limit it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from agent.loop.planning.instruction import named_colour, read_instruction
from agent.loop.planning.saliency import salient_mask
from agent.loop.planning.segmentation import FaceSeed, clothing_mask, detect_faces, person_mask, text_mask
from agent.models.edit import EditKeep, EditKind

FaceBox = tuple[int, int, int, int]


@dataclass(frozen=True)
class DerivedMask:
    """A derived edit mask and how it was made."""

    mask: Image.Image
    """"L", the source's size: 255 = may change, 0 = keep."""
    kind: EditKind
    keep: EditKeep | None
    target: str | None
    """What the instruction names: "background", "jacket", "bottle", ..."""
    method: str
    """How it was made, for people: "grabcut seeded by 1 face (YuNet) and the border"."""
    share: float
    """The share of the source that may change (mean(mask) / 255)."""
    faces: list[FaceBox]
    """The faces found in the source, largest first (x0, y0, x1, y1, pixels)."""


def _int_boxes(faces: list[FaceSeed], size: tuple[int, int]) -> list[FaceBox]:
    w, h = size
    boxes = [(max(0, round(f.box[0])), max(0, round(f.box[1])), min(w, round(f.box[2])), min(h, round(f.box[3])))
             for f in faces]
    return [b for b in boxes if b[2] > b[0] and b[3] > b[1]]


def _result(changes: np.ndarray, kind: EditKind, keep: EditKeep | None, target: str | None, method: str,
            faces: list[FaceSeed], size: tuple[int, int]) -> DerivedMask:
    mask = Image.fromarray(np.where(changes, 255, 0).astype(np.uint8), "L")
    return DerivedMask(mask=mask, kind=kind, keep=keep, target=target, method=method,
                       share=round(float(changes.mean()), 4), faces=_int_boxes(faces, size))


def _people(n: int, detector: str) -> str:
    return f"{n} face{'s' if n != 1 else ''} ({detector})"


def _kept(source: Image.Image, keep: EditKeep, faces: list[FaceSeed], detector: str) -> tuple[np.ndarray, str]:
    """What `keep` protects (bool, the source's size) and how it was found."""
    if keep == "text":
        kept, lines = text_mask(source)
        return kept, f"OCR text boxes ({lines} line{'s' if lines != 1 else ''}, rapidocr) padded"
    if keep in ("person", "subject") and faces:
        return person_mask(source, faces), f"grabcut seeded by {_people(len(faces), detector)} and the border"
    if keep == "product" and faces:
        people = person_mask(source, faces)
        return (salient_mask(source, exclude=people),
                f"grabcut seeded by saliency (colour distance to the border) with {_people(len(faces), detector)} "
                "as background")
    method = "grabcut seeded by saliency (colour distance to the border) and the border"
    if keep == "person":
        method = f"no face found ({detector}); kept the most salient object: {method}"
    return salient_mask(source), method


def fill_holes(kept: np.ndarray) -> np.ndarray:
    """A kept object with the areas it encloses kept too: a bottle's label the segmentation left out, which a
    background edit would otherwise paint over (what shows through a mug's handle is kept as it was: the lesser
    harm)."""
    from critics.reference.template import fill_holes as filled

    return filled(kept.astype(np.uint8) * 255) > 0


def keep_mask(source: Image.Image, keep: EditKeep) -> DerivedMask:
    """A mask that protects the subject / person / product / text: everything else may change."""
    faces, detector = detect_faces(source)
    kept, method = _kept(source, keep, faces, detector)
    if keep != "text":
        kept = fill_holes(kept)
    return _result(~kept, "background", keep, "background", method, faces, source.size)


def derive_mask(source: Image.Image, instruction: str, keep: EditKeep | None = None, *,
                has_references: bool = False) -> DerivedMask:
    """The mask an instruction implies (see the module's table). A `keep` overrides the reading: what it protects
    is kept and everything else may change, whatever the kind."""
    kind, read_keep, target = read_instruction(instruction, has_references=has_references)
    faces, detector = detect_faces(source)
    h, w = source.height, source.width
    everything = np.ones((h, w), bool)
    if kind == "background" or keep is not None:
        what: EditKeep = keep or read_keep or "subject"
        kept, method = _kept(source, what, faces, detector)
        if what != "text":
            kept = fill_holes(kept)
        return _result(~kept, kind, what, target, method, faces, source.size)
    if kind == "clothing":
        if not faces:
            return _result(everything, kind, None, target, f"no face found ({detector}), so no clothing to find: "
                           "the whole image may change", faces, source.size)
        people = person_mask(source, faces)
        clothes = clothing_mask(source, faces, people)
        return _result(clothes, kind, None, target, f"the people's mask (grabcut seeded by "
                       f"{_people(len(faces), detector)}) below the chin, minus head and skin", faces, source.size)
    if kind == "insert" and faces:
        people = person_mask(source, faces)
        return _result(~people, kind, "person", target, f"everything but the people (grabcut seeded by "
                       f"{_people(len(faces), detector)})", faces, source.size)
    reason = {"insert": "no people to keep", "restyle": "a restyle changes the whole image's look",
              "region": "the instruction names no region"}[kind]
    return _result(everything, kind, None, target, f"{reason}: the whole image may change", faces, source.size)


__all__ = ["DerivedMask", "derive_mask", "fill_holes", "keep_mask", "named_colour", "read_instruction"]
