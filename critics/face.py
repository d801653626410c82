"""Face identity critic: do the people in the candidate look like their reference photos?

Pipeline (``FaceCritic.check``):

1. Each ``person`` subject's reference image is opened from the artifact store and its **largest**
   face embedded (cached by (engine, ImageRef.sha256): references are reused across iterations).
   A reference without a detectable face gives a failing Verdict with ``error`` set.
2. All faces in the candidate are detected and embedded (``critics.face_engines``; default engine
   YuNet + SFace, see that module for the engines and their measured thresholds).
3. References are matched to candidate faces by Hungarian assignment
   (``scipy.optimize.linear_sum_assignment`` on 1 - similarity), so two people are matched to the
   right faces regardless of order. Per identity: the matched box, the similarity and ``same``
   (similarity >= the engine's ``same_threshold``). An identity without a face is *missing*;
   candidate faces left unassigned are *extra* (e.g. the model added a person).
4. Copy-paste: when the prompt asks for a new pose (``NEW_POSE_WORDS``) and a matched face's
   similarity exceeds the engine's ``copy_threshold``, the face is flagged as a copy of the reference.

Score (documented, simple):

- per identity, ``similarity_to_score`` maps the engine's cosine piecewise-linearly so that the
  engine's ``same_threshold`` lands exactly on **0.5** (``score_floor`` -> 0, cos 1 -> 1); a missing
  identity scores 0; a copy-paste caps the identity at ``COPY_PASTE_CAP`` x threshold (fails at any
  threshold but ranks above a wrong face);
- the verdict score is the minimum over identities, times ``EXTRA_FACE_PENALTY`` (0.8) per extra face;
- passed = score >= threshold (plan.checks["face"].threshold, else INFO.threshold). With the
  default 0.5 a verdict passes exactly when every identity is "the same person" by the engine's own
  rule and there is at most a single extra face on a not-borderline match.

``check_consistency(images)`` is the cross-image mode (a storyboard): the same character in
several images, by the pairwise similarity of each image's largest face.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image

from agent.models import ImageRef, Plan, Subject, Verdict
from critics.base import CheckContext, CriticBase, CriticInfo
from agent.models.evidence import FaceEvidence
from critics.face_engines import (
    Face,
    FaceEngine,
    as_bgr,
    face_engine,
    largest_face,
)

INFO = CriticInfo(
    threshold=0.5,
    threshold_source=(
        "SFace cosine mapped piecewise-linearly so OpenCV's published same-person cosine 0.363 scores 0.5; on "
        "shared/data/faces same-person pairs score >= 0.649 and different people <= 0.366 (AUC 1.0); held-out "
        "set in critic-engines.md section 2: 99.95% pair accuracy at 0.363"
    ),
    description="each reference person's identity kept (face embeddings), no missing or extra faces",
    weight=3.0, measured=True, needs=("person",), on_by_default=True,
    strategies=("reanchor_identity", "new_seed"),
    evidence=FaceEvidence,
)
"""What the loop knows about this critic (see `critics.base.CriticInfo`)."""

NEW_POSE_WORDS: tuple[str, ...] = ("new pose", "different pose", "different angle", "new expression",
                                   "turn", "in profile", "profile view")
"""Prompt words that ask for a new pose/expression, which makes a pixel copy of the reference a failure.
Matched case-insensitively as whole words ("turn" also matches turns/turned/turning)."""
EXTRA_FACE_PENALTY = 0.8
"""The score is multiplied by this for each candidate face that matches no reference."""
COPY_PASTE_CAP = 0.8
"""A copy-pasted face's identity score is capped at this share of the threshold (so it fails)."""
MAX_CANDIDATE_FACES = 20
"""Only the largest faces are embedded (a crowd would cost 15+ ms per face); the rest count as extra."""
MAX_EVIDENCE_BOXES = 10
REFERENCE_CACHE_SIZE = 128

PixelBox = tuple[int, int, int, int]


def _r(x: float) -> float:
    return round(float(x), 3)


