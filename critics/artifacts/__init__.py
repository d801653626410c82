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
pixels are not mostly flat (as with ``pixloop check`` on an arbitrary photo, whose plan has the
default style). Planned text regions are left out of the style test, the exposure shares and the
copy-move search (repeated glyphs are legitimate copies).

Limits (``LIMITS``, each with the numbers behind it) were calibrated on the skimage photos
(astronaut, coffee, chelsea, rocket, camera, motorcycle), at native size and upscaled 2x, clean and
degraded (blur sigma 3, JPEG q5, noise sigma 25, exposure x2, posterised to 3 bits, a pasted patch of
1/5 the short side), and on 100 clean compose posters (solid, gradient and texture backgrounds, four
palettes, with and without text and plates) plus 6 with a product. The metric survey is
shared/docs/critic-engines.md section 4.

Speed. Sharpness is judged on grey at long side <= 1024 (``BLUR_SIDE``); style, copy-move (SIFT,
the dominant cost) and BRISQUE run at long side <= 512 (``WORK_SIDE``). Noise, JPEG grid, clipping
and levels need native pixels and read at most ~1.2 MP of them (tiles or an exact nearest-neighbour
subsample). A 1024x1024 photo takes ~0.1 s on 2 cores, a flat poster ~0.01 s; an installed
``brisque`` package adds ~0.15 s.

The code lives in one module per concern: ``common`` (SubCheck, Limit, LIMITS, limit_score, image
helpers), one module per sub-check (``blur``, ``noise``, ``blocking``, ``exposure``, ``banding``,
``copy_move``, ``naturalness``), ``style`` (photo/graphic/texture, text mask), ``preparation``
(the views of one image the sub-checks read), ``heatmaps``, ``feedback`` and ``critic``
(``ArtifactsCritic``). Everything is re-exported here.
"""

from __future__ import annotations

from critics.artifacts.banding import banding_check, levels_per_channel
from critics.artifacts.blocking import BLOCK_EPS, block_map, blocking_check, blocking_ratio
from critics.artifacts.blur import DETAIL_STEP, blur_check
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
    CM_K,
    CM_MIN_SHIFT,
    CM_NFEATURES,
    CM_RATIO,
    copy_move_check,
    copy_move_pairs,
)
from critics.artifacts.critic import INFO, MIN_SIDE, NAME, ArtifactsCritic
from critics.artifacts.exposure import exposure_check
from critics.artifacts.feedback import feedback_for
from critics.artifacts.heatmaps import HEATMAP_SIDE, blocking_heatmap, copy_move_heatmap, exposure_heatmap
from critics.artifacts.naturalness import BRISQUE_DIRS, brisque_engine, brisque_files, naturalness_check
from critics.artifacts.noise import noise_check, noise_sigma
from critics.artifacts.preparation import NATIVE_MAX_PIXELS, TILE, Prepared, prepare
from critics.artifacts.style import (
    GRAPHIC_SMOOTH,
    SKIP_REASONS,
    SMOOTH_STEP,
    STYLES,
    TEXT_PAD,
    classify_style,
    smooth_fraction,
    text_mask,
)

__all__ = [
    "ArtifactsCritic", "BLOCK_EPS", "BLUR_SIDE", "BRISQUE_DIRS", "CM_BIN", "CM_CANDIDATES", "CM_CONTRAST", "CM_K",
    "CM_MIN_SHIFT", "CM_NFEATURES", "CM_RATIO", "DETAIL_STEP", "GRAPHIC_SMOOTH", "HEATMAP_SIDE", "INFO", "LIMITS",
    "Limit", "MIN_SIDE", "NAME", "NATIVE_MAX_PIXELS", "Prepared", "SKIP_REASONS", "SMOOTH_STEP", "STYLES",
    "SUBCHECKS", "SubCheck", "TEXT_PAD", "TILE", "WORK_SIDE", "as_rgb", "banding_check", "block_map",
    "blocking_check", "blocking_heatmap", "blocking_ratio", "blur_check", "brisque_engine", "brisque_files",
    "classify_style", "copy_move_check", "copy_move_heatmap", "copy_move_pairs", "downscale", "exposure_check",
    "exposure_heatmap", "feedback_for", "levels_per_channel", "limit_score", "make_subcheck", "max_channel",
    "naturalness_check", "noise_check", "noise_sigma", "prepare", "round_sig", "smooth_fraction", "text_mask",
    "to_gray", "where", "where_mask",
]
