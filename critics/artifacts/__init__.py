"""Artifact critic: blur, noise, JPEG blocking, clipped exposure, posterisation, copy-move, naturalness.

Each sub-check is a pure function of a numpy image that returns a ``SubCheck`` (value, limit, passed,
score in [0,1], detail). ``ArtifactsCritic.check`` picks from the plan's style (checked against the
pixels) which sub-checks apply, runs them and reports the worst one:

- sub-check score: 1 when clean, exactly 0.5 at its limit, falling smoothly towards 0 beyond it
  (``limit_score``, a logistic in log(value / limit));
- verdict score = min over the applied sub-checks; passed = score >= threshold, so a 0.5 threshold
  means "every applied sub-check within its limit".

Style. Flat graphic designs (solid or gradient backgrounds: posters, UI) legitimately have few levels,
little texture, pure white or black areas and repeated elements, so "graphic" runs only blocking
and noise. A procedural "texture" background has intended grain and palette-limited levels, so it
skips noise, exposure, banding and naturalness. A "photo" runs everything. A photo is an image
background, reference subjects on a solid or gradient background, or a solid/gradient plan whose
pixels are not a design (as with ``pixloop check`` on an arbitrary photo, whose plan has the default
style): a design is smooth *and* made of exactly flat fills (8-bit neighbours equal at native
resolution), which a photo's grain never is, however soft or dark. Planned text regions are left out of
the style test, the highlight and shadow shares and the copy-move search (repeated glyphs are
legitimate copies).

Local defects. Blur is measured per tile (``tiles``), so a blurred region of an otherwise sharp photo
fails with its pixel boxes; exposure reports the blown areas' boxes, copy-move the pasted region and its
source. The verdict's ``regions`` (``ArtifactsEvidence``) are every failing sub-check's boxes, or the
whole image for a global fault (noise, JPEG, banding): when they cover little of the image the corrector
repairs them with a masked edit (``edit_region``), otherwise it regenerates. ``heatmap`` (in the store)
shows the worst sub-check's map: blur per tile, JPEG blocks, blown pixels, copy-move matches.

Limits (``LIMITS``, each with the numbers behind it) are calibrated on real photos: the LIVE
database's pristine photos with its own blur, JPEG and noise versions, and the Kodak suite with
derived distortions (``bench/data/get_photos.py``, ``bench/real_photos.py``), plus the skimage photos
(native and upscaled 2x) and pixloop's own posters and flyers (PNG and JPEG). Copy-move must find one
coherent, unique copied region (periodic windows, tiles and repeated words are rejected); highlights
count as over-exposure only when the clipping cuts into detail or colour, or when the rest of the
picture is bright too (a white sky over a normally lit scene is natural); under-exposure is judged on
the brightest 1% of the picture. The metric survey is shared/docs/critic-engines.md section 4.

Speed. Sharpness is judged on grey at long side <= 1024 (``BLUR_SIDE``); style, copy-move (SIFT,
the dominant cost, plus a dense verification of each candidate) and BRISQUE run at long side <= 512
(``WORK_SIDE``). Noise, JPEG grid, clipping and levels need native pixels and read at most ~1.2 MP of
them (tiles or an exact nearest-neighbour subsample). An installed ``brisque`` package adds ~0.15 s.

The code lives in one module per concern: ``common`` (SubCheck, Limit, LIMITS, limit_score, image
helpers), ``tiles`` (tile grids and their regions), one module per sub-check (``blur``, ``noise``, ``blocking``, ``exposure``, ``banding``,
``copy_move``, ``naturalness``), ``style`` (photo/graphic/texture, text mask), ``preparation``
(the views of one image the sub-checks read), ``heatmaps``, ``feedback`` and ``critic``
(``ArtifactsCritic``). Everything is re-exported here.
"""

from __future__ import annotations

