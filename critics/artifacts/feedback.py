"""Feedback wording: one actionable line for a failing artifact sub-check."""

from __future__ import annotations

from critics.artifacts.common import SubCheck, where


def _box_words(d: dict) -> str:
    """'at top left' for the first region of a sub-check, from its box and the image size it was given."""
    regions, size = d.get("regions"), d.get("_size")
    if not regions or not size:
        return ""
    x0, y0, x1, y1 = regions[0]
    return "at " + where((x0 + x1) / 2 / size[0], (y0 + y1) / 2 / size[1])


def feedback_for(sub: SubCheck) -> str:
    """One actionable line for a failing sub-check."""
    d, v, lim = sub.detail, sub.value, sub.limit
    where = f" {d['where']}" if d.get("where") else ""
    if sub.name == "blur":
        if v < 1e-6:
            return (f"image is uniform, with no detail at all (sharpness 0 < {lim:.2f}): "
                    "re-render with the planned content, sharp and in focus")
        if d.get("local"):
            place = f" {where_words}" if (where_words := _box_words(d)) else ""
            return (f"part of the image is blurred{place} (sharpness {v:.2f} < {lim:.2f} there, the rest is sharp): "
                    "re-render that area sharp and in focus")
        return f"image is blurred (sharpness {v:.2f} < {lim:.2f}): re-render sharp and in focus, no motion blur"
    if sub.name == "noise":
        return f"image is noisy (noise sigma {v:.1f} > {lim:.0f}): re-render clean, without grain or sensor noise"
    if sub.name == "blocking":
        return f"JPEG blocking {v:.1f} > {lim:.1f}{where}: regenerate as PNG or at higher quality"
    if sub.name == "exposure":
        if d.get("kind") == "shadows":
            return (f"crushed shadows: {v:.0%} of pixels are pure black (> {lim:.0%}){where}: "
                    "lift the shadows, expose brighter")
        if d.get("kind") == "under":
            return (f"under-exposed: even the brightest 1% of the picture only reaches grey {v:.0f} (< {lim:.0f}): "
                    "expose brighter, lift the mid-tones")
        share = float(d.get("highlights", v))
        return (f"clipped exposure: {share:.0%} of pixels are blown out{where} and detail is lost "
                f"(effective {v:.0%} > {lim:.0%}): reduce exposure, keep highlight detail")
    if sub.name == "banding":
        return (f"posterised / banding: only {v:.0f} levels per channel (< {lim:.0f}): "
                "re-render with smooth tonal gradation, no colour reduction")
    if sub.name == "copy_move":
        src, dst = d.get("source", "one place"), d.get("target", "another")
        if src == dst:
            return (f"duplicated patch: a region at {src} is repeated nearby ({v:.0f} matching points, shift "
                    f"{d.get('displacement')} px): regenerate that area or use a new seed")
        return (f"duplicated patch: region at {src} is copied to {dst} ({v:.0f} matching points): "
                "regenerate that area or use a new seed")
    if sub.name == "naturalness":
        return f"image looks unnatural (BRISQUE {v:.0f} > {lim:.0f}): re-render cleaner, without distortions"
    return f"{sub.name} {v:.3g} beyond its limit {lim:.3g}"
