"""Reading failing verdicts for the corrector: which failures a masked edit can repair and where, which need
a regeneration, and what precise feedback to give. Evidence is read through the critic's typed view
(`CriticInfo.evidence`), never by dict keys or critic names.

A failure is *local* when a masked edit of some boxes can repair it (a misspelt, missing or extra text, a
drifted face, an extra face, an artifact confined to a region: a blurred area, a duplicated patch) and *global*
otherwise (blur/noise/blocking over the whole image, a wrong aspect ratio, a missing person, unreadable
styling, a broken edit).
"""

from __future__ import annotations

from agent.loop.correction.context import CorrectionContext, failing
from agent.models import PixelBox, Plan, Verdict
from agent.models.errors import UnknownCriticError
from agent.models.evidence import ArtifactsEvidence, Evidence, FaceEvidence, SpecEvidence, TextEvidence, TextReading
from critics import critic_info

WEAK_FONTS = ("lato-hairline", "lato-thin", "lato-light")
MIN_TEXT_CONTRAST = 3.0
"""WCAG contrast ratio below which planned text counts as hard to read (AA for large text is 3:1)."""
LOCAL_ARTIFACT_SHARE = 0.4
"""An artifact failure whose regions cover less than this share of the image is local: a masked edit of the
regions repairs it; above it, the whole image is at fault and is regenerated."""


def evidence_of(verdict: Verdict) -> Evidence | None:
    """The verdict's evidence through its critic's typed view, or None when the critic declares none."""
    try:
        model = critic_info(verdict.critic).evidence
    except UnknownCriticError:
        return None
    return model.model_validate(verdict.evidence) if model is not None else None


def text_evidence(verdict: Verdict) -> TextEvidence | None:
    ev = evidence_of(verdict)
    return ev if isinstance(ev, TextEvidence) else None


def face_evidence(verdict: Verdict) -> FaceEvidence | None:
    ev = evidence_of(verdict)
    return ev if isinstance(ev, FaceEvidence) else None


def artifacts_evidence(verdict: Verdict) -> ArtifactsEvidence | None:
    ev = evidence_of(verdict)
    return ev if isinstance(ev, ArtifactsEvidence) else None


def bad_elements(verdict: Verdict) -> list[TextReading]:
    """Required text elements read below the verdict's threshold (none for other evidence)."""
    ev = text_evidence(verdict)
    return ev.bad_elements(verdict.threshold) if ev is not None else []


def illegible(verdict: Verdict) -> bool:
    """Some required text was read as nothing at all (a bolder font may help; a misspelling it would not fix)."""
    return any(not e.read for e in bad_elements(verdict))


def unreadable(ctx: CorrectionContext, verdict: Verdict) -> bool:
    """All the bad text was read as nothing, and the planned styling itself makes text hard to read."""
    bad = bad_elements(verdict)
    return bool(bad) and all(not e.read for e in bad) and weak_style(ctx.plan)


def too_small(verdict: Verdict) -> bool:
    """A failure that is only about size: the ratio is right and the image is not blank (upscaling fixes it)."""
    if verdict.passed:
        return False
    ev = evidence_of(verdict)
    return isinstance(ev, SpecEvidence) and ev.too_small()


def element_box(ctx: CorrectionContext, element: TextReading) -> PixelBox:
    """Where to edit for one text element: its planned region, widened to cover what OCR saw."""
    planned = next((t.region for t in ctx.plan.text if t.id == element.id), None)
    w, h = ctx.current.image.width, ctx.current.image.height
    boxes = ([planned.pixel_box(w, h)] if planned is not None else []) + ([element.box] if element.box else [])
    if not boxes:
        return PixelBox(x0=0, y0=0, x1=w, y1=h)
    box = PixelBox.union(boxes)
    return PixelBox(x0=max(0, box.x0), y0=max(0, box.y0), x1=min(w, box.x1), y1=min(h, box.y1))


def _pad(ctx: CorrectionContext, box: PixelBox, share: float) -> PixelBox:
    return box.pad(share, ctx.current.image.width, ctx.current.image.height)


