"""ArcFace / InsightFace recognition ONNX files: 5-point alignment to the ArcFace template, preprocessing
and the onnxruntime engine (detection by YuNet)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from agent.runtime.threads import job_threads
from critics.face.engines.base import Face, FaceEngineUnavailable, cosine, unit
from critics.face.engines.yunet import YuNetDetector, yunet_detector

ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
"""The standard ArcFace/InsightFace 5-point template for 112x112 crops, in YuNet's landmark order:
eye on the image's left, eye on the image's right, nose tip, mouth corner left, mouth corner right."""


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity (rotation, uniform scale, shift) mapping src to dst (Umeyama)."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rot = u @ sign @ vt
    var_s = (s ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(sig) @ sign) / var_s) if var_s > 0 else 1.0
    shift = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, shift[:, None]]).astype(np.float32)


def align_face(bgr: np.ndarray, landmarks5: Sequence[Sequence[float]], size: int = 112) -> np.ndarray:
    """The face warped so its 5 landmarks (YuNet order) land on the ArcFace template, as size x size BGR."""
    template = ARCFACE_TEMPLATE_112 * (size / 112.0)
    m = similarity_transform(np.asarray(landmarks5, dtype=np.float32), template)
    return cv2.warpAffine(bgr, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def arcface_blob(aligned_bgr: np.ndarray, mean: float = 127.5, std: float = 127.5,
                 swap_rb: bool = True, layout: str = "NCHW") -> np.ndarray:
    """InsightFace preprocessing: (pixel - mean) / std, RGB by default, as a 1-image float32 batch."""
    img = aligned_bgr[:, :, ::-1] if swap_rb else aligned_bgr
    x = (img.astype(np.float32) - mean) / std
    x = x[None]
    if layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


class OnnxArcFaceEngine:
    """An ArcFace/InsightFace recognition ONNX file given by path: YuNet detect, 5-point align, onnxruntime.

    The defaults match InsightFace's w600k/glint models ((x - 127.5) / 127.5, RGB, NCHW 112x112);
    pass ``mean=0, std=1`` for models that normalise inside the graph. ``same_threshold`` 0.28 is
    InsightFace's "likely the same person" cosine; calibrate it for the model you use.
    """

    def __init__(self, path: str | os.PathLike, same_threshold: float = 0.28, copy_threshold: float = 0.90,
                 mean: float = 127.5, std: float = 127.5, swap_rb: bool = True,
                 detector: YuNetDetector | None = None) -> None:
        self.path = str(path)
        if not Path(self.path).is_file():
            raise FaceEngineUnavailable(f"ArcFace ONNX file not found: {self.path}")
        import onnxruntime as ort  # noqa: PLC0415

        self.name = f"arcface:{self.path}"
        self.same_threshold = same_threshold
        self.copy_threshold = copy_threshold
        self.score_floor = 0.0
        self.mean, self.std, self.swap_rb = mean, std, swap_rb
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if (threads := job_threads()) is not None:  # a batch job's share of the node's cores
            opts.intra_op_num_threads = threads
        self._session = ort.InferenceSession(self.path, sess_options=opts, providers=["CPUExecutionProvider"])
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        shape = list(inp.shape)
        if len(shape) != 4:
            raise FaceEngineUnavailable(f"{self.path}: expected a 4-d image input, got shape {shape}")
        self.layout = "NHWC" if shape[-1] == 3 and shape[1] != 3 else "NCHW"
        side = shape[2] if self.layout == "NCHW" else shape[1]
        self.size = side if isinstance(side, int) and side > 0 else 112
        self.detector = detector or yunet_detector()

    def detect(self, bgr: np.ndarray) -> list[Face]:
        return self.detector.detect(bgr)

    def embed(self, bgr: np.ndarray, face: Face) -> np.ndarray:
        aligned = align_face(bgr, face.landmarks5, self.size)
        blob = arcface_blob(aligned, self.mean, self.std, self.swap_rb, self.layout)
        out = self._session.run(None, {self._input: blob})[0]  # onnxruntime sessions are thread-safe
        return unit(out[0])

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        return cosine(a, b)
