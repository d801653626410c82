"""Panels: the image and colour blocks of a mockup (a sketch's boxes that hold no text), drawn as soft rounded
cards in the plan's palette with a faint frame, so the layout reads at a glance."""

from __future__ import annotations

import numpy as np
from PIL import Image

from agent.backends.compose.canvas import box_px, hex_rgb, paste_rgba, rounded_rect_alpha
from agent.models import Plan

PANEL_RADIUS = 0.04
"""Corner radius as a share of the panel's short side."""


def draw_panels(canvas: Image.Image, plan: Plan) -> list[list[int]]:
    """Draw every planned panel; returns their pixel boxes (for the render meta)."""
    boxes = []
    palette = [hex_rgb(c) for c in plan.style.palette] or [(200, 200, 200)]
    for i, panel in enumerate(plan.panels):
        x0, y0, x1, y1 = box_px(panel, canvas.width, canvas.height)
        w, h = x1 - x0, y1 - y0
        if w < 4 or h < 4:
            continue
        base = np.array(palette[(i + 1) % len(palette)], np.float32)
        light = base * 0.55 + 255 * 0.45
        ys = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        fill = (light * (1 - 0.25 * ys) + base * 0.25 * ys).repeat(w, axis=1)
        alpha = rounded_rect_alpha(w, h, PANEL_RADIUS * min(w, h))
        frame = rounded_rect_alpha(w, h, PANEL_RADIUS * min(w, h)) - rounded_rect_alpha(
            w, h, PANEL_RADIUS * min(w, h), feather=max(2.0, 0.012 * min(w, h)))
        fill = fill * (1 - 0.35 * np.clip(frame, 0, 1)[..., None]) + base * 0.35 * np.clip(frame, 0, 1)[..., None]
        rgba = np.dstack([fill.clip(0, 255).astype(np.uint8), (alpha * 255).clip(0, 255).astype(np.uint8)])
        paste_rgba(canvas, Image.fromarray(rgba, "RGBA"), (x0, y0))
        boxes.append([x0, y0, x1, y1])
    return boxes


__all__ = ["PANEL_RADIUS", "draw_panels"]
