"""Preparation of the images compared: work-size copies (blurred RGB for colour differences, grey for
SSIM), with the original and the mask cached per process."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import cv2
import numpy as np
from PIL import Image

from agent.models import ImageRef
from critics.preservation.pixels import mask_edit_area, resize, rgb_array, to_grey, work_size

MAX_SIDE = 1024
"""Comparisons run on copies whose long side is at most this (cost: ~0.1 s per 1024x1024 pair)."""
DIFF_BLUR = 2.0
"""Colour differences are taken between copies blurred with this sigma (work pixels): JPEG q30-q50 and
noise of sigma 12 then differ by <= 0.008 on average and by > 16/255 nowhere (skimage photos), while
the raw difference of a JPEG q50 re-encode is already 0.014-0.020 (~4-5/255)."""


_CACHE: OrderedDict[tuple, tuple] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 4


def cached(store: Any, ref: ImageRef, kind: str, size: tuple[int, int] | None, build) -> Any:
    """Per-process LRU of prepared originals/masks: every candidate of a run compares with the same
    original, so it is decoded and prepared once. Keyed by file path, hash, mtime and size, so a
    changed or deleted file is never served from the cache (a deleted one raises as before)."""
    path = store.path(ref)
    st = path.stat()
    key = (kind, str(path), ref.sha256, st.st_mtime_ns, st.st_size, size)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = build(store.open(ref))
    with _CACHE_LOCK:
        _CACHE[key] = value
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


def prepare(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(blurred RGB for colour differences, float32 grey for SSIM) of a work-size RGB array."""
    return cv2.GaussianBlur(rgb, (0, 0), DIFF_BLUR), to_grey(rgb)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)  # cached arrays are shared between threads and calls
    return a


def prepare_original(im: Image.Image) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """The original's size and its prepared, read-only work-size copies (for ``cached``)."""
    blurred, grey = prepare(np.ascontiguousarray(resize(rgb_array(im), work_size(*im.size, MAX_SIDE))))
    return im.size, _readonly(blurred), _readonly(grey)


def prepare_mask(im: Image.Image) -> tuple[tuple[int, int], np.ndarray, str]:
    """The mask's size, its read-only edit area and the convention used (for ``cached``)."""
    edit, convention = mask_edit_area(im)
    return im.size, _readonly(np.ascontiguousarray(edit)), convention
