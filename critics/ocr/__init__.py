"""OCR text-accuracy critic: does the image carry the plan's required text, spelled right, where planned?

Pipeline: ``read_image`` (rapidocr's models stage by stage: detection passes at chosen scales while
required text is unread, recognition on full-resolution crops; lines with quads in original pixels) ->
``score_elements`` (pure matching, testable without OCR) -> ``OcrCritic.check`` (Verdict with compact
evidence and one actionable feedback line about the worst element). Elements in a script the recogniser
cannot output (Hangul, Cyrillic, ...) are not checked: the verdict is ``unavailable`` unless another fails.

Matching, per TextElement:
- both sides are NFKC-normalised with the typographic classes folded (dashes; quotes and apostrophes) and
  whitespace collapsed, unless ``exact`` (characters as written); casefolded unless ``case_sensitive``;
  whitespace is ignored unless ``exact`` (rapidocr sometimes drops spaces);
- the expected string is located in the OCR output (each line, and runs of adjacent lines in
  reading order) with ``fuzz.partial_ratio_alignment``; the window is then refined to the substring
  with the smallest Levenshtein distance, and grown over up to two letters glued to either end (a required
  'UNIVERSA' read where the image says 'UNIVERSAL' is a misspelling); CER = distance / len(expected), clipped to 1;
- word accuracy / the word diff come from projecting the expected words through the character
  alignment (``Levenshtein.opcodes``), so they work even when OCR dropped the spaces.

Layout: ``engines`` (the shared rapidocr instance and its character set, optional Tesseract), ``reading``
(image preparation, ``OcrLine``, the one-call path for custom engines), ``detection`` (detection at a scale,
recognition of quads), ``multiscale`` (the passes and how their lines merge), ``matching`` (normalisation and
matching), ``feedback`` (wording) and ``critic`` (``OcrCritic``, evidence). Everything is re-exported here.
"""

from __future__ import annotations

from critics.ocr.critic import (
    EXTRA_TEXT_CAP,
    INFO,
    INVENTED_MIN_SCORE,
    MAX_EVIDENCE_LINES,
    OcrCritic,
    unreadable_characters,
)
from critics.ocr.detection import DetParams
from critics.ocr.feedback import element_feedback, feedback_line, pixel_where
from critics.ocr.matching import (
    EXTRA_TEXT_MAX_SIMILARITY,
    MAX_WINDOW_LINES,
    MIN_LINE_SCORE,
    MISSING_CER,
    REFINE_TOP,
    WORD_TAIL_MAX,
    ElementMatch,
    OcrScore,
    compare_text,
    fold,
    score_elements,
    word_span,
)
from critics.ocr.multiscale import DEFAULT_SETTINGS, Reading, ScanSettings, read_image
from critics.ocr.reading import MAX_SIDE, OcrLine, PixelBox, Quad, prepare_image, read_text, to_rgb

__all__ = [
    "DEFAULT_SETTINGS", "DetParams", "EXTRA_TEXT_CAP", "EXTRA_TEXT_MAX_SIMILARITY", "ElementMatch", "INFO",
    "INVENTED_MIN_SCORE", "MAX_EVIDENCE_LINES", "MAX_SIDE", "MAX_WINDOW_LINES", "MIN_LINE_SCORE", "MISSING_CER",
    "OcrCritic", "OcrLine", "OcrScore", "PixelBox", "Quad", "REFINE_TOP", "Reading", "ScanSettings", "WORD_TAIL_MAX",
    "compare_text", "element_feedback", "feedback_line", "fold", "pixel_where", "prepare_image", "read_image",
    "read_text", "score_elements", "to_rgb", "unreadable_characters", "word_span",
]
