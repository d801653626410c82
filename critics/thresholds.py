"""Default pass thresholds, one place, each with where its number comes from.

A brief's `thresholds` override these per run; the report shows the value used.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Threshold:
    value: float
    source: str


DEFAULTS: dict[str, Threshold] = {
    "ocr": Threshold(
        0.90,
        "per-element accuracy min(1 - CER, word accuracy), worst element decides; rapidocr reads clean posters "
        "at CER 0.009 (shared/docs/critic-engines.md section 1); bench/calibrate_critics.py: correct posters "
        "score 1.00, one-letter misspellings <= 0.67, so 0.90 fails any wrong word in lines of under ten words",
    ),
    "face": Threshold(
        0.5,
        "SFace cosine mapped piecewise-linearly so OpenCV's published same-person cosine 0.363 scores 0.5; on "
        "shared/data/faces same-person pairs score >= 0.649 and different people <= 0.366 (AUC 1.0); held-out "
        "set in critic-engines.md section 2: 99.95% pair accuracy at 0.363",
    ),
    "artifacts": Threshold(
        0.5,
        "score = min over the applied sub-checks, each exactly 0.5 at its calibrated limit (critics/artifacts.py "
        "LIMITS); on 6 skimage photos x 6 degradations at 1x and 2x, 70/72 flagged (misses: a flat-sky pasted "
        "patch), 0 false alarms on 12 clean photos (also JPEG q90/q75) and 106 clean compose posters",
    ),
    "spec": Threshold(
        0.95,
        "a conforming image scores 1.0 and every failure scores <= 0.9 by construction (critics/spec.py), "
        "so 0.95 splits them with a margin; 0.85 would accept a ratio about 3% off",
    ),
    "vlm": Threshold(
        0.6,
        "6/10 on the judge's weighted rubric (0.6 adherence + 0.4 consistency); opt-in, never the judge of "
        "text or identity, which measured critics own",
    ),
    "preservation": Threshold(
        0.5,
        "each measure maps its limit to exactly 0.5 (outside-mask SSIM 0.95, colour shift 12/255, changed "
        "share 1%; layout SSIM 0.6, edge correlation 0.4), calibrated on skimage photos",
    ),
}


def default_threshold(critic: str) -> Threshold:
    try:
        return DEFAULTS[critic]
    except KeyError:
        raise KeyError(f"no default threshold for critic {critic!r}") from None