def similarity_to_score(similarity: float, same_threshold: float, floor: float = 0.0) -> float:
    """Map an engine cosine to [0, 1] so that ``same_threshold`` -> 0.5 exactly (floor -> 0, 1 -> 1)."""
    s = float(similarity)
    if s >= same_threshold:
        span = max(1e-9, 1.0 - same_threshold)
        return float(min(1.0, 0.5 + 0.5 * (s - same_threshold) / span))
    span = max(1e-9, same_threshold - floor)
    return float(max(0.0, 0.5 * (s - floor) / span))


def _score(engine: FaceEngine, similarity: float) -> float:
    return similarity_to_score(similarity, engine.same_threshold, getattr(engine, "score_floor", 0.0))


def asks_for_new_pose(prompt: str, words: Sequence[str] = NEW_POSE_WORDS) -> bool:
    """Whether the prompt asks for a new pose or expression (whole words, case-insensitive)."""
    for w in words:
        pat = r"\b" + r"\s+".join(map(re.escape, w.split())) + (r"(?:s|ed|ing)?\b" if w == "turn" else r"\b")
        if re.search(pat, prompt, flags=re.IGNORECASE):
            return True
    return False


def where(box: Sequence[float], size: tuple[int, int]) -> str:
    """Human words for where a pixel box is in an image of ``size``: 'top centre', 'bottom left'."""
    w, h = max(1, size[0]), max(1, size[1])
    cx, cy = (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h
    v = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    hz = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    return "centre" if (v, hz) == ("middle", "centre") else f"{v} {hz}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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


class _ReferenceError(Exception):
    """A reference that cannot be used (no face, unreadable); the message is the feedback line."""


@dataclass(frozen=True)
class _RefEmbedding:
    embedding: np.ndarray | None  # None: no face
    box: PixelBox | None
    faces: int


def _reference_number(subject: Subject, index: int, context: CheckContext) -> int:
    for i, ref in enumerate(context.references or []):
        if ref.sha256 == subject.reference.sha256:
            return i + 1
    return index + 1


# --------------------------------------------------------------------------- critic


EXTRA_FACE_CAP = 0.9
"""An extra face caps the score just below the threshold: the verdict fails, identities still rank."""


class FaceCritic(CriticBase):
    """Identity of each person subject vs its reference photo (YuNet + SFace by default)."""

    name = "face"
    info = INFO

    def __init__(self, engine: str | FaceEngine | None = None, *,
                 new_pose_words: Sequence[str] = NEW_POSE_WORDS,
                 extra_face_penalty: float = EXTRA_FACE_PENALTY,
                 cache_size: int = REFERENCE_CACHE_SIZE) -> None:
        # A name (or None: PIXLOOP_FACE_ENGINE / "sface") is resolved lazily to the shared engine.
        self._engine_arg = engine
        self._engine: FaceEngine | None = engine if engine is not None and not isinstance(engine, str) else None
        self.new_pose_words = tuple(new_pose_words)
        self.extra_face_penalty = extra_face_penalty
        self._cache: OrderedDict[tuple[str, str], _RefEmbedding] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ protocol

    @property
    def engine(self) -> FaceEngine:
        if self._engine is None:
            self._engine = face_engine(self._engine_arg if isinstance(self._engine_arg, str) else None)
        return self._engine

    def check(self, image: Image.Image, plan: Plan, context: CheckContext) -> Verdict:
        t0 = time.perf_counter()
        threshold = _threshold(plan)
        try:
            engine = self.engine
        except Exception as e:  # noqa: BLE001 - FaceEngineUnavailable, unknown name, a model that fails to load
            return self._failed(context, threshold, t0, "unavailable", f"{type(e).__name__}: {e}",
                                "face engine unavailable; identity could not be checked")
        try:
            return self._check(engine, image, plan, context, threshold, t0)
        except _ReferenceError as e:
            return self._failed(context, threshold, t0, engine.name, str(e), str(e))
        except Exception as e:  # noqa: BLE001 - a critic never crashes the loop
            return self._failed(context, threshold, t0, engine.name, f"{type(e).__name__}: {e}",
                                "face check failed; identity could not be checked")

    # ------------------------------------------------------------------ internals

    def _check(self, engine: FaceEngine, image: Image.Image, plan: Plan, context: CheckContext,
               threshold: float, t0: float) -> Verdict:
        persons = [(i, s) for i, s in enumerate(plan.subjects) if s.kind == "person"]
        size = (max(1, image.width), max(1, image.height))
        if not persons:
            return Verdict(critic=self.name, candidate_id=context.candidate_id, score=1.0, passed=True,
                           threshold=threshold,
                           evidence={"engine": engine.name, "identities": [], "extra_faces": [], "faces_found": 0,
                                     "copy_paste": []},
                           feedback="no person subjects in the plan; nothing to check",
                           seconds=round(time.perf_counter() - t0, 3))

        # 1. references (errors name every unusable reference)
        refs: list[tuple[Subject, int, _RefEmbedding]] = []
        problems = []
        for idx, subj in persons:
            number = _reference_number(subj, idx, context)
            try:
                ref = self._reference_embedding(engine, subj.reference, context)
            except _ReferenceError as e:
                problems.append(f"reference {number} (sha {subj.reference.sha256[:12]}, {subj.id}): {e}")
                continue
            if ref.embedding is None:
                problems.append(f"reference {number} (sha {subj.reference.sha256[:12]}) has no detectable "
                                f"face for {subj.id}")
            else:
                refs.append((subj, number, ref))
        if problems:
            raise _ReferenceError("; ".join(problems) + "; use a reference photo where the face is visible")

        # 2. candidate faces
        bgr = as_bgr(image)
        faces = engine.detect(bgr)
        embedded = faces[:MAX_CANDIDATE_FACES]
        embs = [engine.embed(bgr, f) for f in embedded]

        # 3. Hungarian assignment of references to faces
        sims = np.array([[engine.similarity(r.embedding, e) for e in embs] for _, _, r in refs],
                        dtype=np.float64).reshape(len(refs), len(embs))
        pairs: dict[int, int] = {}
        if embs:
            from scipy.optimize import linear_sum_assignment

            rows, cols = linear_sum_assignment(1.0 - sims)
            pairs = {int(r): int(c) for r, c in zip(rows, cols)}

        new_pose = asks_for_new_pose(plan.prompt, self.new_pose_words)
        matches: list[IdentityMatch] = []
        for k, (subj, number, ref) in enumerate(refs):
            m = IdentityMatch(subject=subj.id, reference=number, reference_sha=subj.reference.sha256[:12])
            if k in pairs:
                face = embedded[pairs[k]]
                m.box = face.int_box()
                m.similarity = float(sims[k, pairs[k]])
                m.same = m.similarity >= engine.same_threshold
                m.score = _score(engine, m.similarity)
                if new_pose and m.similarity > engine.copy_threshold:
                    m.copy_paste = True
                    m.score = min(m.score, COPY_PASTE_CAP * threshold)
            matches.append(m)
        used = set(pairs.values())
        extra: list[Face] = [f for j, f in enumerate(embedded) if j not in used] + list(faces[MAX_CANDIDATE_FACES:])

        score = min(m.score for m in matches) * (self.extra_face_penalty ** len(extra))
        if extra:
            # a person the brief did not ask for is a defect, however well the others match
            score = min(score, EXTRA_FACE_CAP * threshold)
        score = float(min(1.0, max(0.0, score)))
        passed = score >= threshold
        evidence = {
            "engine": engine.name,
            "same_threshold": engine.same_threshold,
            "identities": [
                {"subject": m.subject, "reference": m.reference, "reference_sha": m.reference_sha,
                 "box": list(m.box) if m.box else None,
                 "similarity": _r(m.similarity) if m.similarity is not None else None,
                 "same": m.same, "score": _r(m.score)}
                for m in matches
            ],
            "extra_faces": [list(f.int_box()) for f in extra[:MAX_EVIDENCE_BOXES]],
            "faces_found": len(faces),
            "copy_paste": [{"subject": m.subject, "similarity": _r(m.similarity or 0.0),
                            "copy_threshold": engine.copy_threshold} for m in matches if m.copy_paste],
            "new_pose_requested": new_pose,
        }
        return Verdict(
            critic=self.name,
            candidate_id=context.candidate_id,
            score=score,
            passed=passed,
            threshold=threshold,
            evidence=evidence,
            feedback=_feedback(engine, matches, extra, len(faces), size, score, threshold),
            seconds=round(time.perf_counter() - t0, 3),
        )

    def _reference_embedding(self, engine: FaceEngine, ref: ImageRef, context: CheckContext) -> _RefEmbedding:
        key = (engine.name, ref.sha256)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        if context.store is None:
            raise _ReferenceError("no artifact store to open the reference image")
        try:
            img = context.store.open(ref)
        except Exception as e:  # noqa: BLE001
            raise _ReferenceError(f"cannot open reference image {ref.path}: {type(e).__name__}: {e}") from e
        bgr = as_bgr(img)
        faces = engine.detect(bgr)
        face = largest_face(faces)
        entry = _RefEmbedding(
            embedding=engine.embed(bgr, face) if face is not None else None,
            box=face.int_box() if face is not None else None,
            faces=len(faces),
        )
        with self._lock:
            self._cache[key] = entry
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return entry

    def _failed(self, context: CheckContext, threshold: float, t0: float, engine: str, error: str,
                feedback: str) -> Verdict:
        return Verdict(
            critic=self.name,
            candidate_id=context.candidate_id,
            score=0.0,
            passed=False,
            threshold=threshold,
            evidence={"engine": engine, "identities": [], "extra_faces": [], "faces_found": 0, "copy_paste": []},
            feedback=feedback if feedback == error else f"{feedback} ({error[:200]})",
            seconds=round(time.perf_counter() - t0, 3),
            error=error[:500],
        )


def _threshold(plan: Plan) -> float:
    spec = plan.checks.get("face")
    return float(spec.threshold) if spec is not None else INFO.threshold


def _feedback(engine: FaceEngine, matches: list[IdentityMatch], extra: list[Face], n_faces: int,
              size: tuple[int, int], score: float, threshold: float) -> str:
    """One actionable line: the most serious problem first, then short notes."""
    t = engine.same_threshold
    parts: list[str] = []
    missing = [m for m in matches if m.missing]
    wrong = sorted((m for m in matches if not m.missing and not m.same), key=lambda m: m.similarity or 0.0)
    copies = [m for m in matches if m.copy_paste]
    if missing:
        matched = [m.subject for m in matches if not m.missing]
        shown = f"the image shows {_plural(n_faces, 'face')}" + (
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
        extra_note = (f"{_plural(len(extra), 'extra face')} at {locs} that match{'es' if len(extra) == 1 else ''} "
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


# --------------------------------------------------------------------------- cross-image mode


def check_consistency(images: Sequence[Any], engine: str | FaceEngine | None = None, *,
                      threshold: float | None = None, candidate_id: str = "storyboard") -> Verdict:
    """The same character across several images (a storyboard): largest face of each, pairwise similarity.

    Passes when the minimum pairwise similarity is at/above the engine's same_threshold (score 0.5 on the
    critic scale; ``threshold`` overrides it on the score scale). The evidence names each image's face,
    every pairwise similarity and the outlier (the image with the lowest mean similarity to the others).
    Images are PIL images or BGR arrays; an image without a face fails the check (score 0).
    """
    t0 = time.perf_counter()
    thr = INFO.threshold if threshold is None else float(threshold)
    try:
        eng = engine if engine is not None and not isinstance(engine, str) else face_engine(engine)
    except Exception as e:  # noqa: BLE001 - FaceEngineUnavailable, unknown name, a model that fails to load
        return _consistency_failed(candidate_id, thr, t0, "unavailable", f"{type(e).__name__}: {e}")
    if len(images) < 2:
        return _consistency_failed(candidate_id, thr, t0, eng.name,
                                   f"consistency needs at least 2 images, got {len(images)}")
    try:
        faces_ev: list[dict[str, Any]] = []
        embs: list[np.ndarray | None] = []
        for img in images:
            bgr = as_bgr(img)
            faces = eng.detect(bgr)
            face = largest_face(faces)
            faces_ev.append({"box": list(face.int_box()) if face else None, "faces_found": len(faces)})
            embs.append(eng.embed(bgr, face) if face is not None else None)
    except Exception as e:  # noqa: BLE001
        return _consistency_failed(candidate_id, thr, t0, eng.name, f"{type(e).__name__}: {e}")

    n = len(images)
    no_face = [i for i, e in enumerate(embs) if e is None]
    sim = np.full((n, n), np.nan)
    pairwise = []
    for i in range(n):
        for j in range(i + 1, n):
            if embs[i] is not None and embs[j] is not None:
                sim[i, j] = sim[j, i] = eng.similarity(embs[i], embs[j])
                pairwise.append([i + 1, j + 1, _r(sim[i, j])])
    evidence: dict[str, Any] = {"engine": eng.name, "same_threshold": eng.same_threshold, "images": n,
                                "faces": faces_ev, "pairwise": pairwise}
    if no_face:
        evidence.update(min_similarity=None, outlier=no_face[0] + 1)
        return Verdict(critic="face_consistency", candidate_id=candidate_id, score=0.0, passed=False, threshold=thr,
                       evidence=evidence,
                       feedback=f"no face found in image{'s' if len(no_face) > 1 else ''} "
                                f"{', '.join(str(i + 1) for i in no_face)}; draw the character's face visibly",
                       seconds=round(time.perf_counter() - t0, 3))
    iu = np.triu_indices(n, 1)
    flat = int(np.nanargmin(sim[iu]))
    lo_i, lo_j, lo = int(iu[0][flat]), int(iu[1][flat]), float(sim[iu][flat])
    means = np.array([np.nanmean(np.delete(sim[i], i)) for i in range(n)])
    score = _score(eng, lo)
    passed = score >= thr
    outlier = None
    if not passed:
        # Of the weakest pair, the image that is less like everyone else; with 2 images there is no telling.
        outlier = (lo_i if means[lo_i] <= means[lo_j] else lo_j) if n > 2 else None
    evidence.update(min_similarity=_r(lo), mean_similarity=[_r(m) for m in means],
                    outlier=(outlier + 1) if outlier is not None else None)
    if passed:
        feedback = (f"the same character in all {n} images (lowest similarity {lo:.2f} >= {eng.same_threshold:.2f}, "
                    f"images {lo_i + 1} and {lo_j + 1})")
    elif outlier is not None:
        feedback = (f"image {outlier + 1} does not show the same character as the others: mean similarity "
                    f"{means[outlier]:.2f}, lowest pair {lo_i + 1}-{lo_j + 1} at {lo:.2f} < {eng.same_threshold:.2f}; "
                    f"redraw image {outlier + 1}'s face to match the other images")
    else:
        feedback = (f"images {lo_i + 1} and {lo_j + 1} do not show the same character: similarity {lo:.2f} < "
                    f"{eng.same_threshold:.2f}; redraw one face to match the other")
    return Verdict(critic="face_consistency", candidate_id=candidate_id, score=score, passed=passed, threshold=thr,
                   evidence=evidence, feedback=feedback, seconds=round(time.perf_counter() - t0, 3))


def _consistency_failed(candidate_id: str, threshold: float, t0: float, engine: str, error: str) -> Verdict:
    return Verdict(critic="face_consistency", candidate_id=candidate_id, score=0.0, passed=False,
                   threshold=threshold, evidence={"engine": engine, "images": 0, "faces": [], "pairwise": []},
                   feedback=f"face consistency could not be checked: {error[:200]}",
                   seconds=round(time.perf_counter() - t0, 3), error=error[:500])


__all__ = ["FaceCritic", "IdentityMatch", "NEW_POSE_WORDS", "asks_for_new_pose", "check_consistency",
           "similarity_to_score", "where"]
