"""``ArtifactsCritic``: picks the sub-checks that apply to the image's style, runs them and reports the
worst one (see the package docstring for the scoring rules)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from agent.models import Plan, Verdict
from agent.models.evidence import ArtifactsEvidence
from critics.artifacts import naturalness
from critics.artifacts.banding import banding_check
from critics.artifacts.blocking import blocking_check
from critics.artifacts.blur import blur_check
from critics.artifacts.common import SUBCHECKS, SubCheck
from critics.artifacts.copy_move import copy_move_check
from critics.artifacts.exposure import exposure_check
from critics.artifacts.feedback import feedback_for
from critics.artifacts.heatmaps import blocking_heatmap, blur_heatmap, copy_move_heatmap, exposure_heatmap
from critics.artifacts.naturalness import naturalness_check
from critics.artifacts.noise import noise_check
from critics.artifacts.preparation import TILE, Prepared, prepare
from critics.artifacts.style import SKIP_REASONS, classify_style, text_mask
from critics.artifacts.tiles import boxes_share, scale_box
from critics.base import CheckContext, CriticBase, CriticInfo

INFO = CriticInfo(
    threshold=0.5,
    threshold_source=(
        "score = min over the applied sub-checks, each exactly 0.5 at its calibrated limit (critics/artifacts/common.py "
        "LIMITS), calibrated on real photos: the LIVE database's pristine photos and their own blur, JPEG and noise "
        "versions (exler/CILISSA@24f18d6) and the Kodak suite (Zelex/images@0b8a89d) with derived blur, noise, "
        "JPEG, under/over-exposure, posterisation, a blurred quadrant and a copy-move paste (bench/data/get_photos.py, "
        "bench/real_photos.py): 99.3% of 291 labelled images right (was 78.4%), 0/29 pristine photos flagged (was 7), "
        "46/48 local defects failed with their region; pixloop's posters/flyers as PNG and JPEG q90/q75 are designs "
        "and pass (36/36)"
    ),
    description="blur (also local), noise, JPEG blocking, exposure (blown, crushed, under), banding, copy-move "
                "(style-aware, with the failing regions)",
    weight=1.5, measured=True, needs=(), on_by_default=True,
    strategies=("edit_region", "new_seed"), escalation=("best_of_n", "new_seed"), evidence=ArtifactsEvidence,
)
"""What the loop knows about this critic (see `critics.base.CriticInfo`)."""

NAME = "artifacts"

MIN_SIDE = {"blur": 32, "noise": 16, "blocking": 16, "exposure": 8, "banding": 64, "copy_move": 64,
            "naturalness": 64}
"""Smallest short side each sub-check can judge; smaller images skip it."""


# --------------------------------------------------------------------------- critic


def _threshold(plan: Plan | None) -> float:
    spec = plan.checks.get(NAME) if plan is not None else None
    return float(spec.threshold) if spec is not None else INFO.threshold


class ArtifactsCritic(CriticBase):
    """Technical image quality: the worst applied sub-check's score against the threshold."""

    name = NAME
    info = INFO

    def __init__(self, brisque: Callable[[np.ndarray], float] | None | bool = True) -> None:
        # True: use an offline BRISQUE if one is found; False: never; a callable: that scorer (tests).
        self._brisque = brisque

    def _naturalness_engine(self) -> tuple[Callable[[np.ndarray], float] | None, str]:
        if self._brisque is False or self._brisque is None:
            return None, "BRISQUE disabled"
        if callable(self._brisque):
            return self._brisque, "custom scorer"
        return naturalness.brisque_engine()  # read through the module: a test may patch it there

    def run_subchecks(self, prep: Prepared, plan: Plan | None) -> tuple[str, str, dict[str, SubCheck],
                                                                       dict[str, str], dict[str, float]]:
        """Style, style reason, the applied sub-checks' results, skipped reasons and timings (ms)."""
        timings: dict[str, float] = {}
        t = time.perf_counter()
        w, h = prep.size
        ww, wh = prep.work.shape[1], prep.work.shape[0]
        tmask = text_mask(plan, ww, wh)
        style, why = classify_style(plan, prep.work, tmask, native=prep.tiles)
        timings["style"] = (time.perf_counter() - t) * 1000
        skip = dict(SKIP_REASONS[style])
        composite = style == "photo" and plan is not None and bool(plan.subjects) and \
            plan.style.background in ("solid", "gradient")
        if composite:
            skip["naturalness"] = "composite of reference photos on a designed background: not a natural image"
        short = min(w, h)
        for name, side in MIN_SIDE.items():
            if name not in skip and short < side:
                skip[name] = f"image too small ({w}x{h}; needs a short side of {side} px)"
        results: dict[str, SubCheck] = {}

        def run(name: str, fn: Callable[[], SubCheck | None]) -> None:
            if name in skip:
                return
            t0 = time.perf_counter()
            try:
                out = fn()
            except Exception as e:  # noqa: BLE001 - one sub-check failing never sinks the verdict
                skip[name] = f"could not run: {type(e).__name__}: {e}"[:200]
                out = None
            timings[name] = (time.perf_counter() - t0) * 1000
            if out is not None:
                results[name] = out

        run("blur", lambda: blur_check(prep.sharp, composite=composite))
        run("noise", lambda: noise_check(prep.tiles))
        run("blocking", lambda: blocking_check(prep.tiles, spec="blocking" if style == "photo" else "blocking_graphic"))
        native_text = None
        if tmask is not None and tmask.mean() <= 0.75:
            native_text = text_mask(plan, prep.native.shape[1], prep.native.shape[0])
        run("exposure", lambda: exposure_check(prep.native, exclude=native_text, judge_under=not composite))
        run("banding", lambda: banding_check(prep.native))
        cm_mask = None
        if tmask is not None and tmask.mean() <= 0.75:
            cm_mask = ~tmask
        run("copy_move", lambda: copy_move_check(prep.work, mask=cm_mask))
        if "copy_move" in results and prep.work.shape[1] != w:
            # copy_move_check reported points in work pixels: scale them (and the shift) to the original.
            sub = results["copy_move"]
            f = w / prep.work.shape[1]
            if "_pairs" in sub.detail:
                s0, d0 = sub.detail["_pairs"]
                sub.detail["_pairs"] = (s0 * f, d0 * f)
            if "displacement" in sub.detail:
                sub.detail["displacement"] = [round(c * f) for c in sub.detail["displacement"]]
        # Regions come back in the pixels each sub-check read: scale them to the original image.
        for name, base in (("blur", prep.sharp), ("exposure", prep.native), ("copy_move", prep.work)):
            found = results.get(name)
            if found is not None and found.detail.get("regions") and base.shape[1] != w:
                fx, fy = w / base.shape[1], h / base.shape[0]
                found.detail["regions"] = [scale_box(b, fx, fy, w, h) for b in found.detail["regions"]]
                found.detail["_size"] = (w, h)
        if "naturalness" not in skip:
            engine, how = self._naturalness_engine()
            if engine is None:
                skip["naturalness"] = f"skipped: {how}"
            else:
                run("naturalness", lambda: naturalness_check(prep.work, engine=engine))
                if "naturalness" in results:
                    results["naturalness"].detail["engine"] = how
        if prep.subsampled:
            for name in ("exposure", "banding"):
                if name in results:
                    results[name].detail["sampled"] = "nearest-neighbour subsample of a large image"
            for name in ("noise", "blocking"):
                if name in results:
                    results[name].detail["sampled"] = f"{len(prep.tiles)} native tiles of {TILE} px"
        return style, why, results, skip, timings

    def _heatmap(self, worst: SubCheck, prep: Prepared, store: Any) -> str | None:
        """Save a heat map for the worst failing sub-check if it has one; its store-relative path."""
        if store is None or worst.passed or worst.name not in ("blur", "blocking", "copy_move", "exposure"):
            return None
        if worst.name == "blur":
            bm = worst.detail.get("_map")
            if bm is None:
                return None
            img = blur_heatmap(prep.work, bm)
        elif worst.name == "blocking":
            rgb = prep.native if not prep.subsampled else prep.tiles[0]
            img = blocking_heatmap(rgb)
        elif worst.name == "copy_move":
            pairs = worst.detail.get("_pairs")
            if pairs is None:
                return None
            base = prep.work
            f = base.shape[1] / prep.size[0]
            img = copy_move_heatmap(base, pairs[0] * f, pairs[1] * f)
        else:
            img = exposure_heatmap(prep.native, worst.detail.get("kind", "highlights"))
        return store.put_image(img).path

    @staticmethod
    def _regions(results: dict[str, SubCheck], w: int, h: int) -> list[list[int]]:
        """Pixel boxes of every failing sub-check: its own regions when it reports them (a blurred area, a
        duplicated patch and its copy, blown highlights), else the whole image (noise, JPEG, banding)."""
        out: list[list[int]] = []
        for name in SUBCHECKS:
            sub = results.get(name)
            if sub is None or sub.passed:
                continue
            for box in sub.detail.get("regions") or [[0, 0, w, h]]:
                if box not in out:
                    out.append(box)
        return out

    def check(self, image: Image.Image | np.ndarray, plan: Plan | None, context: CheckContext | None = None) -> Verdict:
        t0 = time.perf_counter()
        context = context or CheckContext()
        threshold = _threshold(plan)
        try:
            prep = prepare(image)
            t_prep = (time.perf_counter() - t0) * 1000
            style, why, results, skipped, timings = self.run_subchecks(prep, plan)
            timings = {"prepare": t_prep, **timings}
        except Exception as e:  # noqa: BLE001 - a critic never crashes the loop
            error = f"{type(e).__name__}: {e}"
            return Verdict(critic=NAME, candidate_id=context.candidate_id, score=0.0, passed=False,
                           threshold=threshold, evidence={"style": None, "checks": {}, "skipped": {}, "heatmap": None,
                                     "regions": []},
                           feedback=f"artifact check failed; image quality could not be checked ({error[:200]})",
                           seconds=round(time.perf_counter() - t0, 3), error=error)
        evidence: dict[str, Any] = {
            "style": style,
            "style_reason": why,
            "checks": {n: results[n].evidence() for n in SUBCHECKS if n in results},
            "skipped": {n: skipped[n] for n in SUBCHECKS if n in skipped},
            "heatmap": None,
            "regions": [],
        }
        if prep.alpha:
            evidence["alpha"] = "transparent pixels composited on mid grey"
        if not results:
            score = 1.0
            feedback = f"no artifact sub-check applies to this {prep.size[0]}x{prep.size[1]} image"
            evidence["worst"] = None
        else:
            worst = min(results.values(), key=lambda s: s.score)
            score = worst.score
            evidence["worst"] = worst.name
            if worst.passed:
                feedback = (f"no artifacts ({style}): {len(results)} checks within limits; "
                            f"closest to its limit: {worst.name} (score {worst.score:.2f})")
            else:
                feedback = feedback_for(worst)
                failing = [n for n in SUBCHECKS if n in results and not results[n].passed and n != worst.name]
                if failing:
                    feedback += f" (also failing: {', '.join(failing)})"
                w, h = prep.size
                evidence["regions"] = self._regions(results, w, h)
                evidence["region_share"] = round(boxes_share(evidence["regions"], w, h), 4)
            try:
                t = time.perf_counter()
                evidence["heatmap"] = self._heatmap(worst, prep, context.store)
                if evidence["heatmap"]:
                    timings["heatmap"] = (time.perf_counter() - t) * 1000
            except Exception as e:  # noqa: BLE001
                evidence["heatmap_error"] = f"{type(e).__name__}: {e}"[:200]
        evidence["timings_ms"] = {k: round(v, 1) for k, v in timings.items()}
        passed = score >= threshold
        return Verdict(critic=NAME, candidate_id=context.candidate_id, score=float(min(1.0, max(0.0, score))),
                       passed=passed, threshold=threshold, evidence=evidence, feedback=feedback,
                       seconds=round(time.perf_counter() - t0, 3))