from critics.artifacts.banding import banding_check, levels_per_channel
from critics.artifacts.blocking import BLOCK_EPS, block_map, blocking_check, blocking_ratio
from critics.artifacts.blur import (
    DETAIL_STEP,
    LOCAL_DROP,
    LOCAL_SHARE,
    SHARP_QUANTILE,
    STRUCTURE_MIN,
    BlurMap,
    blur_check,
    blur_map,
)
from critics.artifacts.common import (
    BLUR_SIDE,
    LIMITS,
    SUBCHECKS,
    WORK_SIDE,
    Limit,
    SubCheck,
    as_rgb,
    downscale,
    limit_score,
    make_subcheck,
    max_channel,
    round_sig,
    to_gray,
    where,
    where_mask,
)
from critics.artifacts.copy_move import (
    CM_BIN,
    CM_CANDIDATES,
    CM_CONTRAST,
    CM_ELSEWHERE,
    CM_FLAT,
    CM_K,
    CM_MIN_REGION,
    CM_MIN_SHIFT,
    CM_NCC,
    CM_NFEATURES,
    CM_PERIODIC,
    CM_RATIO,
    copy_move_check,
    copy_move_clusters,
    copy_move_pairs,
    verify_copy,
)
from critics.artifacts.critic import INFO, MIN_SIDE, NAME, ArtifactsCritic
from critics.artifacts.exposure import BRIGHT_REST, exposure_check, exposure_measures
from critics.artifacts.feedback import feedback_for
from critics.artifacts.heatmaps import HEATMAP_SIDE, blocking_heatmap, blur_heatmap, copy_move_heatmap, exposure_heatmap
from critics.artifacts.naturalness import BRISQUE_DIRS, brisque_engine, brisque_files, naturalness_check
from critics.artifacts.noise import NOISE_QUANTILE, noise_check, noise_sigma, tile_sigmas
from critics.artifacts.preparation import NATIVE_MAX_PIXELS, TILE, Prepared, prepare
from critics.artifacts.style import (
    GRAPHIC_EXACT,
    GRAPHIC_EXACT_ALONE,
    GRAPHIC_SMOOTH,
    SKIP_REASONS,
    SMOOTH_STEP,
    STYLES,
    TEXT_PAD,
    classify_style,
    exact_flat_fraction,
    smooth_fraction,
    text_mask,
)
from critics.artifacts.tiles import TILE_SIDE, Grid, boxes_share, grid, scale_box, tile_regions

__all__ = ["ArtifactsCritic", "BLOCK_EPS", "BLUR_SIDE", "BRIGHT_REST", "BRISQUE_DIRS", "BlurMap", "CM_BIN",
    "CM_CANDIDATES", "CM_CONTRAST", "CM_ELSEWHERE", "CM_FLAT", "CM_K", "CM_MIN_REGION", "CM_MIN_SHIFT", "CM_NCC",
    "CM_NFEATURES", "CM_PERIODIC", "CM_RATIO", "DETAIL_STEP", "GRAPHIC_EXACT", "GRAPHIC_EXACT_ALONE",
    "GRAPHIC_SMOOTH", "Grid", "HEATMAP_SIDE", "INFO", "LIMITS", "LOCAL_DROP", "LOCAL_SHARE", "Limit", "MIN_SIDE",
    "NAME", "NATIVE_MAX_PIXELS", "NOISE_QUANTILE", "Prepared", "SHARP_QUANTILE", "SKIP_REASONS", "SMOOTH_STEP",
    "STRUCTURE_MIN", "STYLES", "SUBCHECKS", "SubCheck", "TEXT_PAD", "TILE", "TILE_SIDE", "WORK_SIDE", "as_rgb",
    "banding_check", "block_map", "blocking_check", "blocking_heatmap", "blocking_ratio", "blur_check",
    "blur_heatmap", "blur_map", "boxes_share", "brisque_engine", "brisque_files", "classify_style",
    "copy_move_check", "copy_move_clusters", "copy_move_heatmap", "copy_move_pairs", "downscale",
    "exact_flat_fraction", "exposure_check", "exposure_heatmap", "exposure_measures", "feedback_for", "grid",
    "levels_per_channel", "limit_score", "make_subcheck", "max_channel", "naturalness_check", "noise_check",
    "noise_sigma", "prepare", "round_sig", "scale_box", "smooth_fraction", "text_mask", "tile_regions",
    "tile_sigmas", "to_gray", "verify_copy", "where", "where_mask"
]