def local_boxes(ctx: CorrectionContext, verdict: Verdict) -> list[PixelBox] | None:
    """Pixel boxes a masked edit of the current candidate can repair this failure in; None if it is global."""
    ev = evidence_of(verdict)
    if isinstance(ev, TextEvidence):
        if unreadable(ctx, verdict):
            return None  # unreadable because of the styling: restyle and re-render
        boxes = [element_box(ctx, e) for e in ev.bad_elements(verdict.threshold)]
        boxes += [_pad(ctx, x.box, 0.1) for x in ev.unwanted_lines() if x.box]
        return boxes or None
    if isinstance(ev, FaceEvidence):
        if not ev.identities:
            return None  # no evidence to place an edit: re-generate anchored on the references
        w, h = ctx.current.image.width, ctx.current.image.height
        regions = {s.id: s.region.pixel_box(w, h) for s in ctx.plan.subjects}
        boxes = []
        for i in ev.identities:
            if i.same:
                continue
            if i.box:
                boxes.append(_pad(ctx, i.box, 0.25))
            elif i.subject in regions:
                boxes.append(regions[i.subject])  # no face found: re-draw the person's planned region
            else:
                return None
        boxes += [_pad(ctx, b, 0.25) for b in ev.extra_faces]
        return boxes or None
    if isinstance(ev, ArtifactsEvidence):
        local = ev.local_regions(ctx.current.image.width, ctx.current.image.height, LOCAL_ARTIFACT_SHARE)
        return [_pad(ctx, b, 0.1) for b in local] if local else None
    return None


def repairs(ctx: CorrectionContext) -> list[Verdict]:
    """The failures an action must repair: all failing verdicts except a too-small size (upscaling fixes that)."""
    return [v for v in failing(ctx.verdicts) if not too_small(v)]


def all_local(ctx: CorrectionContext) -> list[PixelBox] | None:
    """The boxes of every failure when all of them are local (a masked edit fixes them all), else None."""
    boxes: list[PixelBox] = []
    for v in repairs(ctx):
        local = local_boxes(ctx, v)
        if local is None:
            return None
        boxes += local
    return boxes or None


def spell(word: str) -> str:
    return "-".join(word)


def spelled_feedback(verdict: Verdict) -> list[str]:
    """Exact text in quotes, letter by letter for the words OCR read wrong, and the extra text to remove."""
    ev = text_evidence(verdict)
    if ev is None:
        return []
    lines = []
    for e in ev.bad_elements(verdict.threshold):
        name = e.id if e.id is not None else "text"
        if e.read:
            lines.append(f'The {name} must read exactly "{e.expected}" (it read "{e.read}").')
        else:
            lines.append(f'The {name} "{e.expected}" is missing or illegible: set it large and clear.')
        for read, want in e.wrong_words:
            if want:
                lines.append(f'Spell "{want}" letter by letter: {spell(want)}' + (f' (not "{read}")' if read else "") + ".")
    extra = [x.text for x in ev.unwanted_lines()]
    if extra:
        lines.append("Remove the extra text that is not in the plan: " + ", ".join(f'"{t}"' for t in extra[:3]) + ".")
    return lines


def lines(verdict: Verdict) -> list[str]:
    """Precise feedback for one verdict: spelled-out text for text evidence, the critic's own line otherwise."""
    if text_evidence(verdict) is not None:
        return spelled_feedback(verdict) or [verdict.feedback]
    return [verdict.feedback] if verdict.feedback else []


def all_lines(ctx: CorrectionContext, first: Verdict) -> list[str]:
    """Feedback for every failure to repair, `first`'s lines first."""
    out = lines(first)
    for v in repairs(ctx):
        if v is not first:
            out += [line for line in lines(v) if line not in out]
    return out


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""
    def lum(c: str) -> float:
        ch = [int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in ch]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def weak_style(plan: Plan) -> bool:
    """Whether the planned text styling itself makes text hard to read (small, thin, low contrast, busy)."""
    s = plan.style
    lowest = min((contrast(s.text_color, c) for c in s.palette[:2]), default=21.0)
    return (s.text_scale < 0.5 or s.font in WEAK_FONTS or (lowest < MIN_TEXT_CONTRAST and not s.text_plate)
            or (s.background == "texture" and s.texture_strength > 0.6 and not s.text_plate))


__all__ = ["LOCAL_ARTIFACT_SHARE", "all_lines", "all_local", "artifacts_evidence", "bad_elements", "contrast",
           "element_box", "evidence_of", "face_evidence", "illegible", "lines", "local_boxes", "repairs", "spell",
           "spelled_feedback", "text_evidence", "too_small", "unreadable", "weak_style"]
