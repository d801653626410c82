"""Noise sub-check: Gaussian noise sigma of native grey pixels (Haar diagonal band, robust MAD), read from the
smoother tiles so that fine natural texture (foliage, water, gravel) is not taken for noise."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from critics.artifacts.common import SubCheck, make_subcheck, round_sig, to_gray

NOISE_TILE = 64
"""Side of the native tiles the noise is estimated on (each gives one robust sigma)."""
NOISE_QUANTILE = 25.0
"""The image's noise is this percentile of the tiles' sigmas: noise covers the whole image, texture does not,
so the smoother quarter of the tiles shows the noise alone (clean photos 0.7-5.9, film grain included)."""
CLIPPED_SHARE = 0.05
"""Tiles with more than this share of clipped pixels (<= 2 or >= 253) are left out: clipping halves noise."""


def _haar_hh(f: np.ndarray) -> np.ndarray:
    h, w = (f.shape[0] // 2) * 2, (f.shape[1] // 2) * 2
    f = f[:h, :w]
    return (f[0::2, 0::2] - f[0::2, 1::2] - f[1::2, 0::2] + f[1::2, 1::2]) * 0.5


def noise_sigma(gray: np.ndarray | Iterable[np.ndarray]) -> float:
    """Gaussian noise sigma from the finest Haar diagonal detail band: median(|HH|) / 0.6745 over all pixels.

    The same robust estimator as skimage.restoration.estimate_sigma (which needs PyWavelets and uses
    db2), with a Haar wavelet so it is a few array operations. Several tiles may be given.
    """
    tiles = [gray] if isinstance(gray, np.ndarray) else list(gray)
    parts = []
    for t in tiles:
        f = np.asarray(t, np.float32)
        if f.shape[0] < 2 or f.shape[1] < 2:
            continue
        parts.append(np.abs(_haar_hh(f)).ravel())
    if not parts:
        return 0.0
    return float(np.median(np.concatenate(parts))) / 0.6745


def tile_sigmas(gray: np.ndarray | Iterable[np.ndarray], tile: int = NOISE_TILE) -> np.ndarray:
    """Noise sigma of each full ``tile`` x ``tile`` block of each grey image (blocks with clipping left out;
    an image smaller than one block counts as one block)."""
    grays = [gray] if isinstance(gray, np.ndarray) else list(gray)
    out = []
    for t in grays:
        g = np.asarray(t)
        if min(g.shape[:2]) < 2:
            continue
        hh = np.abs(_haar_hh(g.astype(np.float32)))
        n = max(1, min(tile // 2, hh.shape[0], hh.shape[1]))
        by, bx = hh.shape[0] // n, hh.shape[1] // n
        # |HH| of 8-bit pixels is a multiple of 0.5: twice it is a small integer, and a partition of those
        # integers per block gives the block's (lower) median quickly.
        k = np.rint(hh[: by * n, : bx * n] * 2).astype(np.uint16)
        blocks = k.reshape(by, n, bx, n).transpose(0, 2, 1, 3).reshape(by * bx, n * n)
        mid = (n * n - 1) // 2
        sig = np.partition(blocks, mid, axis=1)[:, mid] / (2 * 0.6745)
        g8 = g[: by * n * 2, : bx * n * 2]
        g8 = g8 if g8.dtype == np.uint8 else np.clip(g8, 0, 255).astype(np.uint8)
        clip = cv2.inRange(g8, 3, 252)  # 255 where not clipped
        clipped = 1.0 - cv2.resize(clip, (bx, by), interpolation=cv2.INTER_AREA).astype(np.float64).ravel() / 255.0
        out.append(sig[clipped <= CLIPPED_SHARE])
    return np.concatenate(out) if out else np.zeros(0)


def noise_check(image: np.ndarray | list[np.ndarray], limit: float | None = None) -> SubCheck:
    """Noise: sigma of the smoother tiles of the grey image (native pixels: downscaling averages noise away).

    Falls back to the whole-image estimate when no tile is free of clipping (a blown-out or black image).
    Detail: ``whole`` (the whole-image estimate), ``tiles`` (how many tiles were read).
    """
    tiles = image if isinstance(image, list) else [image]
    grays = [to_gray(t) for t in tiles]
    if not any(min(g.shape) >= 2 for g in grays):
        raise ValueError("image too small for the noise check")
    whole = noise_sigma(grays)
    sig = tile_sigmas(grays)
    value = float(np.percentile(sig, NOISE_QUANTILE)) if sig.size else whole
    return make_subcheck("noise", value, limit, whole=round_sig(whole, 3), tiles=int(sig.size))


__all__ = ["CLIPPED_SHARE", "NOISE_QUANTILE", "NOISE_TILE", "noise_check", "noise_sigma", "tile_sigmas"]
