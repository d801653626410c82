"""Tile grids for the local sub-checks: per-tile sums of a full-size map, and the pixel boxes of the connected
groups of flagged tiles (the ``regions`` a masked edit can repair)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TILE_SIDE = 128
"""Nominal tile side, in pixels of the image a sub-check reads (the sharpness grey is <= 1024 px, so 8 x 8
tiles at most); a grid has at least ``MIN_TILES`` tiles per axis."""
MIN_TILES = 4


@dataclass(frozen=True)
class Grid:
    """A grid over an h x w image: tile edges along y and x (``ys[i]:ys[i+1]`` is row i)."""

    ys: np.ndarray
    xs: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.ys) - 1, len(self.xs) - 1

    def sums(self, a: np.ndarray) -> np.ndarray:
        """Per-tile sums of a 2-D map the size of the image (float64, grid shape), from its integral image."""
        a = np.asarray(a)
        if a.dtype not in (np.uint8, np.float32, np.float64):
            a = a.astype(np.float32)
        ii = cv2.integral(np.ascontiguousarray(a), sdepth=cv2.CV_64F)
        c = ii[np.ix_(self.ys, self.xs)]
        return c[1:, 1:] - c[:-1, 1:] - c[1:, :-1] + c[:-1, :-1]

    def halved(self) -> Grid:
        """The same tiles on an image downscaled by two (for maps computed at half resolution)."""
        return Grid(self.ys // 2, self.xs // 2)

    def areas(self) -> np.ndarray:
        return np.outer(np.diff(self.ys), np.diff(self.xs)).astype(np.float64)

    def box(self, i0: int, j0: int, i1: int, j1: int) -> tuple[int, int, int, int]:
        """Pixel box (x0, y0, x1, y1) of tiles rows i0..i1 and columns j0..j1 (inclusive)."""
        return int(self.xs[j0]), int(self.ys[i0]), int(self.xs[j1 + 1]), int(self.ys[i1 + 1])


def grid(h: int, w: int, tile: int = TILE_SIDE, min_tiles: int = MIN_TILES) -> Grid:
    """A grid of about ``tile`` px tiles (at least ``min_tiles`` per axis, each at least 8 px)."""
    ny = max(1, min(max(min_tiles, round(h / tile)), h // 8 or 1))
    nx = max(1, min(max(min_tiles, round(w / tile)), w // 8 or 1))
    ys = np.linspace(0, h, ny + 1).round().astype(np.int64)
    xs = np.linspace(0, w, nx + 1).round().astype(np.int64)
    return Grid(ys, xs)


def tile_regions(g: Grid, flagged: np.ndarray) -> list[tuple[tuple[int, int, int, int], int]]:
    """Each 8-connected group of flagged tiles as (its bounding pixel box, its number of tiles), largest first."""
    m = np.asarray(flagged, np.uint8)
    if not m.any():
        return []
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    out = []
    for k in range(1, n):
        j0, i0, bw, bh, count = (int(v) for v in stats[k])
        out.append((g.box(i0, j0, i0 + bh - 1, j0 + bw - 1), count))
    out.sort(key=lambda r: -r[1])
    return out


def scale_box(box: tuple[int, int, int, int] | list[int], fx: float, fy: float, w: int, h: int) -> list[int]:
    """A box from a working image's pixels to the original's (fx, fy: original / working), clipped."""
    x0, y0, x1, y1 = box
    return [max(0, int(np.floor(x0 * fx))), max(0, int(np.floor(y0 * fy))),
            min(w, int(np.ceil(x1 * fx))), min(h, int(np.ceil(y1 * fy)))]


def boxes_share(boxes: list[list[int]], w: int, h: int) -> float:
    """Share of a w x h image covered by the union of the boxes."""
    if not boxes or w <= 0 or h <= 0:
        return 0.0
    s = min(1.0, 512 / max(w, h))  # a coarse raster is exact enough for a share, and cheap for huge images
    mh, mw = max(1, round(h * s)), max(1, round(w * s))
    m = np.zeros((mh, mw), bool)
    for x0, y0, x1, y1 in boxes:
        m[max(0, int(y0 * s)):max(0, int(np.ceil(y1 * s))), max(0, int(x0 * s)):max(0, int(np.ceil(x1 * s)))] = True
    return float(m.mean())


__all__ = ["Grid", "MIN_TILES", "TILE_SIDE", "boxes_share", "grid", "scale_box", "tile_regions"]
