"""Reading a sketch or wireframe as the layout to follow: its boxes, and the text written in them.

A sketch is dark strokes on a light ground (pen on paper, a wireframe tool's export). The strokes and closed
boxes are found exactly as the structure critic finds them (`critics.structure.layout`: an adaptive threshold,
contours that are mostly filled and neither scribbles nor the page's frame); text is read by the OCR critic's
engine (rapidocr). A box with text in it becomes a text element with that text (unless the brief gives its own
required text, which fills the text boxes top to bottom); a box without text is a panel (an image or colour
block in the mockup); text outside every box is a text element where it was written. The plan keeps the sketch
(`Plan.sketch`) so the structure critic can check the result follows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from agent.loop.planning.rules import ROLES
from agent.models import Box, Brief, ImageRef, Plan, TextElement, canvas_size, nearest_aspect_ratio
from critics import checks_for
from critics.structure.layout import find_boxes, sketch_ink, work_size

TEXT_MIN_SCORE = 0.6


@dataclass
class SketchRegion:
    """One region of the sketch: where (relative), and the text written in it (None: a panel)."""

    box: Box
    text: str | None = None


@dataclass
class SketchLayout:
    """What a sketch asks for: its size, its boxes with their text, and text written outside any box."""

    size: tuple[int, int]
    regions: list[SketchRegion] = field(default_factory=list)

    @property
    def text_regions(self) -> list[SketchRegion]:
        return [r for r in self.regions if r.text]

    @property
    def panels(self) -> list[SketchRegion]:
        return [r for r in self.regions if not r.text]


def read_sketch(image: Image.Image) -> SketchLayout:
    """The sketch's boxes and the text in and around them (OCR), as relative regions."""
    from critics.ocr import read_image

    w, h = work_size(*image.size)  # the structure critic reads the same strokes and boxes
    scale = w / image.width
    boxes = [b.box for b in find_boxes(sketch_ink(image, (w, h)))]
    lines = [ln for ln in read_image(image).lines if ln.score >= TEXT_MIN_SCORE and ln.text.strip()]
    texts: dict[int, list[tuple[float, float, str]]] = {}
    loose: list[tuple[tuple[float, float, float, float], str]] = []
    for ln in lines:
        x0, y0, x1, y1 = (v * scale for v in ln.bbox())
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        inside = [i for i, b in enumerate(boxes) if b[0] <= cx <= b[2] and b[1] <= cy <= b[3]]
        if inside:  # the smallest box that holds the line
            k = min(inside, key=lambda i: (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1]))
            texts.setdefault(k, []).append((y0, x0, ln.text.strip()))
        else:
            loose.append(((x0, y0, x1, y1), ln.text.strip()))
    regions = []
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        words = " ".join(t for _, _, t in sorted(texts.get(i, [])))
        holds_boxes = any(j != i and _inside(boxes[j], boxes[i]) for j in range(len(boxes)))
        if holds_boxes and not words:
            continue  # a container: its inner boxes are the regions
        regions.append(SketchRegion(_relative((x0, y0, x1, y1), w, h), words or None))
    for (x0, y0, x1, y1), text in loose:
        pad = 0.25 * (y1 - y0)
        regions.append(SketchRegion(_relative((x0 - pad, y0 - pad, x1 + pad, y1 + pad), w, h), text))
    regions.sort(key=lambda r: (round(r.box.y, 2), r.box.x))
    return SketchLayout(size=image.size, regions=regions)


def _inside(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] >= b[0] and a[1] >= b[1] and a[2] <= b[2] and a[3] <= b[3] and a != b


def _relative(box: tuple[float, float, float, float], w: int, h: int) -> Box:
    x0, y0 = max(0.0, box[0] / w), max(0.0, box[1] / h)
    x1, y1 = min(1.0, box[2] / w), min(1.0, box[3] / h)
    return Box(x=x0, y=y0, w=max(1e-3, x1 - x0), h=max(1e-3, y1 - y0))




def plan_from_sketch(brief: Brief, base: Plan, sketch: ImageRef, store: Any) -> Plan:
    """The base plan laid out as the sketch says: its canvas ratio (unless the brief sets one), its text boxes
    holding the brief's required text top to bottom (or the sketch's own words when the brief has none), the
    references placed in its empty boxes, the other empty boxes drawn as panels."""
    layout = read_sketch(store.open(sketch))
    aspect = brief.aspect_ratio or nearest_aspect_ratio(*layout.size)
    width, height = canvas_size(aspect, brief.size or base.size)
    text_regions = layout.text_regions
    elements: list[TextElement] = []
    if base.text:
        for i, el in enumerate(base.text):
            region = text_regions[i].box if i < len(text_regions) else el.region
            elements.append(el.model_copy(update={"region": region}))
    else:
        for i, r in enumerate(text_regions):
            elements.append(TextElement(id=ROLES[i] if i < 2 else f"line{i + 1}", content=r.text or "",
                                        role=ROLES[min(i, 3)] if i < 3 else "body", region=r.box))
    panels = [r.box for r in layout.panels]
    subjects = []
    for i, s in enumerate(base.subjects):
        subjects.append(s.model_copy(update={"region": panels[i]}) if i < len(panels) else s)
    panels = panels[len(base.subjects):]
    notes = [f"layout from the sketch: {len(text_regions)} text box(es), {len(layout.panels)} empty box(es)",
             *[n for n in base.notes if not n.startswith("canvas ")], f"canvas {aspect} ({width}x{height})"]
    plan = base.model_copy(update={"width": width, "height": height, "aspect_ratio": aspect,
                                   "size": brief.size or base.size, "text": elements, "subjects": subjects,
                                   "panels": panels, "sketch": sketch, "notes": notes})
    plan.checks = checks_for(plan, brief.thresholds, brief.critics)
    return plan


__all__ = ["SketchLayout", "SketchRegion", "plan_from_sketch", "read_sketch"]
