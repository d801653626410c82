"""Edit-preservation critic: did an edit keep what it should and change what it should?

Applies when the plan edits an image (``plan.source``). The original is ``context.original`` or
``plan.source``, the mask ``context.mask`` or ``plan.mask``, both opened with ``context.store``.

Mask convention: **white (>= 128) = may change**. Accepted as L, 1, RGB or RGBA. An RGBA mask whose
alpha holds both 0 and 255 follows OpenAI's images/edits convention instead: **alpha 0 = edit area**
(the colour channels are then ignored); ``evidence["mask_convention"]`` says which was used.

With a mask (``mode="mask"``), on greyscale copies at a long side <= ``MAX_SIDE``:
- outside: the mask is dilated by ``SEAM_FRACTION`` of the long side (the blend seam of
  mask_blur / grow_mask_by) plus the SSIM window radius; over the rest the mean SSIM must be
  >= ``SSIM_OUTSIDE_LIMIT``, the mean absolute RGB difference <= ``COLOUR_OUTSIDE_LIMIT`` (SSIM
  ignores an overall colour shift) and at most ``CHANGED_OUTSIDE_FRACTION_LIMIT`` of the pixels
  may change visibly (a mean over a big outside dilutes a local change);
- inside: the mean absolute RGB difference must reach ``CHANGED_INSIDE_LIMIT`` or the share of
  visibly changed pixels ``CHANGED_FRACTION_LIMIT`` (a small object edited inside a big mask).
  Colour differences are measured between slightly blurred copies (``DIFF_BLUR``) so re-encoding
  noise is not mistaken for an edit.

Without a mask (``mode="global"``): the edit may change things but must keep the layout: SSIM at a
long side of ``GLOBAL_SIDE`` >= ``LAYOUT_SSIM_LIMIT`` and the correlation of the two edge maps
>= ``EDGE_CORR_LIMIT``. Identity of people is not judged here (the face critic does it).

Score: each measure is mapped piecewise-linearly so that **exactly 0.5 is at its limit**, 1.0 is
a perfect result and 0.0 the worst; the verdict's score is the lowest. The default threshold 0.5
therefore means "every measure within its limit"; a stricter threshold asks for a margin.

The original and the mask are decoded and prepared once per process (a 4-entry LRU keyed by file
path, hash, mtime and size): every candidate of a run compares with the same original.

A candidate of another size than the original is resized to it (noted: ``resized``); a mask of
another size than the original is bad input: a failing verdict with ``error``, never a crash.
Evidence includes a colour heat map of the difference (``diff_map``, stored with
``context.store.put_image``) and the most-changed region outside the mask (``worst_region``).

Layout: ``pixels`` (conversions, mask reading, SSIM, edges), ``preparation`` (work-size copies and
the per-process cache), ``regions`` (worst region, heat map) and ``critic`` (limits, score mapping,
``PreservationCritic``). Everything is re-exported here.
"""

from __future__ import annotations

from critics.preservation.critic import (
    CHANGED_FRACTION_LIMIT,
    CHANGED_INSIDE_LIMIT,
    CHANGED_OUTSIDE_FRACTION_LIMIT,
    CHANGED_PIXEL,
    COLOUR_OUTSIDE_LIMIT,
    EDGE_CORR_LIMIT,
    EDGE_SIDE,
    GLOBAL_SIDE,
    INFO,
    LAYOUT_BLUR,
    LAYOUT_SSIM_LIMIT,
    SEAM_FRACTION,
    SSIM_OUTSIDE_LIMIT,
    PreservationCritic,
    score_at_least,
    score_at_most,
)
from critics.preservation.pixels import SSIM_WINDOW, mask_edit_area, ssim_map
from critics.preservation.preparation import DIFF_BLUR, MAX_SIDE
from critics.preservation.regions import (
    DIFF_MAP_SIDE,
    REGION_SIDE,
    WORST_MIN_DISSIMILARITY,
    describe_box,
    diff_heatmap,
    worst_region,
)

__all__ = [
    "CHANGED_FRACTION_LIMIT", "CHANGED_INSIDE_LIMIT", "CHANGED_OUTSIDE_FRACTION_LIMIT", "CHANGED_PIXEL",
    "COLOUR_OUTSIDE_LIMIT", "DIFF_BLUR", "DIFF_MAP_SIDE", "EDGE_CORR_LIMIT", "EDGE_SIDE", "GLOBAL_SIDE", "INFO",
    "LAYOUT_BLUR", "LAYOUT_SSIM_LIMIT", "MAX_SIDE", "PreservationCritic", "REGION_SIDE", "SEAM_FRACTION",
    "SSIM_OUTSIDE_LIMIT", "SSIM_WINDOW", "WORST_MIN_DISSIMILARITY", "describe_box", "diff_heatmap", "mask_edit_area",
    "score_at_least", "score_at_most", "ssim_map", "worst_region",
]
