"""Feedback wording for the face critic: where a face is, and the one actionable line of a verdict."""

from __future__ import annotations

from collections.abc import Sequence

from critics.face.engines import Face, FaceEngine
from critics.face.scoring import IdentityMatch


def where(box: Sequence[float], size: tuple[int, int]) -> str:
    """Human words for where a pixel box is in an image of ``size``: 'top centre', 'bottom left'."""
    w, h = max(1, size[0]), max(1, size[1])
    cx, cy = (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h
    v = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    hz = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    return "centre" if (v, hz) == ("middle", "centre") else f"{v} {hz}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def identity_feedback(engine: FaceEngine, matches: list[IdentityMatch], extra: list[Face], n_faces: int,
                      size: tuple[int, int], score: float, threshold: float) -> str:
    """One actionable line: the most serious problem first, then short notes."""
    t = engine.same_threshold
    parts: list[str] = []
    missing = [m for m in matches if m.missing]
    wrong = sorted((m for m in matches if not m.missing and not m.same), key=lambda m: m.similarity or 0.0)
    copies = [m for m in matches if m.copy_paste]
    if missing:
        matched = [m.subject for m in matches if not m.missing]
        shown = f"the image shows {plural(n_faces, 'face')}" + (
            f", matched to {', '.join(matched)}" if matched else "")
        parts.append(f"no face found for {', '.join(m.label for m in missing)}; {shown}; "
                     f"add {'this person' if len(missing) == 1 else 'these people'} with a clearly visible face")
    for m in wrong:
        parts.append(f"{m.label} does not look like the reference: similarity {m.similarity:.2f} < {t:.2f} "
                     f"at {where(m.box, size)}; keep the reference face's identity")  # type: ignore[arg-type]
    for m in copies:
        parts.append(f"{m.label} at {where(m.box, size)} is a copy of the reference photo "  # type: ignore[arg-type]
                     f"(similarity {m.similarity:.2f} > {engine.copy_threshold:.2f}) but the prompt asks for a "
                     f"new pose; redraw the face in the requested pose, keeping the identity")
    extra_note = ""
    if extra:
        locs = ", ".join(where(f.box, size) for f in extra[:3]) + (f" (+{len(extra) - 3} more)" if len(extra) > 3 else "")
        extra_note = (f"{plural(len(extra), 'extra face')} at {locs} that match{'es' if len(extra) == 1 else ''} "
                      f"no reference; remove {'it' if len(extra) == 1 else 'them'} unless the prompt asks for more people")
    if parts:
        return "; ".join(parts + ([extra_note] if extra_note else []))
    low = min(matches, key=lambda m: m.similarity or 0.0)
    if score >= threshold:
        head = (f"{'the person matches its reference' if len(matches) == 1 else f'all {len(matches)} people match their references'} "
                f"(lowest similarity {low.similarity:.2f} >= {t:.2f} for {low.subject})")
        return "; ".join([head, extra_note] if extra_note else [head])
    if extra_note and low.score >= threshold:
        return extra_note  # the identities pass; the extra faces' penalty failed the verdict
    note = f"; {extra_note}" if extra_note else ""
    return (f"{low.label} is only a weak match: similarity {low.similarity:.2f} gives score {low.score:.2f} < "
            f"threshold {threshold:.2f} at {where(low.box, size)}; keep the reference face's identity more closely"  # type: ignore[arg-type]
            + note)
