"""OCR engines (rapidocr, optional Tesseract): process-wide, lazily created, shared by the critics.

Models are expensive to load (rapidocr: ~0.9 s import + init), so each engine is
created once per process, on first use, under a lock (double-checked), and then
shared by every critic and thread. Other engines (the face engines in
critics.face.engines) follow the same pattern: a module-level slot, a lock and an
accessor function.

Thread safety (measured, see tests/test_ocr_critic.py): one RapidOCR instance
called from two threads at once on different images returns the same results as
serial calls and does not crash (onnxruntime sessions are thread-safe; rapidocr
keeps no per-call state on the instance as long as no per-call parameters are
passed). So calls are NOT serialised; there is no ``ocr_lock``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from agent.runtime.threads import job_threads

_RAPIDOCR_LOGGERS = ("RapidOCR", "rapidocr")

_rapidocr_lock = threading.Lock()
_rapidocr: Any = None


def _quiet(names: tuple[str, ...], level: int = logging.WARNING) -> None:
    for name in names:
        logging.getLogger(name).setLevel(level)


def rapidocr_engine() -> Any:
    """The process-wide RapidOCR instance, created on first call.

    Uses rapidocr's default (bundled, offline) models only: never pass
    ocr_version/lang_type/model_type, which trigger a model-hub download.
    use_cls stays on (fixes rotated / upside-down lines for ~6 ms).
    Takes a numpy array in **BGR** order (rapidocr returns 3-channel ndarrays as is).
    """
    global _rapidocr
    if _rapidocr is None:
        with _rapidocr_lock:
            if _rapidocr is None:
                _quiet(_RAPIDOCR_LOGGERS)
                from rapidocr import RapidOCR  # heavy import, deferred

                # RapidOCR.__init__ resets its logger to Global.log_level, so set it there too.
                params: dict[str, Any] = {"Global.log_level": "warning"}
                if (threads := job_threads()) is not None:  # a batch job's share of the node's cores
                    params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
                engine = RapidOCR(params=params)
                _quiet(_RAPIDOCR_LOGGERS)
                _rapidocr = engine
    return _rapidocr


_charset: frozenset[str] | None = None


def rapidocr_charset() -> frozenset[str]:
    """Every character rapidocr's recogniser can output (its CTC dictionary: Chinese, Japanese kana, Latin,
    Greek, digits, punctuation and symbols; no Hangul), loaded with the shared engine."""
    global _charset
    if _charset is None:
        rec = rapidocr_engine()._load_rec_model()
        _charset = frozenset(str(c) for c in rec.postprocess_op.character if c)
    return _charset


def engine_loaded(name: str) -> bool:
    """Whether an engine has been created already (for status/diagnostics; loads nothing)."""
    if name == "rapidocr":
        return _rapidocr is not None
    raise KeyError(f"unknown engine {name!r}")


class TesseractUnavailable(RuntimeError):
    """Tesseract was asked for but its binary or pytesseract is missing."""


class _TesseractOutput:
    """rapidocr-shaped result (txts, boxes, scores) so the OCR critic treats both engines alike."""

    def __init__(self, txts: list[str], boxes: list[list[list[float]]], scores: list[float]):
        self.txts, self.boxes, self.scores = (tuple(txts) or None), (boxes or None), tuple(scores)


def tesseract_available() -> bool:
    import shutil

    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return False
    return shutil.which("tesseract") is not None


def tesseract_engine() -> Any:
    """A callable OCR engine backed by the Tesseract binary (optional; a cross-check on clean layouts).

    Returns lines grouped from Tesseract's word rows, with axis-aligned quads. Per
    shared/docs/critic-engines.md it fails on text over photos and on rotations, so rapidocr
    stays the default.
    """
    if not tesseract_available():
        raise TesseractUnavailable("Tesseract OCR needs the `tesseract` binary (apt install tesseract-ocr) "
                                   "and `pip install pytesseract`")
    import pytesseract

    def run(bgr: Any) -> _TesseractOutput:
        rgb = bgr[:, :, ::-1]
        data = pytesseract.image_to_data(rgb, config="--psm 11", output_type=pytesseract.Output.DICT)
        lines: dict[tuple[int, int, int], list[int]] = {}
        for i, word in enumerate(data["text"]):
            if word.strip() and float(data["conf"][i]) >= 0:
                lines.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), []).append(i)
        txts, boxes, scores = [], [], []
        for idx in lines.values():
            x0 = min(data["left"][i] for i in idx)
            y0 = min(data["top"][i] for i in idx)
            x1 = max(data["left"][i] + data["width"][i] for i in idx)
            y1 = max(data["top"][i] + data["height"][i] for i in idx)
            txts.append(" ".join(data["text"][i] for i in idx))
            boxes.append([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
            scores.append(sum(float(data["conf"][i]) for i in idx) / len(idx) / 100)
        return _TesseractOutput(txts, boxes, scores)

    return run
