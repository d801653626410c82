"""Structure critic, for "sketch to mockup": does the candidate keep the layout of the user's sketch?

Applies only when the plan has a sketch (``Plan.sketch``, opened with ``context.store``). Pixels are not
compared: a sketch is thin dark strokes on white, a mockup has filled colour areas, photos and real text. Both
become style-independent layout maps at a long side of ``WORK_SIDE`` (``layout``): the sketch's strokes (adaptive
threshold) and its closed boxes (contours, as the planner reads them), the candidate's edges (Canny of CLAHE
lightness and of the two colour channels). The sketch is stretched to the candidate's canvas, then a small global
alignment (``align``: phase correlation and a chamfer search, shifts <= ``MAX_SHIFT``, scales ``SCALES``) absorbs
a few percent of drift.

Measures, each mapped so that its limit is exactly 0.5 (the verdict's score is the lowest):
- edges: the share of sketch strokes with a candidate edge within ``RADIUS`` of the long side (recall), and of
  candidate edges near a stroke (precision, low limit: a mockup adds text and texture);
- regions: per sketch box, the share of its outline with a candidate edge nearby, or a block of content held
  inside it (a headline set without a plate), within ``LOCAL_SHIFT``; a box not in place is searched over the
  canvas to say where it went ("moved 18% right") or that it has no counterpart.

Evidence (``StructureEvidence``): recall, precision, the alignment, per sketch region found/moved/missing with
its offset and score, and an ``overlay`` (the candidate with the aligned sketch and the boxes) stored with
``context.store.put_image``.
"""

from __future__ import annotations

from critics.structure.align import LOCAL_SHIFT, MAX_SHIFT, SCALES, WIDE_SHIFT, BoxMatch, Transform, match_box
from critics.structure.critic import (
    BOX_LIMIT,
    EDGE_PRECISION_LIMIT,
    EDGE_RECALL_LIMIT,
    INFO,
    RADIUS,
    StructureCritic,
    describe_offset,
    score_at_least,
    sketch_of,
)
from critics.structure.layout import WORK_SIDE, SketchBox, candidate_edges, find_boxes, sketch_ink

__all__ = [
    "BOX_LIMIT", "BoxMatch", "EDGE_PRECISION_LIMIT", "EDGE_RECALL_LIMIT", "INFO", "LOCAL_SHIFT", "MAX_SHIFT", "RADIUS",
    "SCALES", "SketchBox", "StructureCritic", "Transform", "WIDE_SHIFT", "WORK_SIDE", "candidate_edges",
    "describe_offset", "find_boxes", "match_box", "score_at_least", "sketch_ink", "sketch_of",
]
