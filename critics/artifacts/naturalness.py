"""Naturalness sub-check: BRISQUE at the working size, from an offline engine when one is installed."""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Callable

import cv2
import numpy as np

from critics.artifacts.common import WORK_SIDE, SubCheck, as_rgb, downscale, make_subcheck

BRISQUE_DIRS = ("/usr/share/opencv4/quality", "/usr/share/opencv/quality", "/usr/local/share/opencv4/quality")
_brisque_lock = threading.Lock()
_brisque_cache: dict[tuple, tuple[Callable[[np.ndarray], float] | None, str]] = {}


def brisque_files() -> tuple[str, str] | None:
    """The BRISQUE model and range files: from the environment, else the first pair in BRISQUE_DIRS (or None)."""
    model, rng = os.environ.get("PIXLOOP_BRISQUE_MODEL"), os.environ.get("PIXLOOP_BRISQUE_RANGE")
    if model and rng and os.path.isfile(model) and os.path.isfile(rng):
        return model, rng
    for d in BRISQUE_DIRS:
        m = sorted(glob.glob(os.path.join(d, "brisque_model*.yml")))
        r = sorted(glob.glob(os.path.join(d, "brisque_range*.yml")))
        if m and r:
            return m[0], r[0]
    return None


def brisque_engine() -> tuple[Callable[[np.ndarray], float] | None, str]:
    """A BRISQUE scorer of RGB uint8 arrays if one works offline, and which one (or why none).

    Tried in order: cv2.quality.QualityBRISQUE (opencv-contrib) with model files from
    PIXLOOP_BRISQUE_MODEL / PIXLOOP_BRISQUE_RANGE or /usr/share/opencv4/quality/*.yml; then the
    ``brisque`` package (numpy-2 patched). Nothing is ever downloaded.
    """
    key = (os.environ.get("PIXLOOP_BRISQUE_MODEL"), os.environ.get("PIXLOOP_BRISQUE_RANGE"))
    with _brisque_lock:
        if key in _brisque_cache:
            return _brisque_cache[key]
        engine: Callable[[np.ndarray], float] | None = None
        why = ""
        quality = getattr(cv2, "quality", None)
        files = brisque_files()
        if quality is not None and hasattr(quality, "QualityBRISQUE_create") and files:
            try:
                model = quality.QualityBRISQUE_create(*files)
                lock = threading.Lock()

                def _cv(rgb: np.ndarray, _m=model, _l=lock) -> float:
                    with _l:
                        return float(_m.compute(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[0])

                _cv(np.full((64, 64, 3), 128, np.uint8) + np.arange(64, dtype=np.uint8)[None, :, None])
                engine, why = _cv, f"cv2.quality.QualityBRISQUE ({os.path.basename(files[0])})"
            except Exception as e:  # noqa: BLE001 - optional engine
                why = f"cv2.quality BRISQUE failed: {type(e).__name__}: {e}"
        if engine is None:
            try:
                from brisque import BRISQUE

                if not getattr(BRISQUE, "_pixloop_patched", False):
                    orig = BRISQUE.scale_features
                    # numpy >= 2.4 refuses float() of 1-element arrays (critic-engines.md §4).
                    BRISQUE.scale_features = lambda s, f, _o=orig: _o(
                        s, [float(np.ravel(np.asarray(x, float))[0]) for x in f])
                    BRISQUE._pixloop_patched = True
                obj = BRISQUE(url=False)
                lock = threading.Lock()

                def _pkg(rgb: np.ndarray, _o=obj, _l=lock) -> float:
                    with _l:
                        return float(_o.score(rgb))

                engine, why = _pkg, "brisque package"
            except ImportError:
                why = (why + "; " if why else "") + ("no BRISQUE model offline (needs opencv-contrib cv2.quality "
                                                     "with brisque_*.yml, or the brisque package)")
            except Exception as e:  # noqa: BLE001
                why = (why + "; " if why else "") + f"brisque package failed: {type(e).__name__}: {e}"
        _brisque_cache[key] = (engine, why)
        return engine, why


def naturalness_check(image: np.ndarray, limit: float | None = None, work_side: int = WORK_SIDE,
                      engine: Callable[[np.ndarray], float] | None = None) -> SubCheck | None:
    """BRISQUE at the working size (the doc's calibration was at ~512 px); None if no engine is available."""
    if engine is None:
        engine, _ = brisque_engine()
        if engine is None:
            return None
    rgb = downscale(as_rgb(image), work_side)
    return make_subcheck("naturalness", float(engine(rgb)), limit)
