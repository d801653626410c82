"""Matching: text normalisation, reading order, and the search for each required element in the OCR lines
(CER, word accuracy, word diff, placement). Pure: no OCR, no I/O."""

from __future__ import annotations

import statistics
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from agent.models import Box, TextElement
from critics.ocr.reading import OcrLine, PixelBox

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
WORD_TAIL_MAX = 2
"""Letters or digits glued to either end of the located text (no space between) count as read when there are at
most this many: required 'UNIVERSA' where the image says 'UNIVERSAL' is a misspelling, not a match. A longer run
is taken for another word whose space OCR dropped ('GRANDOPENING' still holds 'OPENING'). Scripts written
without spaces (Han, kana, Thai, ...) are never extended."""
_UNSPACED_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "HALFWIDTH KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR",
                     "TIBETAN")


# --------------------------------------------------------------------------- normalisation


DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212-"
"""Hyphen, non-breaking hyphen, figure dash, en dash, em dash, horizontal bar, minus sign, hyphen-minus: one
class unless an element is ``exact`` (OCR reads an em dash as an en dash or a hyphen as often as not)."""
QUOTES = "\"\u201c\u201d\u201e\u201f'\u2018\u2019\u201a\u201b\u02bc\u2032"
"""Straight, curly, low-9 and reversed quotes, single and double, the modifier-letter apostrophe and the prime:
one class unless an element is ``exact``."""
_TYPOGRAPHIC = str.maketrans({**{c: "-" for c in DASHES}, **{c: "'" for c in QUOTES}})


@dataclass(frozen=True)
class _Norm:
    display: str  # NFC, whitespace collapsed, original characters and case
    key: str  # what is compared: NFKC + typographic classes unless exact, casefolded unless case-sensitive,
    # spaces only if exact
    idx: tuple[int, ...]  # key position -> display position


def fold(text: str) -> str:
    """NFKC plus the typographic classes (dashes, quotes and apostrophes); ligatures and the ellipsis are
    NFKC's ("\ufb01" -> "fi", "\u2026" -> "...")."""
    return unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHIC)


def _normalise(text: str, *, casefold: bool, keep_space: bool, exact: bool = False) -> _Norm:
    """Display and comparison key of `text`; `exact` compares characters as written (NFC only)."""
    d = " ".join(unicodedata.normalize("NFC", text).split())
    chars: list[str] = []
    idx: list[int] = []
    for i, ch in enumerate(d):
        if ch == " ":
            if keep_space:
                chars.append(" ")
                idx.append(i)
            continue
        k = ch if exact else fold(ch)
        for c in k.casefold() if casefold else k:
            if c.isspace():
                continue
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


def _word_char(ch: str) -> bool:
    """A letter or digit of a script that separates words with spaces."""
    return ch.isalnum() and not unicodedata.name(ch, "").startswith(_UNSPACED_SCRIPTS)


def word_span(display: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) grown over at most WORD_TAIL_MAX word characters glued to either end (see WORD_TAIL_MAX)."""
    if start >= end:
        return start, end
    left = start
    while left > 0 and _word_char(display[left - 1]):
        left -= 1
    if _word_char(display[start]) and 0 < start - left <= WORD_TAIL_MAX:
        start = left
    right = end
    while right < len(display) and _word_char(display[right]):
        right += 1
    if _word_char(display[end - 1]) and 0 < right - end <= WORD_TAIL_MAX:
        end = right
    return start, end


def _word_ranges(expected_display: str, casefold: bool, keep_space: bool,
                 exact: bool = False) -> list[tuple[str, str, int, int]]:
    """(display word, key word, key start, key end) for each expected word."""
    out = []
    pos = 0
    for k, word in enumerate(expected_display.split(" ")):
        if k > 0 and keep_space:
            pos += 1
        key = _normalise(word, casefold=casefold, keep_space=keep_space, exact=exact).key
        out.append((word, key, pos, pos + len(key)))
        pos += len(key)
    return out


def compare_text(expected: str, read: str, *, case_sensitive: bool = False,
                 exact: bool = False) -> tuple[float, float, list[tuple[str, str]]]:
    """CER, word accuracy and the differing words ((read, expected) pairs) of read vs expected.

    Both sides are normalised (NFKC and typographic classes unless exact, whitespace collapsed, casefolded
    unless case_sensitive, whitespace dropped unless exact). Expected words are projected onto the read text through the
    character alignment (rapidfuzz Levenshtein opcodes), so a read text that lost its spaces
    ("GRANDOPNING") still yields the word diff [("OPNING", "OPENING")].
    """
    casefold, keep_space = not case_sensitive, exact
    exp = _normalise(expected, casefold=casefold, keep_space=keep_space, exact=exact)
    got = _normalise(read, casefold=casefold, keep_space=keep_space, exact=exact)
    if not exp.key:
        return (0.0 if not got.key else 1.0), 1.0, []
    cer = min(1.0, Levenshtein.distance(exp.key, got.key) / len(exp.key))
    words = _word_ranges(exp.display, casefold, keep_space, exact)
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
            assert al is not None  # None only for None inputs or below a score_cutoff; neither here
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

    # Grade what was read there, with letters glued to its ends, by the element's own rules (case, exact).
    start, end = word_span(win.norm.display, win.norm.idx[a], win.norm.idx[b - 1] + 1)
    read = win.norm.display[start:end].strip()
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
