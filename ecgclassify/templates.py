"""Median-beat templates: each lead's median beat sampled on a fixed time grid (features v3).

:mod:`ecgclassify.features` reads amplitudes and intervals off one median beat
per lead. A model can also learn shapes directly from the beats: this module
samples each median beat every 20 ms from 80 ms before to 460 ms after the
QRS onset (28 values per lead, mV above the PR baseline). The ``"ensemble"``
feature model projects the 12 templates on their first principal components
(fitted on the training sheets).
"""

from __future__ import annotations

import numpy as np

__all__ = ["TEMPLATE_FEATURES", "TEMPLATE_OFFSETS_S", "beat_template"]

#: Times of the template samples from the QRS onset, s (-0.08 to +0.46 every 20 ms).
TEMPLATE_OFFSETS_S: tuple[float, ...] = tuple(round(-0.08 + 0.02 * k, 2) for k in range(28))
#: Per-lead template columns: (suffix, unit, description); named ``{lead}_{suffix}``.
TEMPLATE_FEATURES: tuple[tuple[str, str, str], ...] = tuple(
    (f"beat_{round(1000 * t):+d}ms", "mV",
     f"Median beat {round(1000 * t):+d} ms from QRS onset (20 ms mean), above the PR baseline")
    for t in TEMPLATE_OFFSETS_S)


def beat_template(beat: np.ndarray, fs: float, on: int, base: float) -> dict[str, float]:
    """The median beat sampled at :data:`TEMPLATE_OFFSETS_S` (mean over ±10 ms), in mV.

    Times are from the QRS onset, not the R peak: a detector's R mark may sit
    on the R, on the S or on the steepest slope, while the onset is where
    every lead's QRS starts.

    Parameters
    ----------
    beat : ndarray
        Median beat in mV.
    fs : float
        Sampling rate, Hz.
    on : int
        QRS onset, index into ``beat``.
    base : float
        PR-segment baseline, mV (subtracted).

    Returns
    -------
    dict of str to float
        The suffixes of :data:`TEMPLATE_FEATURES`; NaN where the beat is NaN
        or outside it.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(351) / 500
    >>> beat = np.exp(-0.5 * ((t - 0.25) / 0.01) ** 2)  # R peak 20 ms after onset
    >>> tpl = beat_template(beat, 500.0, 115, 0.0)
    >>> len(tpl), round(tpl["beat_+20ms"], 2), round(tpl["beat_+100ms"], 2)
    (28, 0.83, 0.0)
    """
    half = max(round(0.01 * fs), 1)
    out = {}
    for (suffix, _, _), t in zip(TEMPLATE_FEATURES, TEMPLATE_OFFSETS_S, strict=True):
        i = on + round(t * fs)
        win = beat[max(i - half, 0):min(i + half + 1, beat.size)]
        win = win[np.isfinite(win)]
        out[suffix] = float(np.mean(win)) - base if win.size else np.nan
    return out
