"""The document graph's policy: each image cue as a pixloop brief, the character and style sheet, which images
to render next, and the document's verdict.

Images render in reading order of need: a character without reference images is anchored by its first
appearance, so that image renders first and every later appearance gets the accepted image as its reference
(the sheet). Characters with references render all at once. The regeneration of an image that failed the
consistency step changes its seed and carries the sheet as references, nothing else: the other images keep
their accepted candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from agent.loop.document.sheet import first_appearance
from agent.models import Brief, ImageOutcome, Status
from agent.models.document import CharacterSheet, ConsistencyReport, DocumentBrief, ImageCue

ROUND_SEED_STEP = 104_729
IMAGE_SEED_STEP = 7_919


def image_seed(doc: DocumentBrief, cue: ImageCue, round: int) -> int:
    """A distinct, reproducible seed per image and round."""
    index = [c.id for c in doc.images].index(cue.id)
    return (doc.seed + index * IMAGE_SEED_STEP + (round - 1) * ROUND_SEED_STEP) % 2**32


def image_prompt(doc: DocumentBrief, cue: ImageCue) -> str:
    """The cue's words, with the characters' descriptions (the style words travel as `Brief.style`)."""
    parts = [cue.prompt.rstrip(". ")]
    described = [f"{c.name}: {c.description}" for c in (doc.character(n) for n in cue.characters) if c.description]
    if described:
        parts.append("; ".join(described))
    return ". ".join(parts)


def image_brief(doc: DocumentBrief, cue: ImageCue, sheet: CharacterSheet, doc_dir: Path, round: int = 1) -> Brief:
    """The pixloop brief of one image: its cue, its characters' sheet references, the document's canvas,
    budget and thresholds."""
    references: list[str] = []
    for name in cue.characters:
        entry = sheet.entry(name)
        if entry is not None:
            references += [str(doc_dir / ref.path) for ref in entry.references]
    return Brief(prompt=image_prompt(doc, cue), style=sheet.style, references=references, required_text=cue.required_text,
                 aspect_ratio=cue.aspect_ratio or doc.aspect_ratio, size=doc.size, thresholds=doc.thresholds,
                 budget=doc.image_budget, seed=image_seed(doc, cue, round))


def ready_to_render(doc: DocumentBrief, sheet: CharacterSheet, pending: list[str],
                    outcomes: Mapping[str, ImageOutcome]) -> list[ImageCue]:
    """Of the pending images, those that can render now: every character is on the sheet with references, or
    this image is the character's anchor (its first appearance). When an anchor ended without an accepted
    image nothing more can be learnt by waiting, so the rest render too."""
    cues = [c for c in doc.images if c.id in pending]
    ready = []
    for cue in cues:
        waits = False
        for name in cue.characters:
            entry = sheet.entry(name)
            anchor = first_appearance(doc, name)
            if entry is not None and entry.origin == "none" and anchor != cue.id and anchor not in outcomes:
                waits = True
        if not waits:
            ready.append(cue)
    return ready


def appearances(doc: DocumentBrief) -> dict[str, list[str]]:
    """Character -> the ids of the images it appears in, in reading order."""
    return {c.name: [cue.id for cue in doc.images if c.name.lower() in (n.lower() for n in cue.characters)]
            for c in doc.characters}


def to_regenerate(doc: DocumentBrief, report: ConsistencyReport,
                  outcomes: Mapping[str, ImageOutcome]) -> tuple[list[str], dict[str, str]]:
    """The images the next round makes again, in reading order, and why: every image that failed its own checks
    or shows a character unlike the sheet, and of those off the document's palette or style only the minority
    furthest off (the majority's look is the document's look; when most images differ from each other there is
    none to conform to, and remaking them all would not converge)."""
    faces = {i for c in report.characters for i in c.failing}
    own = {c.id for c in doc.images if (o := outcomes.get(c.id)) is not None and o.status != "passed"}
    styled = [st for st in report.styles if not st.passed and st.id not in faces | own]
    most = max(1, (len(report.styles) - 1) // 2)
    worst = sorted(styled, key=lambda st: -max(st.palette_distance / max(report.palette_threshold, 1e-9),
                                              st.style_distance / max(report.style_threshold, 1e-9)))[:most]
    chosen = faces | own | {st.id for st in worst}
    reasons = {i: r for i, r in report.reasons.items() if i in chosen}
    reasons.update({i: f"its own checks: {outcomes[i].status}" for i in own if i not in reasons})
    return [c.id for c in doc.images if c.id in chosen], reasons


def document_status(doc: DocumentBrief, outcomes: Mapping[str, ImageOutcome],
                    consistency: ConsistencyReport | None) -> Status:
    """passed: every image passed its own checks and the document is consistent; refused: the content policy
    refused an image; failed: an image is missing; otherwise below_threshold."""
    finals = [outcomes.get(c.id) for c in doc.images]
    if any(o is not None and o.status == "refused" for o in finals):
        return "refused"  # an image the content policy refused: the document is refused, not merely incomplete
    if any(o is None or o.image is None for o in finals):
        return "failed"
    if all(o is not None and o.status == "passed" for o in finals) and consistency is not None \
            and consistency.passed:
        return "passed"
    return "below_threshold"


__all__ = ["appearances", "document_status", "to_regenerate", "image_brief", "image_prompt", "image_seed", "ready_to_render"]
