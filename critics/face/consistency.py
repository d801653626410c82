"""Cross-image mode: the same character in several images (a storyboard), by the pairwise similarity of
each image's largest face."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent.models import Verdict
from critics.face.critic import INFO
from critics.face.engines import FaceEngine, as_bgr, face_engine, largest_face
from critics.face.scoring import engine_score, round3


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
            ei, ej = embs[i], embs[j]
            if ei is not None and ej is not None:
                sim[i, j] = sim[j, i] = eng.similarity(ei, ej)
                pairwise.append([i + 1, j + 1, round3(sim[i, j])])
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
    score = engine_score(eng, lo)
    passed = score >= thr
    outlier = None
    if not passed:
        # Of the weakest pair, the image that is less like everyone else; with 2 images there is no telling.
        outlier = (lo_i if means[lo_i] <= means[lo_j] else lo_j) if n > 2 else None
    evidence.update(min_similarity=round3(lo), mean_similarity=[round3(m) for m in means],
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
