"""The optional dlib face engine: HOG detector, 5-point landmarks and the ResNet descriptor."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from critics.face.engines.base import (
    Face,
    FaceEngineUnavailable,
    cosine,
    downscale_for_detection,
    filter_faces,
    model_file,
    unit,
)

DLIB_SHAPE_FILE = "shape_predictor_5_face_landmarks.dat"
DLIB_RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def dlib_available() -> bool:
    return (importlib.util.find_spec("dlib") is not None
            and importlib.util.find_spec("face_recognition_models") is not None)


def dlib_models_dir() -> Path:
    """face_recognition_models' model folder, located without importing its __init__ (pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceEngineUnavailable(
            "dlib engine needs face_recognition_models: pip install dlib-bin face_recognition_models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class DlibEngine:
    """dlib HOG detector + 5-point landmarks + ResNet descriptor (the face_recognition models).

    Descriptors are L2-normalised so similarity is a cosine like the other engines. Raw dlib
    descriptors have norm 1.31-1.53 (typically ~1.41), so dlib's own rule "same person when the raw
    L2 distance < 0.6" is cos ~ 1 - (0.6 / 1.41)**2 / 2 = 0.91 on unit descriptors. Everything
    lives in a narrow cosine band (strangers average 0.82), hence ``score_floor``.
    """

    name = "dlib"
    same_threshold = 0.91
    """dlib's raw distance 0.6 as a cosine; shared/data/faces: same-person min 0.932, strangers max 0.888."""
    copy_threshold = 0.98
    """shared/data/faces: another photo of the same person <= 0.974; the reference pasted back >= 0.975 (JPEG
    q80, 37 px face), >= 0.985 as PNG. dlib separates copies from new photos much less than SFace."""
    score_floor = 0.80
    """Cosine mapped to score 0 (strangers average 0.82, max 0.888 on shared/data/faces)."""

    def __init__(self, upsample_fallback: bool = True) -> None:
        try:
            import dlib  # noqa: PLC0415 - optional dependency
        except ImportError as e:
            raise FaceEngineUnavailable(
                "dlib engine needs dlib: pip install dlib-bin face_recognition_models") from e
        models = dlib_models_dir()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._sp = dlib.shape_predictor(model_file(models, DLIB_SHAPE_FILE, "reinstall face_recognition_models"))
        self._rec = dlib.face_recognition_model_v1(
            model_file(models, DLIB_RESNET_FILE, "reinstall face_recognition_models"))
        self.upsample_fallback = upsample_fallback
        self._lock = threading.Lock()

    def detect(self, bgr: np.ndarray) -> list[Face]:
        if bgr.size == 0 or min(bgr.shape[:2]) < 8:
            return []
        small, scale = downscale_for_detection(bgr)
        rgb = np.ascontiguousarray(small[:, :, ::-1])
        with self._lock:
            rects, scores, _ = self._detector.run(rgb, 0, 0.0)
            if not rects and self.upsample_fallback and max(rgb.shape[:2]) <= 1600:
                rects, scores, _ = self._detector.run(rgb, 1, 0.0)  # faces < ~80 px need one upsample
            shapes = [self._sp(rgb, r) for r in rects]
        h, w = bgr.shape[:2]
        inv = 1.0 / scale
        faces = []
        for r, s, shp in zip(rects, scores, shapes):
            box = (max(0.0, r.left() * inv), max(0.0, r.top() * inv),
                   min(float(w), (r.right() + 1) * inv), min(float(h), (r.bottom() + 1) * inv))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            pts = tuple((float(shp.part(i).x * inv), float(shp.part(i).y * inv)) for i in range(5))
            # HOG gives an SVM margin (0 = the detector's own cut); squash it into (0, 1).
            faces.append(Face(box=box, score=float(1.0 / (1.0 + np.exp(-2.0 * s))), landmarks5=pts))
        return filter_faces(faces, bgr.shape)

    def embed(self, bgr: np.ndarray, face: Face) -> np.ndarray:
        dlib = self._dlib
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        x0, y0, x1, y1 = face.int_box()
        rect = dlib.rectangle(x0, y0, max(x0, x1 - 1), max(y0, y1 - 1))
        parts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in face.landmarks5])
        with self._lock:
            desc = self._rec.compute_face_descriptor(rgb, dlib.full_object_detection(rect, parts))
        return unit(np.asarray(desc))

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        return cosine(a, b)
