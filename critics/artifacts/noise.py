"""Noise sub-check: Gaussian noise sigma of native grey pixels (Haar diagonal band, robust MAD)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from critics.artifacts.common import SubCheck, make_subcheck, to_gray


def noise_sigma(gray: np.ndarray | Iterable[np.ndarray]) -> float:
    """Gaussian noise sigma from the finest Haar diagonal detail band: median(|HH|) / 0.6745.

    The same robust estimator as skimage.restoration.estimate_sigma (which needs PyWavelets and uses
    db2), with a Haar wavelet so it is a few array operations. Several tiles may be given.
    """
    tiles = [gray] if isinstance(gray, np.ndarray) else list(gray)
    parts = []
    for t in tiles:
        f = np.asarray(t, np.float32)
        h, w = (f.shape[0] // 2) * 2, (f.shape[1] // 2) * 2
        if h < 2 or w < 2:
            continue
        f = f[:h, :w]
        hh = (f[0::2, 0::2] - f[0::2, 1::2] - f[1::2, 0::2] + f[1::2, 1::2]) * 0.5
        parts.append(np.abs(hh).ravel())
    if not parts:
        return 0.0
    return float(np.median(np.concatenate(parts))) / 0.6745


def noise_check(image: np.ndarray | list[np.ndarray], limit: float | None = None) -> SubCheck:
    """Noise: sigma of the grey image (native pixels: downscaling would average the noise away)."""
    tiles = image if isinstance(image, list) else [image]
    grays = [to_gray(t) for t in tiles]
    if not any(min(g.shape) >= 2 for g in grays):
        raise ValueError("image too small for the noise check")
    return make_subcheck("noise", noise_sigma(grays))
