"""Feedback wording: one actionable sentence per element and the one-line summary of a verdict."""

from __future__ import annotations

from collections.abc import Sequence

from agent.models import Box
from critics.ocr.matching import ElementMatch, OcrScore
from critics.ocr.reading import PixelBox


def _where(box: Box) -> str:
    d = box.describe()
    return "the centre" if d == "centre" else d


def pixel_where(box: PixelBox, image_size: tuple[int, int]) -> str:
    """Words for where a pixel box lies in an image of ``image_size`` ('top left', 'the centre')."""
    w, h = image_size
    x0, y0 = min(max(box[0] / w, 0.0), 0.999), min(max(box[1] / h, 0.0), 0.999)
    bw = min(max((box[2] - box[0]) / w, 1e-6), 1 - x0)
    bh = min(max((box[3] - box[1]) / h, 1e-6), 1 - y0)
    return _where(Box(x=x0, y=y0, w=bw, h=bh))


def _quote_list(items: Sequence[str]) -> str:
    return ", ".join(f"'{s}'" for s in items)


def element_feedback(m: ElementMatch) -> str:
    """One actionable sentence about how element m was read."""
    where = _where(m.region)
    if not m.found:
        return f"{m.role} '{m.expected}' at {where} is missing or illegible (OCR read nothing matching it)"
    if m.wrong_words:
        shown = m.wrong_words[:3]
        more = f" (+{len(m.wrong_words) - 3} more)" if len(m.wrong_words) > 3 else ""
        missing = [e for r, e in shown if not r]
        wrong = [(r, e) for r, e in shown if r]
        parts = []
        if len(wrong) == 1:
            parts.append(f"'{wrong[0][0]}' in the {m.role} box at {where} should read '{wrong[0][1]}'")
        elif wrong:
            parts.append(f"{_quote_list([r for r, _ in wrong])} in the {m.role} box at {where} "
                         f"should read {_quote_list([e for _, e in wrong])}")
        if missing:
            parts.append(f"{_quote_list(missing)} {'is' if len(missing) == 1 else 'are'} missing from the "
                         f"{m.role} box at {where}")
        return "; ".join(parts) + more
    if m.cer > 0:
        return f"the {m.role} at {where} reads '{m.read}' but should read exactly '{m.expected}'"
    return f"the {m.role} at {where} reads correctly"


def feedback_line(result: OcrScore, passed: bool, image_size: tuple[int, int]) -> str:
    """ONE line: the worst element if the verdict fails, otherwise a summary (+ near misses, extras)."""
    worst = result.worst()
    if worst is None:
        return "no required text to check"
    if not passed:
        return element_feedback(worst)
    n = len(result.elements)
    what = f"all {n} text elements" if n > 1 else "the 1 text element"
    line = f"{what} read correctly" if worst.cer == 0 else (
        f"{what} pass (closest miss: {element_feedback(worst)})")
    notes = []
    misplaced = [m for m in result.elements if m.found and m.box is not None and not m.in_region]
    if misplaced:
        m = misplaced[0]
        assert m.box is not None  # misplaced keeps only elements with a box
        notes.append(f"{m.role} '{m.expected}' found at {pixel_where(m.box, image_size)}, "
                     f"planned at {_where(m.region)}")
    if result.extra_text:
        shown = result.extra_text[:3]
        notes.append("extra text not in the plan: " + ", ".join(
            f"'{ln.text}' at {pixel_where(ln.bbox(), image_size)}" for ln in shown)
            + (f" (+{len(result.extra_text) - 3} more)" if len(result.extra_text) > 3 else ""))
    return "; ".join([line, *notes])
