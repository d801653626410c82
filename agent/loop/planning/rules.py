"""The offline rule planner: deterministic for a brief and seed, no model needed.

It reads the prompt like a designer would: quoted strings are required text, ratio and size words set
the canvas, style words set fonts, palette and background, and reference images become subjects
placed by a layout that leaves room for the text.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from agent.loop.planning.design import layout_regions, style_for_prompt
from agent.loop.planning.people import looks_like_person
from agent.loop.planning.reading import detect_aspect, detect_size, extract_quoted
from agent.models import Brief, ImageRef, Plan, Subject, TextElement, canvas_size
from critics import checks_for

ROLES = ["headline", "subheading", "body", "cta"]


def reference_names(sources: list[str]) -> list[str | None]:
    """How reports name each reference: its file name (unique), or None for one sent as data."""
    names: list[str | None] = []
    for i, source in enumerate(sources):
        name = None if source.startswith("data:") else PurePath(source).name or None
        names.append(f"{name} ({i + 1})" if name is not None and name in names else name)
    return names



class RulePlanner:
    """Offline planner: deterministic for a brief and seed, no model needed."""

    name = "rule"

    def plan(self, brief: Brief, references: list[ImageRef], store: Any) -> Plan:
        prompt = brief.prompt
        texts = list(brief.required_text)
        for q in extract_quoted(prompt):
            if q not in texts:
                texts.append(q)
        aspect = brief.aspect_ratio or detect_aspect(prompt) or "1:1"
        size = brief.size or detect_size(prompt) or "1K"
        width, height = canvas_size(aspect, size)
        style, notes = style_for_prompt(prompt, brief.seed, brief.style)
        wide = width / height >= 1.7
        kinds = ["person" if looks_like_person(store, r) else "product" for r in references]
        text_boxes, subject_boxes = layout_regions(len(texts), len(references), wide)
        elements = [
            TextElement(id=ROLES[i] if i < 2 else f"line{i + 1}", content=t,
                        role=ROLES[min(i, 3)] if i < 3 else "body", region=text_boxes[i])
            for i, t in enumerate(texts)
        ]
        names = reference_names(brief.references)
        subjects = [
            Subject(id=f"{k}{i + 1}", kind=k, reference=r, region=subject_boxes[i],
                    name=names[i] if i < len(names) else None)
            for i, (k, r) in enumerate(zip(kinds, references))
        ]
        notes = [f"canvas {aspect} {size} ({width}x{height})"] + notes
        if texts:
            notes.append("required text: " + "; ".join(repr(t) for t in texts))
        plan = Plan(prompt=brief.styled_prompt, width=width, height=height, aspect_ratio=aspect, size=size,
                    text=elements, subjects=subjects, style=style,
                    negative=["misspelled text", "extra text", "watermark", "distorted faces"],
                    notes=notes)
        plan.checks = checks_for(plan, brief.thresholds, brief.critics)
        return plan


__all__ = ["ROLES", "RulePlanner"]
