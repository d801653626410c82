"""The compose backend: an embedded, offline, deterministic typographic compositor.

It renders a Plan literally: a background (solid, gradient, procedural texture or a
stored image), the reference subjects (people cropped head-and-shoulders around the
detected face, products cut out of their backdrop with a drop shadow) and every text
element set in the plan's font, as large as fits its region. The same plan and seed
always give byte-identical pixels, so the checking loop can attribute every change in
a critic's score to a change in the plan.

The style is honoured even where it hurts: a hairline font in a colour close to a busy
texture renders as badly as asked, because the critics must find and the corrector fix it.

Modules: ``canvas`` (colours, contrast, pixel helpers), ``background`` (solid, gradient, texture,
image), ``subjects`` (face detection, framed portraits, product cut-outs), ``text`` (fitting,
plates, outlines), ``edit`` (`apply_edit`: real edits of a source photo inside a mask: a new background
around the kept subject, recolouring, inserted objects, a restyle), ``matting`` (the edge band of an edit: alpha
from colour, decontamination, light wrap, feathering), ``backend`` (`render`, `edit_base` and `ComposeBackend`);
``fonts`` holds the bundled fonts.

An edit request (a base image, with ``plan.edit`` or a mask) changes only what the mask lets change: outside it
the result is byte-identical to the source except a blend band of a few pixels at the mask edge.
"""

from agent.backends.compose.backend import ComposeBackend, ComposeOptions, edit_base, render
from agent.backends.compose.background import render_background
from agent.backends.compose.canvas import (
    RGB,
    PixelBox,
    box_px,
    contrast_ratio,
    contrasting_colour,
    cover_fit,
    hex_rgb,
    relative_luminance,
)
from agent.backends.compose.edit import apply_edit, blend_inside, look_of
from agent.backends.compose.subjects import clear_caches, cutout_mask, detect_face, face_detector_available
from agent.backends.compose.text import TextLayout, layout_text

__all__ = ["RGB", "ComposeBackend", "ComposeOptions", "PixelBox", "TextLayout", "apply_edit", "blend_inside",
           "box_px", "clear_caches", "contrast_ratio", "contrasting_colour", "cover_fit", "cutout_mask", "detect_face",
           "edit_base", "face_detector_available", "hex_rgb", "layout_text", "look_of", "relative_luminance", "render",
           "render_background"]
