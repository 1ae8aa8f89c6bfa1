"""Optional cleaning of digitized (or any) ECG signals.

Both filters are zero-phase (forward-backward) and NaN-aware: every run of
finite samples of every lead is filtered on its own, NaN stays NaN. They work
on any ``(n_samples,)`` or ``(n_samples, n_leads)`` array in mV.

Examples
--------
>>> import numpy as np
>>> fs = 500.0
>>> t = np.arange(5000) / fs
>>> x = np.sin(2 * np.pi * 10 * t) + 2.0 * np.sin(2 * np.pi * 0.2 * t)
>>> y = remove_baseline_wander(x, fs)
>>> bool(np.abs(y[1000:4000] - np.sin(2 * np.pi * 10 * t[1000:4000])).max() < 0.2)
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import signal as sps

from .errors import ConfigurationError

__all__ = ["notch_powerline", "remove_baseline_wander"]

#: Quality factor of the power-line notch (bandwidth = freq / Q, Hz).
NOTCH_Q = 30.0


def remove_baseline_wander(
    signal: np.ndarray, fs: float, cutoff_hz: float = 0.5, *, order: int = 2
) -> np.ndarray:
    """Remove slow baseline drift with a zero-phase Butterworth high-pass filter.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,) or (n_samples, n_leads)
        Signal in mV; NaN marks missing samples.
    fs : float
        Sampling rate in Hz.
    cutoff_hz : float, default 0.5
        -3 dB corner of the single pass (the forward-backward pass gives -6 dB
        there and twice the roll-off).
    order : int, default 2
        Butterworth order of one pass.

    Returns
    -------
    ndarray
        Filtered signal, same shape, float64, NaN where the input was NaN.
        Runs of finite samples too short for the filter have their linear
        trend removed instead.

    Raises
    ------
    ConfigurationError
        If ``fs`` or ``cutoff_hz`` is not positive or ``cutoff_hz >= fs / 2``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.full(2000, 1.5)
    >>> float(np.abs(remove_baseline_wander(x, 500.0)).max()) < 1e-6
    True
    """
    _check_freq(fs, cutoff_hz, "cutoff_hz")
    sos = sps.butter(order, cutoff_hz, btype="highpass", fs=fs, output="sos")
    return _apply_to_finite_runs(signal, lambda x: sps.sosfiltfilt(sos, x), _min_len(sos))


def notch_powerline(
    signal: np.ndarray, fs: float, freq_hz: float = 50.0, *, q: float = NOTCH_Q
) -> np.ndarray:
    """Remove power-line interference (50 or 60 Hz) with a zero-phase IIR notch.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,) or (n_samples, n_leads)
        Signal in mV; NaN marks missing samples.
    fs : float
        Sampling rate in Hz.
    freq_hz : float, default 50
        Mains frequency, Hz (50 in Europe/Asia, 60 in the Americas).
    q : float, default NOTCH_Q
        Quality factor: the notch is ``freq_hz / q`` Hz wide.

    Returns
    -------
    ndarray
        Filtered signal, same shape, float64, NaN where the input was NaN.

    Raises
    ------
    ConfigurationError
        If ``freq_hz`` is not below the Nyquist frequency ``fs / 2``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(5000) / 500.0
    >>> y = notch_powerline(np.sin(2 * np.pi * 50 * t), 500.0, 50)
    >>> float(np.abs(y[1000:4000]).max()) < 0.01
    True
    """
    _check_freq(fs, freq_hz, "freq_hz")
    b, a = sps.iirnotch(freq_hz, q, fs=fs)
    sos = sps.tf2sos(b, a)
    return _apply_to_finite_runs(signal, lambda x: sps.sosfiltfilt(sos, x), _min_len(sos))


def _check_freq(fs: float, freq_hz: float, name: str) -> None:
    if not (np.isfinite(fs) and fs > 0):
        raise ConfigurationError(f"fs must be a positive number of Hz; got {fs!r}")
    if not (np.isfinite(freq_hz) and 0 < freq_hz < fs / 2):
        raise ConfigurationError(
            f"{name} must be in (0, fs/2) = (0, {fs / 2:g}) Hz; got {freq_hz!r}"
        )


def _min_len(sos: np.ndarray) -> int:
    """Shortest run ``sosfiltfilt`` accepts with its default padding."""
    return 3 * (2 * len(sos) + 1) + 1


def _apply_to_finite_runs(
    signal: np.ndarray, filt: Callable[[np.ndarray], np.ndarray], min_len: int
) -> np.ndarray:
    """Apply ``filt`` to each run of finite samples of each column."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise ConfigurationError(f"signal must be 1-D or 2-D; got shape {x.shape}")
    out = np.full(x.shape, np.nan)
    cols = x[:, None] if x.ndim == 1 else x
    res = out[:, None] if x.ndim == 1 else out
    for j in range(cols.shape[1]):
        for start, stop in _finite_runs(cols[:, j]):
            seg = cols[start:stop, j]
            if stop - start >= min_len:
                res[start:stop, j] = filt(seg)
            elif stop - start >= 2:
                res[start:stop, j] = sps.detrend(seg, type="linear")
            else:
                res[start:stop, j] = 0.0
    return out


def _finite_runs(x: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of finite values in a 1-D array."""
    return _true_runs(np.isfinite(x))


def _true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` (stop exclusive) of each run of True in a 1-D boolean array.

    Examples
    --------
    >>> _true_runs(np.array([0, 1, 1, 0, 1], bool))
    [(1, 3), (4, 5)]
    """
    ok = np.concatenate(([False], np.asarray(mask, bool), [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(ok))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
