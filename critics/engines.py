"""Process-wide, lazily created model engines shared by the critics.

Models are expensive to load (rapidocr: ~0.9 s import + init), so each engine is
created once per process, on first use, under a lock (double-checked), and then
shared by every critic and thread. Add later engines (faces, artifacts) here with
the same pattern: a module-level slot, a lock and an accessor function.

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
                engine = RapidOCR(params={"Global.log_level": "warning"})
                _quiet(_RAPIDOCR_LOGGERS)
                _rapidocr = engine
    return _rapidocr


def engine_loaded(name: str) -> bool:
    """Whether an engine has been created already (for status/diagnostics; loads nothing)."""
    if name == "rapidocr":
        return _rapidocr is not None
    raise KeyError(f"unknown engine {name!r}")
