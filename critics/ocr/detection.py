"""rapidocr's models driven stage by stage: text detection at a scale (and on a region) that we choose,
then orientation and recognition of every detected line, cropped from the full-resolution image.

Why not ``RapidOCR()(image)``: its detector input size follows the image (``limit_type: min``,
``limit_side_len: 736``: an image whose short side is at least 736 px is detected at its native
size). The DB detector finds text whose glyphs are up to roughly 110 px tall *in its input*; larger
glyphs come apart into pieces ("HELLO" on a 1024 px poster is read as "HELLC" + ".O") and a word crop,
upscaled to 736 px, is not found at all. Here each pass names its scale, so the same text is detected
at the same size in the detector's input whatever the image size, and one call can look again at
another scale (see ``critics.ocr.multiscale``).

Each detector input is padded with the region's border colour (text touching the image edge is then
found) and rounded up to a multiple of 32 (what the network needs) without distorting it. Every call
builds its own pre- and post-processing objects and only shares the onnxruntime sessions, which are
thread-safe, so concurrent checks do not interfere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from critics.ocr.reading import OcrLine

DET_MULTIPLE = 32
"""The detector's input sides must be multiples of this."""
DET_PAD = 16
"""Pixels of border colour added around every detector input (text touching the edge is found)."""
REC_HEIGHT = 48
"""The recogniser's input height (rapidocr ``Rec.rec_img_shape``); taller crops are area-averaged down to twice
this first, so glyphs far larger than the recogniser's input are not aliased by its linear resize."""


@dataclass(frozen=True)
class DetParams:
    """The DB detector's post-processing (rapidocr ``Det.*``); bench/real_text.py --sweep measures each choice."""

    thresh: float = 0.3
    """Pixel probability above which a pixel is text (rapidocr default 0.3)."""
    box_thresh: float = 0.5
    """Mean probability inside a box below which the box is dropped (rapidocr default 0.5)."""
    unclip_ratio: float = 1.6
    """How far a box is grown around the shrunk text kernel (rapidocr default 1.6)."""
    max_candidates: int = 1000
    use_dilation: bool = True
    text_score: float = 0.5
    """Recognised lines below this confidence are dropped (rapidocr ``Global.text_score``)."""


Region = tuple[int, int, int, int]
"""x0, y0, x1, y1 in working-image pixels."""


def _models(engine: Any) -> tuple[Any, Any, Any]:
    """The detector, classifier and recogniser of a RapidOCR instance, loaded once (its own lazy loaders)."""
    return engine._load_det_model(), engine._load_cls_model(), engine._load_rec_model()


def border_colour(bgr: np.ndarray) -> tuple[int, int, int]:
    """Median colour of the outermost pixels: the plain colour a pad should have."""
    edge = np.concatenate([bgr[0], bgr[-1], bgr[:, 0], bgr[:, -1]])
    med = np.median(edge, axis=0)
    return int(med[0]), int(med[1]), int(med[2])


def detector_input(bgr: np.ndarray, region: Region, scale: float) -> tuple[np.ndarray, float, float]:
    """The region resized by `scale` (area-averaged down, linear up), padded by DET_PAD and up to multiples of
    DET_MULTIPLE with its border colour; returns it with the exact x and y factors used."""
    x0, y0, x1, y1 = region
    crop = bgr[y0:y1, x0:x1]
    h, w = crop.shape[:2]
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(crop, (nw, nh), interpolation=interp) if (nw, nh) != (w, h) else crop
    pw = -(-(nw + 2 * DET_PAD) // DET_MULTIPLE) * DET_MULTIPLE
    ph = -(-(nh + 2 * DET_PAD) // DET_MULTIPLE) * DET_MULTIPLE
    out = np.empty((ph, pw, 3), np.uint8)
    out[:] = border_colour(crop)
    out[DET_PAD:DET_PAD + nh, DET_PAD:DET_PAD + nw] = small
    return out, nw / w, nh / h


def detect(engine: Any, bgr: np.ndarray, region: Region, scale: float, params: DetParams) -> list[np.ndarray]:
    """Text quads (4x2 float, working-image pixels) found in `region` of `bgr` detected at `scale`."""
    from rapidocr.ch_ppocr_det.utils import DBPostProcess, DetPreProcess

    det, _, _ = _models(engine)
    img, fx, fy = detector_input(bgr, region, scale)
    pre = DetPreProcess(10 ** 9, "max", det.mean, det.std)  # no resize: the input is already sized
    x = pre(img)
    if x is None:
        return []
    preds = det.session(x)
    post = DBPostProcess(thresh=params.thresh, box_thresh=params.box_thresh, max_candidates=params.max_candidates,
                         unclip_ratio=params.unclip_ratio, use_dilation=params.use_dilation, score_mode="fast")
    boxes, _ = post(preds, img.shape[:2])
    quads = []
    for box in boxes:
        q = np.asarray(box, np.float64).reshape(4, 2)
        q[:, 0] = (q[:, 0] - DET_PAD) / fx + region[0]
        q[:, 1] = (q[:, 1] - DET_PAD) / fy + region[1]
        q[:, 0] = q[:, 0].clip(region[0], region[2])
        q[:, 1] = q[:, 1].clip(region[1], region[3])
        if np.ptp(q[:, 0]) >= 2 and np.ptp(q[:, 1]) >= 2:
            quads.append(q)
    return quads


def _crop(bgr: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The quad's content as an upright line image (rapidocr's perspective crop), at most 2 x REC_HEIGHT tall."""
    from rapidocr.utils.process_img import get_rotate_crop_image

    img = get_rotate_crop_image(bgr, quad.astype(np.float32))
    h, w = img.shape[:2]
    if h > 2 * REC_HEIGHT:
        f = 2 * REC_HEIGHT / h
        img = cv2.resize(img, (max(1, round(w * f)), 2 * REC_HEIGHT), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def recognise(engine: Any, bgr: np.ndarray, quads: Sequence[np.ndarray], params: DetParams,
              to_original: tuple[float, float], size: tuple[int, int]) -> list[OcrLine]:
    """Read every quad (orientation classifier, then recogniser); lines in the original image's pixels."""
    if not quads:
        return []
    from rapidocr.ch_ppocr_rec.typings import TextRecInput

    _, cls, rec = _models(engine)
    crops = [_crop(bgr, q) for q in quads]
    crops = cls(crops).img_list
    out = rec(TextRecInput(img=crops, return_word_box=False))
    sx, sy = to_original
    lines = []
    for quad, text, score in zip(quads, out.txts, out.scores):
        text = str(text)
        if not text.strip() or float(score) < params.text_score:
            continue
        q = quad * (sx, sy)
        q[:, 0] = q[:, 0].clip(0, size[0])
        q[:, 1] = q[:, 1].clip(0, size[1])
        pts = tuple((round(float(x), 1), round(float(y), 1)) for x, y in q)
        lines.append(OcrLine(text=text, score=float(score), box=pts))  # type: ignore[arg-type]
    return lines


__all__ = ["DET_MULTIPLE", "DET_PAD", "DetParams", "REC_HEIGHT", "Region", "border_colour", "detect",
           "detector_input", "recognise"]
