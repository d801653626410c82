"""OCR text-accuracy critic: does the image carry the plan's required text, spelled right, where planned?

Pipeline: ``read_text`` (rapidocr, lines with quads in original pixels) -> ``score_elements``
(pure matching, testable without OCR) -> ``OcrCritic.check`` (Verdict with compact evidence and
one actionable feedback line about the worst element).

Matching, per TextElement:
- both sides are NFKC-normalised with whitespace collapsed; casefolded unless ``case_sensitive``;
  whitespace is ignored unless ``exact`` (rapidocr sometimes drops spaces);
- the expected string is located in the OCR output (each line, and runs of adjacent lines in
  reading order) with ``fuzz.partial_ratio_alignment``; the window is then refined to the substring
  with the smallest Levenshtein distance; CER = distance / len(expected), clipped to 1;
- word accuracy / the word diff come from projecting the expected words through the character
  alignment (``Levenshtein.opcodes``), so they work even when OCR dropped the spaces.
"""

from __future__ import annotations

import statistics
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from agent.runtime.images import flatten_rgb
from agent.models import Box, Plan, TextElement, Verdict
from critics.base import CheckContext, CriticBase, CriticInfo
from agent.models.evidence import TextEvidence

INFO = CriticInfo(
    threshold=0.9,
    threshold_source=(
        "per-element accuracy min(1 - CER, word accuracy), worst element decides; rapidocr reads clean posters "
        "at CER 0.009 (shared/docs/critic-engines.md section 1); bench/calibrate_critics.py: correct posters "
        "score 1.00, one-letter misspellings <= 0.67, so 0.90 fails any wrong word in lines of under ten words"
    ),
    description="required text read back by OCR: per element CER and word accuracy, missing and invented text",
    weight=3.0, measured=True, needs=("text",), on_by_default=True,
    strategies=("restyle_text", "edit_region", "reprompt", "typeset_text", "new_seed"),
    evidence=TextEvidence,
)
"""What the loop knows about this critic (see `critics.base.CriticInfo`)."""

