"""Whether a reference image shows a person (the face critic then checks their identity) or a product."""

from __future__ import annotations

from typing import Any

from agent.models import ImageRef


def looks_like_person(store: Any, ref: ImageRef) -> bool:
    import cv2
    import numpy as np

    img = store.open(ref).convert("L")
    img.thumbnail((640, 640))
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")  # type: ignore[attr-defined]
    faces = cascade.detectMultiScale(np.asarray(img), scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    return len(faces) > 0


__all__ = ["looks_like_person"]
