"""Scoring a digitized record against the true one: SNR and friends.

Definition
----------
The score is the signal-to-noise ratio of the PhysioNet/Computing in
Cardiology Challenge 2024 (*Digitization and Classification of ECG Images*;
Reyna MA et al., CinC 2024), computed per lead:

.. math:: \\mathrm{SNR} = 10 \\log_{10} \\frac{\\sum_n r_n^2}{\\sum_n (e_n - r_n)^2}

where the sums run over the samples where the reference ``r`` is *printed*
(finite), and estimate samples ``e`` that are NaN there count as 0 (missing
data is penalised as a flat line at 0 mV). The official code
(``compute_snr`` in ``helper_code.py`` of github.com/physionetchallenges/
evaluation-2024, commit b9a0f754) also: drops non-finite reference samples,
returns ``+inf`` when the error is exactly 0 and ``NaN`` when the reference
has no power, and averages leads with ``nanmean``.

Where we differ from the official 2024 code (on purpose):

1. **Alignment first.** The estimate is shifted by the integer number of
   samples within ``±max_shift_s`` (default 0.5 s) and offset by the constant
   within ``±max_offset_mv`` (default 1 mV) that minimise the error. The 2024
   code aligns nothing; the 2025 Kaggle re-run of the Challenge ("PhysioNet -
   Digitization of ECG Images") removes a time shift of at most 0.2 s and a
   vertical offset before its SNR, which is the idea followed here with wider
   limits. Set ``max_shift_s=0`` and ``max_offset_mv=0`` to get the official
   2024 value.
2. **Coverage weighting.** A positive SNR is multiplied by the fraction of
   printed samples that the aligned estimate covers (is finite). A negative
   SNR is left as is (multiplying it would reward missing data).
3. **Means are capped.** :func:`snr_db` returns ``+inf`` for a perfect
   estimate, as the Challenge does (an error below 1e-20 of the signal
   power, i.e. above 200 dB, is float round-off and counts as perfect).
   :func:`mean_snr_db` (also in ``attrs["mean_snr_db"]`` of
   :func:`score_record`) clips each lead at :data:`SNR_CAP_DB` = 60 dB
   before averaging so that one perfect lead does not make the mean infinite.

Edge cases: a reference with no printed sample, or whose printed samples are
all 0 mV, gives ``NaN`` (ignored by the means). An all-NaN estimate gives
0 dB (error = signal power, coverage 0).

Examples
--------
>>> import numpy as np
>>> t = np.arange(5000) / 500
>>> ref = np.sin(2 * np.pi * 1.2 * t)
>>> round(snr_db(ref, 0.9 * ref, fs=500), 6)
20.0
>>> snr_db(ref, ref + 0.3, fs=500)  # a constant offset within 1 mV is forgiven
inf
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigurationError
from .record import ECGRecord

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SNR_CAP_DB", "Alignment", "align", "mean_snr_db", "score_record", "snr_db"]

#: Per-lead cap applied before averaging SNRs, dB.
SNR_CAP_DB = 60.0
#: An error below this fraction of the signal power (200 dB) is float round-off: SNR = inf.
_EXACT = 1e-20


@dataclass(frozen=True, eq=False)
class Alignment:
    """Best shift and offset of an estimate onto a reference.

    Attributes
    ----------
    shift_samples : int
        The aligned estimate is ``estimate[n + shift_samples] + offset_mv``.
    shift_s : float
        The same in seconds.
    offset_mv : float
        Constant added to the estimate, mV.
    aligned : ndarray
        Aligned estimate on the reference's samples (NaN where missing).
    error_power : float
        Sum of squared errors over the printed samples (missing = 0 mV), mV².
    signal_power : float
        Sum of squared reference samples where printed, mV².
    coverage : float
        Fraction of printed samples the aligned estimate covers (0..1).
    n_printed : int
        Number of printed (finite) reference samples.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.sin(np.linspace(0, 20, 1000))
    >>> al = align(ref, np.roll(ref, 5) + 0.1, fs=100)
    >>> al.shift_samples, round(al.offset_mv, 3), al.coverage
    (5, -0.1, 0.995)
    """

    shift_samples: int
    shift_s: float
    offset_mv: float
    aligned: np.ndarray
    error_power: float
    signal_power: float
    coverage: float
    n_printed: int

    @property
    def raw_snr_db(self) -> float:
        """SNR before coverage weighting, dB (inf if exact, NaN if no signal)."""
        if self.n_printed == 0 or self.signal_power <= 0:
            return float("nan")
        if self.error_power <= _EXACT * self.signal_power:
            return float("inf")
        return float(10.0 * np.log10(self.signal_power / self.error_power))

    @property
    def snr_db(self) -> float:
        """Coverage-weighted SNR, dB (see the module docstring)."""
        raw = self.raw_snr_db
        return raw * self.coverage if raw > 0 else raw


def align(reference: np.ndarray, estimate: np.ndarray, fs: float, *,
          max_shift_s: float = 0.5, max_offset_mv: float = 1.0) -> Alignment:
    """Find the time shift and vertical offset that best fit ``estimate`` to ``reference``.

    Parameters
    ----------
    reference : ndarray of shape (n,)
        True lead in mV; NaN where not printed (not scored).
    estimate : ndarray of shape (m,)
        Digitized lead in mV at the same ``fs``; NaN where missing. It is
        truncated or NaN-padded to ``n`` samples.
    fs : float
        Sampling rate of both, Hz.
    max_shift_s : float, default 0.5
        Largest time shift tried, s (integer samples; ties go to the smallest shift).
    max_offset_mv : float, default 1.0
        Largest constant offset allowed, mV.

    Returns
    -------
    Alignment

    Raises
    ------
    ConfigurationError
        If an input is not 1-D or a limit is negative.

    Examples
    --------
    >>> ref = np.r_[np.full(10, np.nan), np.sin(np.arange(100) / 5), np.full(10, np.nan)]
    >>> est = np.roll(ref, 3)  # estimate 3 samples late
    >>> a = align(ref, np.nan_to_num(est), fs=100)
    >>> a.shift_samples, a.raw_snr_db
    (3, inf)
    """
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.ndim != 1 or est.ndim != 1:
        raise ConfigurationError(f"reference and estimate must be 1-D; got {ref.shape}, {est.shape}")
    if max_shift_s < 0 or max_offset_mv < 0:
        raise ConfigurationError("max_shift_s and max_offset_mv must be >= 0")
    n = ref.size
    printed = np.flatnonzero(np.isfinite(ref))
    k_max = int(np.floor(max_shift_s * fs + 1e-9))
    if printed.size == 0:
        return Alignment(0, 0.0, 0.0, np.full(n, np.nan), 0.0, 0.0, 0.0, 0)
    a, b = int(printed[0]), int(printed[-1]) + 1
    r = ref[a:b]
    p = np.isfinite(r)
    r0 = np.where(p, r, 0.0)
    padded = np.full(b - a + 2 * k_max, np.nan)
    lo, hi = max(0, a - k_max), min(est.size, b + k_max)
    padded[lo - (a - k_max): hi - (a - k_max)] = est[lo:hi]
    windows = np.lib.stride_tricks.sliding_window_view(padded, b - a)  # row j: shift j - k_max
    cov = np.isfinite(windows) & p[None, :]
    d = np.where(cov, r0[None, :] - np.nan_to_num(windows), 0.0)
    n_cov = cov.sum(axis=1)
    s1, s2 = d.sum(axis=1), (d * d).sum(axis=1)
    c = np.clip(s1 / np.maximum(n_cov, 1), -max_offset_mv, max_offset_mv)
    missing_power = ((r0 * r0)[None, :] * (p[None, :] & ~cov)).sum(axis=1)
    err = np.maximum(s2 - 2 * c * s1 + n_cov * c * c, 0.0) + missing_power
    shifts = np.arange(-k_max, k_max + 1)
    order = np.argsort(np.abs(shifts), kind="stable")  # ties -> smallest |shift|
    j = int(order[np.argmin(err[order])])
    aligned = np.full(n, np.nan)
    aligned[a:b] = windows[j] + c[j]
    resid = np.where(cov[j], aligned[a:b] - r0, 0.0)  # exact error of the chosen fit
    return Alignment(int(shifts[j]), float(shifts[j] / fs), float(c[j]), aligned,
                     float((resid * resid).sum() + missing_power[j]), float((r0 * r0).sum()),
                     float(n_cov[j] / p.sum()), int(p.sum()))


def snr_db(reference: np.ndarray, estimate: np.ndarray, fs: float, *,
           max_shift_s: float = 0.5, max_offset_mv: float = 1.0) -> float:
    """Coverage-weighted, aligned SNR of one lead, dB (see the module docstring).

    Parameters
    ----------
    reference, estimate, fs, max_shift_s, max_offset_mv
        As in :func:`align`.

    Returns
    -------
    float
        ``+inf`` for a perfect estimate, ``NaN`` if the reference has no
        printed power, 0 for an all-NaN estimate.

    Examples
    --------
    >>> ref = np.sin(2 * np.pi * np.arange(1000) / 100)
    >>> round(snr_db(ref, 0.9 * ref, fs=100, max_offset_mv=0), 3)
    20.0
    >>> snr_db(ref, np.full(1000, np.nan), fs=100)
    0.0
    """
    return align(reference, estimate, fs, max_shift_s=max_shift_s,
                 max_offset_mv=max_offset_mv).snr_db


def mean_snr_db(values: Iterable[float], *, cap_db: float = SNR_CAP_DB) -> float:
    """Mean of per-lead SNRs, each clipped at ``cap_db``, ignoring NaN.

    Parameters
    ----------
    values : iterable of float
        Per-lead SNRs, dB (``inf`` for an exact lead, NaN for an empty one).
    cap_db : float, default SNR_CAP_DB
        Each value is clipped at this before averaging, dB.

    Returns
    -------
    float
        The mean, dB; NaN when every value is NaN.

    Examples
    --------
    >>> mean_snr_db([10.0, float("inf"), float("nan")])
    35.0
    """
    arr = np.asarray(list(values), dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return float("nan")
    return float(np.mean(np.minimum(arr, cap_db)))


def score_record(reference: ECGRecord, estimate: ECGRecord, *, max_shift_s: float = 0.5,
                 max_offset_mv: float = 1.0, cap_db: float = SNR_CAP_DB) -> pd.DataFrame:
    """Score every lead of ``estimate`` against ``reference``.

    Parameters
    ----------
    reference : ECGRecord
        True record (NaN where not printed), e.g. ``SheetTruth.reference``.
    estimate : ECGRecord
        Digitized record. Leads are matched by name (a missing lead scores as
        all-NaN); a different ``fs`` is resampled linearly to the reference's.
    max_shift_s, max_offset_mv : float
        Alignment limits (see :func:`align`).
    cap_db : float, default SNR_CAP_DB
        Cap applied per lead before averaging.

    Returns
    -------
    pandas.DataFrame
        One row per reference lead, indexed by lead name, columns ``snr_db``,
        ``raw_snr_db``, ``pearson_r``, ``rmse_mv`` (over covered samples),
        ``coverage``, ``shift_s``, ``offset_mv``. The record's score,
        ``mean_snr_db(df["snr_db"])`` (leads capped at ``cap_db``), is also in
        ``df.attrs["mean_snr_db"]``.

    Examples
    --------
    >>> rec = ECGRecord(np.tile(np.sin(np.arange(5000) / 30)[:, None], 12), fs=500)
    >>> df = score_record(rec, rec)
    >>> float(df.loc["II", "coverage"]), df.attrs["mean_snr_db"]
    (1.0, 60.0)
    """
    import pandas as pd

    est = _resampled(estimate, reference.fs, reference.n_samples)
    rows = {}
    for lead in reference.lead_names:
        ref = reference.lead(lead)
        e = est.lead(lead) if lead in est.lead_names else np.full(reference.n_samples, np.nan)
        al = align(ref, e, reference.fs, max_shift_s=max_shift_s, max_offset_mv=max_offset_mv)
        rows[lead] = {"snr_db": al.snr_db, "raw_snr_db": al.raw_snr_db,
                      **_agreement(ref, al.aligned), "coverage": al.coverage,
                      "shift_s": al.shift_s, "offset_mv": al.offset_mv}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "lead"
    df.attrs["mean_snr_db"] = mean_snr_db(df["snr_db"], cap_db=cap_db)
    return df


def _agreement(ref: np.ndarray, aligned: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(ref) & np.isfinite(aligned)
    if ok.sum() < 2:
        return {"pearson_r": float("nan"), "rmse_mv": float("nan")}
    r, e = ref[ok], aligned[ok]
    rmse = float(np.sqrt(np.mean((e - r) ** 2)))
    if np.std(r) == 0 or np.std(e) == 0:
        return {"pearson_r": float("nan"), "rmse_mv": rmse}
    return {"pearson_r": float(np.corrcoef(r, e)[0, 1]), "rmse_mv": rmse}


def _resampled(record: ECGRecord, fs: float, n: int) -> ECGRecord:
    """Return ``record`` at ``fs`` with ``n`` samples (linear, NaN-aware; pad with NaN)."""
    sig = record.signal
    if record.fs != fs:
        t_new = np.arange(n) / fs
        t_old = record.time_s
        finite = np.isfinite(sig)
        vals = np.column_stack([np.interp(t_new, t_old, np.where(finite[:, j], sig[:, j], 0.0),
                                          left=np.nan, right=np.nan)
                                for j in range(sig.shape[1])])
        weight = np.column_stack([np.interp(t_new, t_old, finite[:, j].astype(float),
                                            left=0.0, right=0.0)
                                  for j in range(sig.shape[1])])
        sig = np.where(weight > 0.999, vals, np.nan)
    out = np.full((n, sig.shape[1]), np.nan)
    m = min(n, sig.shape[0])
    out[:m] = sig[:m]
    return ECGRecord(out, fs, record.lead_names, name=record.name)
