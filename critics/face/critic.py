"""``FaceCritic``: each person subject's reference face matched to the candidate's faces (see the package
docstring for the pipeline and the score)."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from agent.models import ImageRef, Plan, Subject, Verdict
from agent.models.evidence import FaceEvidence
from critics.base import CheckContext, CriticBase, CriticInfo
from critics.face.engines import Face, FaceEngine, as_bgr, face_engine, largest_face
from critics.face.feedback import identity_feedback
from critics.face.scoring import IdentityMatch, PixelBox, engine_score, round3

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


def asks_for_new_pose(prompt: str, words: Sequence[str] = NEW_POSE_WORDS) -> bool:
    """Whether the prompt asks for a new pose or expression (whole words, case-insensitive)."""
    for w in words:
        pat = r"\b" + r"\s+".join(map(re.escape, w.split())) + (r"(?:s|ed|ing)?\b" if w == "turn" else r"\b")
        if re.search(pat, prompt, flags=re.IGNORECASE):
            return True
    return False


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
            unavailable = self._failed(context, threshold, t0, "unavailable", f"{type(e).__name__}: {e}",
                                       "face engine unavailable; identity could not be checked")
            return unavailable.model_copy(update={"status": "unavailable"})
        try:
            return self._check(engine, image, plan, context, threshold, t0)
        except _ReferenceError as e:
            return self._failed(context, threshold, t0, engine.name, str(e), str(e))
        except Exception as e:  # noqa: BLE001 - a critic never crashes the loop
            return self._failed(context, threshold, t0, engine.name, f"{type(e).__name__}: {e}",
                                "face check failed; identity could not be checked")

    def shows_a_person(self, store: Any, ref: ImageRef) -> bool:
        """Whether a reference image has a face this critic can match: the one test that makes a reference a
        person (the planner asks it too, so a reference it calls a person is never unpassable here). False when
        the face engine is unavailable (the identity then cannot be checked either)."""
        try:
            return self._reference_embedding(self.engine, ref, CheckContext(store=store)).embedding is not None
        except Exception:  # noqa: BLE001 - no engine, an unreadable reference: not a checkable person
            return False

    def find_faces(self, image: Image.Image) -> list[tuple[int, int, int, int]]:
        """Boxes (x0, y0, x1, y1, pixels) of the faces in an image, largest first, with the detector every
        identity check uses (an edit's planner finds the people whose identity the edit must keep with it).
        Empty when the face engine is unavailable."""
        try:
            engine = self.engine
        except Exception:  # noqa: BLE001 - no engine: no faces can be checked either
            return []
        faces = sorted(engine.detect(as_bgr(image)), key=lambda f: f.area, reverse=True)
        w, h = image.size
        return [(max(0, x0), max(0, y0), min(w, x1), min(h, y1)) for x0, y0, x1, y1 in (f.int_box() for f in faces)
                if x1 > x0 and y1 > y0]

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
        refs: list[tuple[Subject, int, np.ndarray]] = []  # (subject, reference number, face embedding)
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
                refs.append((subj, number, ref.embedding))
        if problems:
            raise _ReferenceError("; ".join(problems) + "; use a reference photo where the face is visible")

        # 2. candidate faces
        bgr = as_bgr(image)
        faces = engine.detect(bgr)
        embedded = faces[:MAX_CANDIDATE_FACES]
        embs = [engine.embed(bgr, f) for f in embedded]

        # 3. Hungarian assignment of references to faces
        sims = np.array([[engine.similarity(r, e) for e in embs] for _, _, r in refs],
                        dtype=np.float64).reshape(len(refs), len(embs))
        pairs: dict[int, int] = {}
        if embs:
            from scipy.optimize import linear_sum_assignment

            rows, cols = linear_sum_assignment(1.0 - sims)
            pairs = {int(r): int(c) for r, c in zip(rows, cols)}

        # An edit keeps the source's faces by design: a pixel-identical face there is the goal, not a copy-paste.
        new_pose = plan.edit is None and asks_for_new_pose(plan.prompt, self.new_pose_words)
        matches: list[IdentityMatch] = []
        for k, (subj, number, _emb) in enumerate(refs):
            m = IdentityMatch(subject=subj.id, reference=number, reference_sha=subj.reference.sha256[:12])
            if k in pairs:
                face = embedded[pairs[k]]
                m.box = face.int_box()
                m.similarity = float(sims[k, pairs[k]])
                m.same = m.similarity >= engine.same_threshold
                m.score = engine_score(engine, m.similarity)
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
                 "similarity": round3(m.similarity) if m.similarity is not None else None,
                 "same": m.same, "score": round3(m.score)}
                for m in matches
            ],
            "extra_faces": [list(f.int_box()) for f in extra[:MAX_EVIDENCE_BOXES]],
            "faces_found": len(faces),
            "copy_paste": [{"subject": m.subject, "similarity": round3(m.similarity or 0.0),
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
            feedback=identity_feedback(engine, matches, extra, len(faces), size, score, threshold),
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
