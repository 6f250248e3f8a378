"""Spectral detection of FIMBA (described in the FIMBA paper, absent from its code).

The data matrix (samples x genes) is read as an image; its power spectrum is
log(1 + |FFT2|^2), centred. The spectra of the original and the attacked matrix
are compared with SSIM (Wang et al., 2004; scikit-image). SSIM near 1 means
the attack leaves the spectrum as it was (hard to detect this way).
"""

from __future__ import annotations

import numpy as np


def power_spectrum(X: np.ndarray) -> np.ndarray:
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(X))) ** 2)


def spectral_ssim(original: np.ndarray, attacked: np.ndarray) -> float:
    """SSIM of the two power spectra; NaN when the matrix is too small for a 3x3 window."""
    from skimage.metrics import structural_similarity

    if min(original.shape) < 3:
        return float("nan")
    a, b = power_spectrum(original), power_spectrum(attacked)
    win = min(7, min(original.shape) - (1 - min(original.shape) % 2))
    data_range = float(max(a.max(), b.max()) - min(a.min(), b.min())) or 1.0
    return float(structural_similarity(a, b, data_range=data_range, win_size=win))
