"""``OcrCritic``: reads the image, matches the plan's text elements, and turns the result into a Verdict
with compact evidence; invented text caps the score."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from agent.models import Plan, Verdict
from agent.models.evidence import TextEvidence
from critics.base import CheckContext, CriticBase, CriticInfo
from critics.ocr.feedback import feedback_line, pixel_where
from critics.ocr.matching import OcrScore, fold, score_elements
from critics.ocr.multiscale import DEFAULT_SETTINGS, ScanSettings, read_image
from critics.ocr.reading import MAX_SIDE, OcrLine, read_text

INFO = CriticInfo(
    threshold=0.9,
    threshold_source=(
        "per-element accuracy min(1 - CER, word accuracy), worst element decides; rapidocr reads clean posters "
        "at CER 0.009 (shared/docs/critic-engines.md section 1); bench/calibrate_critics.py: correct posters "
        "score 1.00, one-letter misspellings <= 0.67, so 0.90 fails any wrong word in lines of under ten words; "
        "on 200 real IIIT 5K-word crops (bench/real_text.py) 0.90 passes 92-94% of correct labels and fails "
        "every one-letter misspelling"
    ),
    description="required text read back by OCR: per element CER and word accuracy, missing and invented text",
    weight=3.0, measured=True, needs=("text",), on_by_default=True,
    strategies=("restyle_text", "edit_region", "reprompt", "typeset_text", "new_seed"),
    evidence=TextEvidence,
)
"""What the loop knows about this critic (see `critics.base.CriticInfo`)."""

MAX_EVIDENCE_LINES = 40


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


def unreadable_characters(text: str, charset: frozenset[str]) -> list[str]:
    """Characters of `text` the recogniser can never output (in either case, or after folding), once each."""
    out = []
    for ch in dict.fromkeys(text):
        if ch.isspace() or ch in charset:
            continue
        variants = (ch.upper(), ch.lower(), fold(ch))
        if any(v and all(c in charset or c.isspace() for c in v) for v in variants):
            continue
        out.append(ch)
    return out


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    if name.startswith("CJK"):
        return "Han"
    return name.split(" ")[0].title() if name else f"U+{ord(ch):04X}"


def _unreadable_why(plan: Plan, unreadable: dict[str, list[str]]) -> str:
    """Why the listed elements cannot be checked: the scripts the OCR model has no characters for."""
    parts = []
    for el in plan.text:
        if el.id in unreadable:
            scripts = ", ".join(dict.fromkeys(_script(c) for c in unreadable[el.id]))
            parts.append(f"{el.role} '{el.content}' is in {scripts}")
    return ("; ".join(parts) + ", which rapidocr's recogniser cannot read (it reads Chinese, Japanese kana and "
            "kanji, Latin, Greek, digits and punctuation): that text is not verified")


class OcrCritic(CriticBase):
    """Text accuracy via rapidocr: the worst required element's (1 - CER) against the threshold."""

    name = "ocr"
    info = INFO

    def __init__(self, engine: Callable[[np.ndarray], Any] | str | None = None,
                 settings: ScanSettings = DEFAULT_SETTINGS) -> None:
        """`engine`: a callable, an engine name ('rapidocr', 'tesseract'), or None for $PIXLOOP_OCR_ENGINE / rapidocr.

        `settings`: the detection passes of the rapidocr engine (``critics.ocr.multiscale``); a callable or
        Tesseract is called once on the whole image.
        """
        import os

        self.settings = settings
        name = engine if isinstance(engine, str) else os.environ.get("PIXLOOP_OCR_ENGINE", "rapidocr")
        self.engine_name = name if not callable(engine) else getattr(engine, "__name__", "custom")
        if name not in ("rapidocr", "tesseract"):
            raise ValueError(f"unknown OCR engine {name!r}; choose rapidocr or tesseract")
        self._engine = engine if callable(engine) else None

    def _resolve_engine(self) -> Callable[[np.ndarray], Any] | None:
        if self._engine is None and self.engine_name == "tesseract":
            from critics.ocr.engines import tesseract_engine

            self._engine = tesseract_engine()
        return self._engine

    def check(self, image: Image.Image, plan: Plan, context: CheckContext) -> Verdict:
        t0 = time.perf_counter()
        threshold = _threshold(plan)
        size = (max(1, image.width), max(1, image.height))
        downscaled = max(image.size) > MAX_SIDE
        passes: list[str] = []
        elements = list(plan.text)
        unreadable: dict[str, list[str]] = {}
        try:
            engine = self._resolve_engine()
            if engine is None:
                from critics.ocr.engines import rapidocr_charset

                charset = rapidocr_charset()
                unreadable = {el.id: gaps for el in elements if (gaps := unreadable_characters(el.content, charset))}
                elements = [el for el in elements if el.id not in unreadable]
                if elements or not unreadable:
                    reading = read_image(image, elements, settings=self.settings)
                    lines, passes = reading.lines, reading.passes
                else:
                    lines = []  # nothing left that OCR could verify
            else:
                lines = read_text(image, engine=engine)
        except Exception as e:  # noqa: BLE001 - a critic never crashes the loop
            return self._failed(context, threshold, t0, downscaled,
                                f"{type(e).__name__}: {e}", "OCR failed; required text could not be checked")
        try:
            result = score_elements(elements, lines, size)
        except Exception as e:  # noqa: BLE001
            return self._failed(context, threshold, t0, downscaled,
                                f"{type(e).__name__}: {e}", "OCR scoring failed; required text could not be checked")
        score = result.score
        invented = _invented_text(result.extra_text, plan, size)
        if invented:
            score = min(score, EXTRA_TEXT_CAP * threshold)
        passed = score >= threshold
        if unreadable and (passed or not elements):
            return Verdict.unavailable(self.name, context.candidate_id, threshold, _unreadable_why(plan, unreadable),
                                       seconds=round(time.perf_counter() - t0, 3))
        feedback = feedback_line(result, passed, size)
        if invented and result.score >= threshold:
            feedback = "extra text not in the plan: " + ", ".join(
                f"'{ln.text}' at {pixel_where(ln.bbox(), size)}" for ln in invented[:3]) + "; remove it"
        return Verdict(
            critic=self.name,
            candidate_id=context.candidate_id,
            score=score,
            passed=passed,
            threshold=threshold,
            evidence={**_evidence(result, size, downscaled), "engine": self.engine_name,
                      "invented_text": [ln.text for ln in invented[:MAX_EVIDENCE_LINES]], "passes": passes,
                      **({"unverified": {k: "".join(v) for k, v in unreadable.items()}} if unreadable else {})},
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
