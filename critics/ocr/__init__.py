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

Layout: ``engines`` (the shared rapidocr instance, optional Tesseract), ``reading`` (image preparation
and the OCR call), ``matching`` (normalisation and matching), ``feedback`` (wording) and ``critic``
(``OcrCritic``, evidence). Everything is re-exported here.
"""

from __future__ import annotations

from critics.ocr.critic import EXTRA_TEXT_CAP, INFO, INVENTED_MIN_SCORE, MAX_EVIDENCE_LINES, OcrCritic
from critics.ocr.feedback import element_feedback, feedback_line, pixel_where
from critics.ocr.matching import (
    EXTRA_TEXT_MAX_SIMILARITY,
    MAX_WINDOW_LINES,
    MIN_LINE_SCORE,
    MISSING_CER,
    REFINE_TOP,
    ElementMatch,
    OcrScore,
    compare_text,
    score_elements,
)
from critics.ocr.reading import MAX_SIDE, OcrLine, PixelBox, Quad, prepare_image, read_text, to_rgb

__all__ = [
    "EXTRA_TEXT_CAP", "EXTRA_TEXT_MAX_SIMILARITY", "ElementMatch", "INFO", "INVENTED_MIN_SCORE",
    "MAX_EVIDENCE_LINES", "MAX_SIDE", "MAX_WINDOW_LINES", "MIN_LINE_SCORE", "MISSING_CER", "OcrCritic", "OcrLine",
    "OcrScore", "PixelBox", "Quad", "REFINE_TOP", "compare_text", "element_feedback", "feedback_line", "pixel_where",
    "prepare_image", "read_text", "score_elements", "to_rgb",
]
