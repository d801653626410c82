"""Reference-object critic: is each product reference (a bottle, a box, a mug) in the candidate?

Applies to plans with ``product`` subjects (a reference with a detectable face is a ``person`` and the face
critic's). Pipeline (``ReferenceCritic.check``), per product subject:

1. The reference is opened from the artifact store and prepared once (cached by its hash): its plain backdrop,
   estimated from the border, is masked out (``background``; its alpha when it has one); SIFT keypoints on the
   object, its colours and its silhouette are kept.
2. ``features``: its keypoints are matched to the candidate's (computed and indexed once per check, at a long
   side of 768, for every reference) with Lowe's ratio test, and a similarity transform is fitted with RANSAC;
   enough inliers (``MIN_INLIERS``), spread over the object, at a plausible scale, locate it (its box is the
   object's box through the transform). Robust to scale (60% of its size: 97.6% found), rotation, +-25%
   brightness and contrast and a third of it covered.
3. ``colour``: the candidate is warped back onto the reference and compared cell by cell over the object's
   mask (``colour_agreement`` >= ``MIN_COLOUR``): the same product re-coloured but for its label is another
   variant, not the reference.
4. ``template``: a low-texture reference (fewer than ``LOW_TEXTURE_KEYPOINTS``: a plain mug) the features cannot
   find is searched for by colour back-projection and its silhouette at several scales, and a peak counts only
   when the region's own shape overlaps the silhouette (``MIN_IOU``) and its colours match (histograms).

Per reference: ``found``, ``box`` (candidate pixels), ``similarity`` in [0, 1], ``inliers``, ``colour``,
``method`` and a ``detail`` line. A found reference scores 0.5 + 0.5 x the mean of its geometric strength and
colour margin; one not found (or found in other colours) scores below 0.5 (at most ``NOT_FOUND_CAP``, from the
partial evidence, so candidates still rank). The verdict's score is the worst reference's, so the default
threshold 0.5 means "every reference found"; the feedback names the missing ones ("reference 2 (bottle.png)
not found in the image; ...").

Layout: ``background`` (the backdrop mask), ``colour`` (chroma histograms, back-projection), ``features`` (SIFT,
ratio test, RANSAC), ``template`` (the low-texture search) and ``critic`` (``ReferenceCritic``, scoring,
feedback). Measured on real photos by ``bench/reference.py``.
"""

from __future__ import annotations

from critics.reference.background import object_mask
from critics.reference.colour import chroma_histogram, colour_similarity
from critics.reference.critic import (
    INFO,
    LOW_TEXTURE_KEYPOINTS,
    MIN_COLOUR,
    NOT_FOUND_CAP,
    PreparedReference,
    ReferenceCritic,
    display_name,
    prepare_reference,
    reference_number,
)
from critics.reference.features import MIN_INLIER_RATIO, MIN_INLIERS, Located, describe, locate
from critics.reference.template import MIN_IOU, TemplateHit, search, verify

__all__ = [
    "INFO", "LOW_TEXTURE_KEYPOINTS", "Located", "MIN_COLOUR", "MIN_INLIERS", "MIN_INLIER_RATIO", "MIN_IOU",
    "NOT_FOUND_CAP", "PreparedReference", "ReferenceCritic", "TemplateHit", "chroma_histogram", "colour_similarity",
    "describe", "display_name", "locate", "object_mask", "prepare_reference", "reference_number", "search", "verify",
]
