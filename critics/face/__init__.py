"""Face identity critic: do the people in the candidate look like their reference photos?

Pipeline (``FaceCritic.check``):

1. Each ``person`` subject's reference image is opened from the artifact store and its **largest**
   face embedded (cached by (engine, ImageRef.sha256): references are reused across iterations).
   A reference without a detectable face gives a failing Verdict with ``error`` set.
2. All faces in the candidate are detected and embedded (``critics.face.engines``; default engine
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

Layout: ``engines`` (detection and embedding engines), ``scoring`` (cosine -> score, IdentityMatch),
``feedback`` (wording), ``critic`` (``FaceCritic``) and ``consistency`` (``check_consistency``).
"""

from __future__ import annotations

from critics.face.consistency import check_consistency
from critics.face.critic import (
    COPY_PASTE_CAP,
    EXTRA_FACE_CAP,
    EXTRA_FACE_PENALTY,
    INFO,
    MAX_CANDIDATE_FACES,
    MAX_EVIDENCE_BOXES,
    NEW_POSE_WORDS,
    REFERENCE_CACHE_SIZE,
    FaceCritic,
    asks_for_new_pose,
)
from critics.face.engines import Face, FaceEngine, as_bgr, face_engine, largest_face
from critics.face.feedback import identity_feedback, plural, where
from critics.face.scoring import IdentityMatch, PixelBox, engine_score, round3, similarity_to_score

__all__ = [
    "COPY_PASTE_CAP", "EXTRA_FACE_CAP", "EXTRA_FACE_PENALTY", "Face", "FaceCritic", "FaceEngine", "INFO",
    "IdentityMatch", "MAX_CANDIDATE_FACES", "MAX_EVIDENCE_BOXES", "NEW_POSE_WORDS", "PixelBox",
    "REFERENCE_CACHE_SIZE", "as_bgr", "asks_for_new_pose", "check_consistency", "engine_score", "face_engine",
    "identity_feedback", "largest_face", "plural", "round3", "similarity_to_score", "where",
]
