"""Identity scores: the engine cosine mapped to [0, 1] (its same-person threshold at 0.5) and the
per-identity result ``IdentityMatch``."""

from __future__ import annotations

from dataclasses import dataclass

from critics.face.engines import FaceEngine

PixelBox = tuple[int, int, int, int]


def round3(x: float) -> float:
    """x rounded to 3 decimals, for evidence."""
    return round(float(x), 3)


def similarity_to_score(similarity: float, same_threshold: float, floor: float = 0.0) -> float:
    """Map an engine cosine to [0, 1] so that ``same_threshold`` -> 0.5 exactly (floor -> 0, 1 -> 1)."""
    s = float(similarity)
    if s >= same_threshold:
        span = max(1e-9, 1.0 - same_threshold)
        return float(min(1.0, 0.5 + 0.5 * (s - same_threshold) / span))
    span = max(1e-9, same_threshold - floor)
    return float(max(0.0, 0.5 * (s - floor) / span))


def engine_score(engine: FaceEngine, similarity: float) -> float:
    """``similarity_to_score`` on the engine's own scale (its same_threshold and score_floor)."""
    return similarity_to_score(similarity, engine.same_threshold, getattr(engine, "score_floor", 0.0))


# --------------------------------------------------------------------------- results


@dataclass
class IdentityMatch:
    """One person subject: which candidate face it was matched to and how similar it is."""

    subject: str
    reference: int  # 1-based reference number for messages
    reference_sha: str
    box: PixelBox | None = None
    similarity: float | None = None
    same: bool = False
    copy_paste: bool = False
    score: float = 0.0

    @property
    def missing(self) -> bool:
        return self.box is None

    @property
    def label(self) -> str:
        return f"{self.subject} (reference {self.reference})"
