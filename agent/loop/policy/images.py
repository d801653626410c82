"""The image side of the content policy: NudeNet's detector, whose ONNX model ships in its wheel.

`nudenet` 3.4.2 (PyPI) ships `320n.onnx` (12 MB, a YOLOv8-n detector of 18 body-part labels, 320 px
input) and runs on onnxruntime, which pixloop already uses. It is an optional extra
(`pip install 'pixloop[policy-images]'`): its wheel's metadata says MIT but the licence file it ships is the
AGPL-3.0, so it is not a core dependency of an Apache-2.0 package.

`ImageScreen.check(image)` refuses an image when a label of `REFUSE_LABELS` (exposed genitalia, breasts,
buttocks, anus) scores at or above `threshold`; the rule it names is `image.<label>`, e.g.
`image.female_breast_exposed`, category sexual_explicit. Covered parts, faces, feet and bellies are never a
refusal. The detector cannot tell age, so sexual content involving minors is only checked on the text side.

Without nudenet the screen is *unavailable*: `check` returns an allowed decision with `verified=False`
("policy unverified: image screen unavailable ..."), never a silent pass. The model is run here directly
(letterbox to a square, resize to 320, RGB in [0, 1]; NudeNet's own preprocessing) so the input channel
order is certain and the post-processing is vectorised.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from agent.loop.policy.rules import PolicyDecision
from agent.runtime.threads import job_threads

LABELS: tuple[str, ...] = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)
"""NudeNet 3.4's label order (its `nudenet.nudenet.__labels`; checked against the package at load time)."""

REFUSE_LABELS: frozenset[str] = frozenset({"FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED",
                                           "FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED", "ANUS_EXPOSED"})
DEFAULT_THRESHOLD = 0.5
"""Score at which an exposed-part detection refuses. NudeNet keeps detections from 0.2; on the benign images
measured by bench/policy.py (24 Kodak photos, 16 face photos, 5 compose posters) the highest exposed-part score
was 0.347 (kodim23, two parrots, as MALE_GENITALIA_EXPOSED), so 0.5 leaves a margin; none was refused.
The true-positive rate at this threshold is not measured here: no NSFW data may be fetched on these machines."""

MODEL_FILE = "320n.onnx"


def nudenet_model_path() -> Path | None:
    """The ONNX model shipped in the nudenet wheel, or None if the package is not installed."""
    try:
        import nudenet
    except ImportError:
        return None
    path = Path(nudenet.__file__).with_name(MODEL_FILE)
    return path if path.is_file() else None


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[int, int, int, int]  # x, y, w, h in the image's pixels


class ImageScreen:
    """Screens images for exposed nudity with NudeNet's detector; thread-safe, the model loads on first use.

    `threads=1` by default: on 2 cores one onnxruntime thread ran a 1024 px image in 24 ms, two in 48 ms."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, resolution: int = 320, model_path: str | Path | None = None,
                 threads: int | None = 1):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.resolution = resolution
        self.model_path = Path(model_path) if model_path else nudenet_model_path()
        self.threads = threads
        self._session: Any = None
        self._input = ""
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.model_path is not None and self.model_path.is_file()

    def why_unavailable(self) -> str:
        return ("image screen unavailable: the nudenet package is not installed "
                "(pip install 'pixloop[policy-images]'); images were not screened")

    def warm(self) -> None:
        """Load the detector now (a no-op when it is not installed or already loaded)."""
        if self.available:
            self._load()

    def _load(self) -> Any:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                threads = self.threads or job_threads()  # a batch job's share of the node's cores
                if threads:
                    opts.intra_op_num_threads = threads
                self._session = ort.InferenceSession(str(self.model_path), sess_options=opts,
                                                     providers=["CPUExecutionProvider"])
                self._input = self._session.get_inputs()[0].name
                _check_labels()
            return self._session

    def _blob(self, image: Image.Image) -> tuple[np.ndarray, float]:
        """NudeNet's input: pad right/bottom to a square with black, resize, RGB / 255, NCHW; and the scale."""
        rgb = image.convert("RGB")
        side = max(rgb.size)
        square = Image.new("RGB", (side, side))
        square.paste(rgb, (0, 0))
        small = square.resize((self.resolution, self.resolution), Image.Resampling.BILINEAR)
        arr = np.asarray(small, dtype=np.float32) / 255.0
        return arr.transpose(2, 0, 1)[None], side / self.resolution

    def detect(self, image: Image.Image) -> list[Detection]:
        """The best detection of each label scoring at least 0.2 (NudeNet's own floor), highest first."""
        session = self._load()
        blob, scale = self._blob(image)
        out = np.squeeze(session.run(None, {self._input: blob})[0]).T  # (anchors, 4 + labels)
        scores = out[:, 4:]
        found = []
        for j, label in enumerate(LABELS[: scores.shape[1]]):
            i = int(np.argmax(scores[:, j]))
            s = float(scores[i, j])
            if s < 0.2:
                continue
            cx, cy, w, h = (float(v) * scale for v in out[i, :4])
            x, y = max(0, int(cx - w / 2)), max(0, int(cy - h / 2))
            found.append(Detection(label, s, (x, y, int(w), int(h))))
        return sorted(found, key=lambda d: -d.score)

    def check(self, image: Image.Image) -> PolicyDecision:
        """Refused naming `image.<label>` when an exposed-part label reaches the threshold; unverified (allowed,
        verified=False) when the detector is not installed."""
        if not self.available:
            return PolicyDecision.unverified("image", self.why_unavailable(), "image_screen")
        t0 = time.perf_counter()
        detections = self.detect(image)
        seconds = time.perf_counter() - t0
        details = {"detections": [{"label": d.label, "score": round(d.score, 3), "box": list(d.box)}
                                  for d in detections], "seconds": round(seconds, 4), "threshold": self.threshold}
        hits = [d for d in detections if d.label in REFUSE_LABELS and d.score >= self.threshold]
        if not hits:
            return PolicyDecision.ok("image", source="image_screen", details=details)
        top = hits[0]
        rule = f"image.{top.label.lower()}"
        return PolicyDecision(allowed=False, where="image", rule_id=rule, category="sexual_explicit",
                              severity="refuse", matched=f"{top.label} {top.score:.2f} at {list(top.box)}",
                              message=f"refused by rule {rule} (sexual_explicit): the nudity detector found "
                                      f"{top.label.lower().replace('_', ' ')} (score {top.score:.2f} >= "
                                      f"{self.threshold:.2f}) at x,y,w,h={list(top.box)}",
                              source="image_screen", details=details)


def _check_labels() -> None:
    """Fail loudly if an installed nudenet orders its labels differently from LABELS."""
    try:
        import nudenet.nudenet as nn
    except ImportError:  # a model file given without the package
        return
    theirs = getattr(nn, "__labels", None)
    if theirs is not None and tuple(theirs) != LABELS:
        raise RuntimeError("nudenet's label list differs from pixloop's LABELS: update agent/loop/policy/images.py")


__all__ = ["DEFAULT_THRESHOLD", "Detection", "ImageScreen", "LABELS", "REFUSE_LABELS", "nudenet_model_path"]