MAX_SIDE = 1536
"""Images whose long side exceeds this are downscaled before OCR (boxes map back): at 2048 rapidocr split
large glyphs ("BOOK FAIR" read as "BOOKF FAIR"); at 1536 it reads them whole (bench/quality.py)."""
MIN_LINE_SCORE = 0.5
"""OCR lines below this confidence are never reported as extra text."""
EXTRA_TEXT_MAX_SIMILARITY = 60.0
"""A line whose partial_ratio against every element is below this is 'extra text'."""
MISSING_CER = 0.5
"""Best match worse than this: the element counts as missing (CER 1, nothing read)."""
MAX_WINDOW_LINES = 6
"""Most adjacent OCR lines concatenated when searching for one element."""
REFINE_TOP = 6
"""How many best-located candidate windows get exact Levenshtein refinement."""
MAX_EVIDENCE_LINES = 40

Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]
PixelBox = tuple[int, int, int, int]


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class OcrLine:
    """One line read by OCR: text, confidence 0..1, and a 4-point quad in the ORIGINAL image's pixels."""

    text: str
    score: float
    box: Quad

    def bbox(self) -> PixelBox:
        """Axis-aligned [x0, y0, x1, y1] integer bounds of the quad."""
        xs = [p[0] for p in self.box]
        ys = [p[1] for p in self.box]
        return (int(np.floor(min(xs))), int(np.floor(min(ys))),
                int(np.ceil(max(xs))), int(np.ceil(max(ys))))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image as RGB: alpha flattened onto white, palette/grey/16-bit/float converted."""
    return flatten_rgb(image)


def prepare_image(image: Image.Image) -> tuple[np.ndarray, float]:
    """The image as a contiguous uint8 **BGR** array for rapidocr, and the downscale factor (<= 1).

    rapidocr passes 3-channel ndarrays through untouched and treats them as BGR (it converts only
    PIL/path/bytes input from RGB), so the RGB pixels are reversed here.
    """
    rgb = to_rgb(image)
    w, h = rgb.size
    scale = 1.0
    if max(w, h) > MAX_SIDE:
        scale = MAX_SIDE / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    arr = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[:, :, ::-1])
    return arr, scale


def read_text(image: Image.Image, engine: Callable[[np.ndarray], Any] | None = None) -> list[OcrLine]:
    """OCR the image: lines with text, confidence and quads in the original image's pixels.

    ``engine`` defaults to the shared rapidocr instance (critics.engines.rapidocr_engine()).
    Engine errors propagate; an image without text (or 0-sized) gives [].
    """
    if image.width == 0 or image.height == 0:
        return []
    if engine is None:
        from critics.engines import rapidocr_engine

        engine = rapidocr_engine()
    arr, _ = prepare_image(image)
    if arr.size == 0 or int(arr.max()) == int(arr.min()):
        return []  # a uniform image has no text (and tiny ones would be upscaled to 736 px for nothing)
    out = engine(arr)
    txts = getattr(out, "txts", None)
    boxes = getattr(out, "boxes", None)
    scores = getattr(out, "scores", None)
    if not txts or boxes is None or len(boxes) == 0:
        return []
    sx, sy = image.width / arr.shape[1], image.height / arr.shape[0]  # back to original pixels
    lines: list[OcrLine] = []
    for txt, quad, sc in zip(txts, boxes, scores if scores is not None else [1.0] * len(txts)):
        if not str(txt).strip():
            continue
        q = np.asarray(quad, dtype=np.float64).reshape(-1, 2)[:4] * (sx, sy)
        q[:, 0] = q[:, 0].clip(0, image.width)
        q[:, 1] = q[:, 1].clip(0, image.height)
        pts = tuple((round(float(x), 1), round(float(y), 1)) for x, y in q)
        lines.append(OcrLine(text=str(txt), score=float(sc), box=pts))  # type: ignore[arg-type]
    return lines


# --------------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class _Norm:
    display: str  # NFKC, whitespace collapsed, original case
    key: str  # what is compared: casefolded unless case-sensitive, spaces only if exact
    idx: tuple[int, ...]  # key position -> display position


def _normalise(text: str, *, casefold: bool, keep_space: bool) -> _Norm:
    d = " ".join(unicodedata.normalize("NFKC", text).split())
    chars: list[str] = []
    idx: list[int] = []
    for i, ch in enumerate(d):
        if ch == " ":
            if keep_space:
                chars.append(" ")
                idx.append(i)
            continue
        for c in ch.casefold() if casefold else ch:
            chars.append(c)
            idx.append(i)
    return _Norm(d, "".join(chars), tuple(idx))


def _reading_order(lines: Sequence[OcrLine]) -> list[OcrLine]:
    """Top-to-bottom rows (lines whose centres are within half a line height), left-to-right in a row."""
    if not lines:
        return []
    info = []
    for ln in lines:
        x0, y0, x1, y1 = ln.bbox()
        info.append(((y0 + y1) / 2, x0, max(1, y1 - y0), ln))
    tol = 0.5 * statistics.median(i[2] for i in info)
    info.sort(key=lambda t: t[0])
    rows: list[list[tuple]] = []
    for item in info:
        if rows and item[0] - rows[-1][0][0] <= tol:
            rows[-1].append(item)
        else:
            rows.append([item])
    return [it[3] for row in rows for it in sorted(row, key=lambda t: t[1])]


# --------------------------------------------------------------------------- matching


@dataclass
class ElementMatch:
    """How one required text element was read."""

    id: str
    role: str
    expected: str
    region: Box
    read: str = ""
    cer: float = 1.0
    word_accuracy: float = 0.0
    box: PixelBox | None = None
    in_region: bool = False
    found: bool = False
    wrong_words: list[tuple[str, str]] = field(default_factory=list)  # (read, expected)
    line_ids: tuple[int, ...] = ()  # indices into OcrScore.lines (reading order)

    @property
    def accuracy(self) -> float:
        """min(1 - CER, word accuracy): one wrong word in a short line fails, a slip in long text does not."""
        return min(1.0 - self.cer, self.word_accuracy)


@dataclass
class OcrScore:
    """Result of matching all elements: per-element matches, extra lines and the overall score."""

    elements: list[ElementMatch]
    extra_text: list[OcrLine]
    lines: list[OcrLine]
    score: float

    def worst(self) -> ElementMatch | None:
        return min(self.elements, key=lambda m: m.accuracy) if self.elements else None


@dataclass
class _Window:
    lines: tuple[int, ...]  # indices into the ordered line list
    norm: _Norm  # display = the lines' displays joined by " "; key = their keys concatenated
    key_line: tuple[int, ...]  # key position -> line index


def _window(norms: Sequence[_Norm], i: int, j: int) -> _Window:
    """Lines i..j (reading order) as one searchable string; keys have no whitespace."""
    display_parts: list[str] = []
    idx: list[int] = []
    key_line: list[int] = []
    off = 0
    for li in range(i, j + 1):
        n = norms[li]
        if li > i:
            off += 1  # the joining space in the display
        display_parts.append(n.display)
        idx.extend(off + k for k in n.idx)
        key_line.extend([li] * len(n.key))
        off += len(n.display)
    key = "".join(norms[li].key for li in range(i, j + 1))
    return _Window(tuple(range(i, j + 1)), _Norm(" ".join(display_parts), key, tuple(idx)), tuple(key_line))


def _best_span(exp: str, cand: str, a: int, b: int) -> tuple[int, int, int]:
    """Refine [a, b) in cand to the substring with the least Levenshtein distance to exp."""
    n = len(cand)
    s = min(max(2, len(exp) // 4), 8)
    best = (Levenshtein.distance(exp, cand[a:b]), a, b)
    for a2 in range(max(0, a - s), min(n, a + s) + 1):
        for b2 in range(max(a2 + 1, b - s), min(n, b + s) + 1):
            d = Levenshtein.distance(exp, cand[a2:b2], score_cutoff=best[0])
            if d < best[0] or (d == best[0] and abs(a2 - a) + abs(b2 - b) < abs(best[1] - a) + abs(best[2] - b)):
                best = (d, a2, b2)
    return best


def _union_box(lines: Iterable[OcrLine]) -> PixelBox | None:
    bbs = [ln.bbox() for ln in lines]
    if not bbs:
        return None
    return (min(b[0] for b in bbs), min(b[1] for b in bbs), max(b[2] for b in bbs), max(b[3] for b in bbs))


def _in_region(box: PixelBox | None, region: PixelBox, image_size: tuple[int, int]) -> bool:
    """Centre inside the region (grown by 5% of the canvas), or IoU >= 0.3."""
    if box is None:
        return False
    w, h = image_size
    mx, my = 0.05 * w, 0.05 * h
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    if region[0] - mx <= cx <= region[2] + mx and region[1] - my <= cy <= region[3] + my:
        return True
    ix = max(0, min(box[2], region[2]) - max(box[0], region[0]))
    iy = max(0, min(box[3], region[3]) - max(box[1], region[1]))
    inter = ix * iy
    union = (box[2] - box[0]) * (box[3] - box[1]) + (region[2] - region[0]) * (region[3] - region[1]) - inter
    return union > 0 and inter / union >= 0.3


def _word_ranges(expected_display: str, casefold: bool, keep_space: bool) -> list[tuple[str, str, int, int]]:
    """(display word, key word, key start, key end) for each expected word."""
    out = []
    pos = 0
    for k, word in enumerate(expected_display.split(" ")):
        if k > 0 and keep_space:
            pos += 1
        key = _normalise(word, casefold=casefold, keep_space=keep_space).key
        out.append((word, key, pos, pos + len(key)))
        pos += len(key)
    return out


def compare_text(expected: str, read: str, *, case_sensitive: bool = False,
                 exact: bool = False) -> tuple[float, float, list[tuple[str, str]]]:
    """CER, word accuracy and the differing words ((read, expected) pairs) of read vs expected.

    Both sides are normalised (NFKC, whitespace collapsed, casefolded unless case_sensitive,
    whitespace dropped unless exact). Expected words are projected onto the read text through the
    character alignment (rapidfuzz Levenshtein opcodes), so a read text that lost its spaces
    ("GRANDOPNING") still yields the word diff [("OPNING", "OPENING")].
    """
    casefold, keep_space = not case_sensitive, exact
    exp = _normalise(expected, casefold=casefold, keep_space=keep_space)
    got = _normalise(read, casefold=casefold, keep_space=keep_space)
    if not exp.key:
        return (0.0 if not got.key else 1.0), 1.0, []
    cer = min(1.0, Levenshtein.distance(exp.key, got.key) / len(exp.key))
    words = _word_ranges(exp.display, casefold, keep_space)
    spans: list[list[int]] = [[] for _ in words]
    starts = [w[2] for w in words]

    def owner_of_insert(pos: int) -> int:
        # Text inserted inside a word belongs to it; at a word boundary, to the word before.
        k = 0
        for wi, st in enumerate(starts):
            if st < pos:
                k = wi
        return k

    for op in Levenshtein.opcodes(exp.key, got.key):
        if op.tag == "delete":
            continue
        if op.tag == "insert":
            spans[owner_of_insert(op.src_start)].extend(range(op.dest_start, op.dest_end))
            continue
        for wi, (_, _, ws, we) in enumerate(words):
            lo, hi = max(op.src_start, ws), min(op.src_end, we)
            if lo < hi:
                d0 = op.dest_start + (lo - op.src_start)
                d1 = min(op.dest_end, op.dest_start + (hi - op.src_start))
                spans[wi].extend(range(d0, d1))
    correct = 0
    wrong: list[tuple[str, str]] = []
    for (disp, key, _, _), sp in zip(words, spans):
        if sp:
            lo, hi = min(sp), max(sp) + 1
            got_key = got.key[lo:hi]
            got_disp = got.display[got.idx[lo]: got.idx[hi - 1] + 1].strip()
        else:
            got_key, got_disp = "", ""
        if got_key == key:
            correct += 1
        else:
            wrong.append((got_disp, disp))
    return cer, (correct / len(words) if words else 1.0), wrong


def _match_element(el: TextElement, ordered: list[OcrLine], norms: list[_Norm],
                   image_size: tuple[int, int]) -> ElementMatch:
    """Locate el in the OCR lines (caseless, spaceless), then grade the located text strictly."""
    region_px = el.region.to_pixels(*image_size)
    m = ElementMatch(id=el.id, role=el.role, expected=el.content, region=el.region)
    loose = _normalise(el.content, casefold=True, keep_space=False)
    if not loose.key:
        m.cer, m.word_accuracy, m.found = 0.0, 1.0, True
        return m

    # Locate: every run of up to MAX_WINDOW_LINES adjacent lines that could hold the text.
    located: list[tuple[int, int, _Window, int, int]] = []
    n = len(ordered)
    for i in range(n):
        inner = 0
        for j in range(i, min(n, i + MAX_WINDOW_LINES)):
            if j > i + 1:
                inner += len(norms[j - 1].key)
                if inner > len(loose.key) + 2:
                    break
            win = _window(norms, i, j)
            if not win.norm.key:
                continue
            al = fuzz.partial_ratio_alignment(loose.key, win.norm.key)
            a, b = al.dest_start, max(al.dest_end, al.dest_start + 1)
            # Rank by the edit distance of the located span: partial_ratio alone scores a
            # fragment ("GRAND" for "GRAND OPENING") 100 because the shorter string fits inside.
            located.append((Levenshtein.distance(loose.key, win.norm.key[a:b]), j - i, win, a, b))
    if not located:
        return m
    located.sort(key=lambda t: (t[0], t[1]))

    # Refine the most promising windows to the exact best substring; prefer in-region on ties.
    best: tuple | None = None
    seen: set[tuple[int, ...]] = set()
    for _, _, win, a, b in located:
        if len(seen) >= REFINE_TOP:
            break
        if win.lines in seen:
            continue
        seen.add(win.lines)
        dist, a2, b2 = _best_span(loose.key, win.norm.key, a, b)
        used = tuple(sorted({win.key_line[k] for k in range(a2, b2)}))
        box = _union_box(ordered[k] for k in used)
        inside = _in_region(box, region_px, image_size)
        rank = (dist, not inside, len(used))
        if best is None or rank < best[0]:
            best = (rank, win, a2, b2, used, box, inside)
    assert best is not None
    (dist, _, _), win, a, b, used, box, inside = best
    if dist / len(loose.key) > MISSING_CER:
        return m

    # Grade what was read there with the element's own rules (case, exact whitespace).
    read = win.norm.display[win.norm.idx[a]: win.norm.idx[b - 1] + 1].strip()
    cer, wacc, wrong = compare_text(el.content, read, case_sensitive=el.case_sensitive, exact=el.exact)
    m.read, m.cer, m.word_accuracy, m.wrong_words = read, cer, wacc, wrong
    m.box, m.in_region, m.found, m.line_ids = box, inside, True, used
    return m


def score_elements(elements: Sequence[TextElement], lines: Sequence[OcrLine],
                   image_size: tuple[int, int]) -> OcrScore:
    """Match every required element against OCR lines (pure: no OCR, no I/O).

    score = min over elements of min(1 - CER, word accuracy), 1.0 when there are no elements.
    Extra text = confident lines (score >= 0.5) that no element matched and that resemble none
    (partial_ratio < 60 against every element).
    """
    ordered = _reading_order(list(lines))
    norms = [_normalise(ln.text, casefold=True, keep_space=False) for ln in ordered]
    matches = [_match_element(el, ordered, norms, image_size) for el in elements]
    used = {k for mt in matches for k in mt.line_ids}
    exp_keys = [_normalise(el.content, casefold=True, keep_space=False).key for el in elements]
    extra: list[OcrLine] = []
    for k, (ln, norm) in enumerate(zip(ordered, norms)):
        if ln.score < MIN_LINE_SCORE or k in used:
            continue
        key = norm.key
        if not key:
            continue
        if all(fuzz.partial_ratio(key, ek) < EXTRA_TEXT_MAX_SIMILARITY for ek in exp_keys if ek):
            extra.append(ln)
    score = min((mt.accuracy for mt in matches), default=1.0)
    return OcrScore(elements=matches, extra_text=extra, lines=ordered, score=max(0.0, min(1.0, score)))


# --------------------------------------------------------------------------- feedback


def _where(box: Box) -> str:
    d = box.describe()
    return "the centre" if d == "centre" else d


def _pixel_where(box: PixelBox, image_size: tuple[int, int]) -> str:
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
        notes.append(f"{m.role} '{m.expected}' found at {_pixel_where(m.box, image_size)}, "
                     f"planned at {_where(m.region)}")
    if result.extra_text:
        shown = result.extra_text[:3]
        notes.append("extra text not in the plan: " + ", ".join(
            f"'{ln.text}' at {_pixel_where(ln.bbox(), image_size)}" for ln in shown)
            + (f" (+{len(result.extra_text) - 3} more)" if len(result.extra_text) > 3 else ""))
    return "; ".join([line, *notes])


# --------------------------------------------------------------------------- critic


def _r(x: float) -> float:
    return round(float(x), 3)


def _evidence(result: OcrScore, image_size: tuple[int, int], downscaled: bool) -> dict[str, Any]:
    return {
        "engine": "rapidocr",
        "elements": [
            {
                "id": m.id,
                "expected": m.expected,
                "read": m.read,
                "cer": _r(m.cer),
                "word_accuracy": _r(m.word_accuracy),
                "box": list(m.box) if m.box is not None else None,
                "in_region": m.in_region,
                "region": list(m.region.to_pixels(*image_size)),
                "wrong_words": [[r, e] for r, e in m.wrong_words],
            }
            for m in result.elements
        ],
        "lines": [{"text": ln.text, "score": _r(ln.score), "box": list(ln.bbox())}
                  for ln in result.lines[:MAX_EVIDENCE_LINES]],
        "extra_text": [{"text": ln.text, "score": _r(ln.score), "box": list(ln.bbox())}
                       for ln in result.extra_text[:MAX_EVIDENCE_LINES]],
        "downscaled": downscaled,
    }


def _threshold(plan: Plan) -> float:
    spec = plan.checks.get("ocr")
    return float(spec.threshold) if spec is not None else INFO.threshold


EXTRA_TEXT_CAP = 0.95
"""Invented text caps the score just below the threshold: the verdict fails, the elements still rank."""
INVENTED_MIN_SCORE = 0.8


def _invented_text(extra: Sequence[OcrLine], plan: Plan, size: tuple[int, int]) -> list[OcrLine]:
    """Confident extra lines of 3+ letters outside every subject region (a product photo may carry a label)."""
    subjects = [s.region.to_pixels(*size) for s in plan.subjects]
    out = []
    for ln in extra:
        if ln.score < INVENTED_MIN_SCORE or sum(ch.isalnum() for ch in ln.text) < 3:
            continue
        x0, y0, x1, y1 = ln.bbox()
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if any(a <= cx <= c and b <= cy <= d for a, b, c, d in subjects):
            continue
        out.append(ln)
    return out


class OcrCritic(CriticBase):
    """Text accuracy via rapidocr: the worst required element's (1 - CER) against the threshold."""

    name = "ocr"
    info = INFO

    def __init__(self, engine: Callable[[np.ndarray], Any] | str | None = None) -> None:
        """`engine`: a callable, an engine name ('rapidocr', 'tesseract'), or None for $PIXLOOP_OCR_ENGINE / rapidocr."""
        import os

        name = engine if isinstance(engine, str) else os.environ.get("PIXLOOP_OCR_ENGINE", "rapidocr")
        self.engine_name = name if not callable(engine) else getattr(engine, "__name__", "custom")
        if name not in ("rapidocr", "tesseract"):
            raise ValueError(f"unknown OCR engine {name!r}; choose rapidocr or tesseract")
        self._engine = engine if callable(engine) else None

    def _resolve_engine(self) -> Callable[[np.ndarray], Any] | None:
        if self._engine is None and self.engine_name == "tesseract":
            from critics.engines import tesseract_engine

            self._engine = tesseract_engine()
        return self._engine

    def check(self, image: Image.Image, plan: Plan, context: CheckContext) -> Verdict:
        t0 = time.perf_counter()
        threshold = _threshold(plan)
        size = (max(1, image.width), max(1, image.height))
        downscaled = max(image.size) > MAX_SIDE
        try:
            lines = read_text(image, engine=self._resolve_engine())
        except Exception as e:  # noqa: BLE001 - a critic never crashes the loop
            return self._failed(context, threshold, t0, downscaled,
                                f"{type(e).__name__}: {e}", "OCR failed; required text could not be checked")
        try:
            result = score_elements(plan.text, lines, size)
        except Exception as e:  # noqa: BLE001
            return self._failed(context, threshold, t0, downscaled,
                                f"{type(e).__name__}: {e}", "OCR scoring failed; required text could not be checked")
        score = result.score
        invented = _invented_text(result.extra_text, plan, size)
        if invented:
            score = min(score, EXTRA_TEXT_CAP * threshold)
        passed = score >= threshold
        feedback = feedback_line(result, passed, size)
        if invented and result.score >= threshold:
            feedback = "extra text not in the plan: " + ", ".join(
                f"'{ln.text}' at {_pixel_where(ln.bbox(), size)}" for ln in invented[:3]) + "; remove it"
        return Verdict(
            critic=self.name,
            candidate_id=context.candidate_id,
            score=score,
            passed=passed,
            threshold=threshold,
            evidence={**_evidence(result, size, downscaled), "engine": self.engine_name,
                      "invented_text": [ln.text for ln in invented[:MAX_EVIDENCE_LINES]]},
            feedback=feedback,
            seconds=round(time.perf_counter() - t0, 3),
        )

    def _failed(self, context: CheckContext, threshold: float, t0: float, downscaled: bool,
                error: str, feedback: str) -> Verdict:
        return Verdict(
            critic=self.name,
            candidate_id=context.candidate_id,
            score=0.0,
            passed=False,
            threshold=threshold,
            evidence={"engine": self.engine_name, "elements": [], "lines": [], "extra_text": [],
                      "downscaled": downscaled},
            feedback=f"{feedback} ({error[:200]})",
            seconds=round(time.perf_counter() - t0, 3),
            error=error,
        )
