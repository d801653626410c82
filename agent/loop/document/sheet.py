"""The character and style sheet: what every image of a document must agree with.

Characters: their given reference photos, or (without any) their first accepted image. Style: the document's
own style words, or one named palette for all images. A script's images get a palette word picked by the
document's seed before any image is made; an interleaved document's images were made by the model in its own
style, so the sheet names the palette they are closest to, and every correction asks for that palette.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from agent.loop.document.style import Look as _Look
from agent.loop.document.style import document_palette, image_look, palette_gap, to_lab
from agent.loop.planning.design import PALETTE_NAMES, PALETTES
from agent.models import ImageOutcome
from agent.models.document import CharacterSheet, DocumentBrief, SheetEntry
from agent.runtime.store import ArtifactStore
from critics.face import as_bgr, face_engine

BACKGROUND_WORDS = "soft gradient background"


def style_words(palette: str) -> str:
    return f"{palette} colours, {BACKGROUND_WORDS}"


def sheet_style(doc: DocumentBrief) -> str:
    """The style words every image shares: the document's own, or else one palette word picked by the document's
    seed (without it, each image's planner would pick its own colours and the pages would not match)."""
    if doc.style.strip():
        return doc.style.strip()
    return style_words(PALETTE_NAMES[doc.seed % len(PALETTE_NAMES)])


def build_sheet(doc: DocumentBrief, store: ArtifactStore, references: Mapping[str, list[str]]) -> CharacterSheet:
    """The sheet before any image: every character with its given references stored in the document's store
    (`references` are the checked paths or data URLs of each character's images)."""
    entries = []
    for character in doc.characters:
        given = references.get(character.name, [])
        refs = [store.put_reference(src, f"character {character.name}") for src in given]
        entries.append(SheetEntry(name=character.name, references=refs, origin="given" if refs else "none"))
    return CharacterSheet(characters=entries, style=sheet_style(doc))


def first_appearance(doc: DocumentBrief, name: str) -> str | None:
    return next((c.id for c in doc.images if name.lower() in (n.lower() for n in c.characters)), None)


def shows_a_face(path: Path) -> bool:
    """Whether the face critic's detector finds a face in the image (False when it cannot run)."""
    try:
        engine = face_engine()
        return bool(engine.detect(as_bgr(Image.open(path).convert("RGB"))))
    except Exception:  # noqa: BLE001 - an engine that cannot load anchors nobody: identity stays unverified
        return False


def anchor_sheet(doc: DocumentBrief, sheet: CharacterSheet, outcomes: Mapping[str, ImageOutcome],
                 doc_dir: Path) -> CharacterSheet:
    """Characters without references take their first accepted appearance as their reference, when a face can be
    seen in it (an image without one would be taken for an object reference by the next images' planner)."""
    entries = []
    for entry in sheet.characters:
        if entry.origin == "none":
            first = first_appearance(doc, entry.name)
            done = outcomes.get(first) if first else None
            if done is not None and done.image is not None and done.status == "passed" \
                    and shows_a_face(doc_dir / done.image.path):
                entry = entry.model_copy(update={"references": [done.image], "origin": "first_image",
                                                 "image_id": first})
        entries.append(entry)
    return sheet.model_copy(update={"characters": entries})


def _looks(files: Sequence[Path]) -> list[_Look]:
    looks = []
    for f in files:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is not None:
            looks.append(image_look(bgr))
    return looks


def nearest_palette(looks: Sequence[_Look]) -> str:
    """The named palette closest to the images' own (median share-weighted Delta E over the images)."""
    def named(name: str) -> _Look:
        rgb = np.array([[[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in PALETTES[name]]], dtype=np.uint8)
        lab = to_lab(rgb[..., ::-1]).reshape(-1, 3)
        return _Look(lab=lab, hex=PALETTES[name], shares=np.full(len(lab), 1 / len(lab)), stats=np.zeros(5))

    return min(PALETTE_NAMES, key=lambda n: float(np.median([palette_gap(look, named(n)) for look in looks])))


def style_from_images(sheet: CharacterSheet, files: Sequence[Path]) -> CharacterSheet:
    """The sheet with the images' palette (hex) and, when the document set no style words of its own, the named
    palette they are closest to as its style words."""
    looks = _looks(files)
    if not looks:
        return sheet
    return sheet.model_copy(update={"palette": document_palette(looks), "style": style_words(nearest_palette(looks))})


def with_palette(sheet: CharacterSheet, files: Sequence[Path]) -> CharacterSheet:
    """The sheet with the accepted images' palette recorded (for the report and the story's swatches)."""
    looks = _looks(files)
    return sheet.model_copy(update={"palette": document_palette(looks)}) if looks else sheet


__all__ = ["anchor_sheet", "build_sheet", "first_appearance", "nearest_palette", "sheet_style", "style_from_images",
           "style_words", "with_palette"]
