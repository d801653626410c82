"""Engine selection: the process-wide engine for a name (``sface``, ``dlib``, ``arcface:/path.onnx``),
created on first use."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from critics.face.engines.arcface import OnnxArcFaceEngine
from critics.face.engines.base import FaceEngine
from critics.face.engines.dlib_engine import DlibEngine
from critics.face.engines.sface import SFaceEngine

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
