"""Classical ECG features of a 12-lead record (NeuroKit2 based).

The chain is NeuroKit2's: ``ecg_clean`` → ``ecg_peaks`` → ``ecg_delineate``
(``method="dwt"``), run **once** on the rhythm lead (the lead with the longest
recorded segment, the 10 s strip of a ``3x4+1`` sheet). The R-peak times found
there are reused for every other lead: each lead's recorded (non-NaN) segment
(2.5 s on a ``3x4`` sheet) is cut into beats around those times, a median beat
is formed, and amplitudes and intervals are read off it. Without a rhythm
strip, each lead finds its own R peaks.

Every feature is a float; a lead or a measure that cannot be computed is
``NaN`` (never an exception), with at most one :class:`FeatureWarning` per
process. The feature table :data:`FEATURES` (name, unit, description) is
rendered into :func:`extract_features`' docstring.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ecgdigitize.errors import ConfigurationError
from ecgdigitize.record import STANDARD_LEADS, ECGRecord

from .templates import TEMPLATE_FEATURES, beat_template

__all__ = [
    "FEATURES",
    "FEATURES_VERSION",
    "MEASURE_SUFFIXES",
    "ECGFeatureExtractor",
    "FeatureWarning",
    "extract_features",
    "feature_names",
    "features_table_markdown",
]

#: Bumped whenever a feature's definition changes (part of cache keys).
FEATURES_VERSION = "3"

#: Beat window around each R peak, s.
_BEAT_WINDOW_S = (-0.25, 0.45)
#: Rhythm-lead preference when several leads are equally long.
_RHYTHM_PREFERENCE = ("II", "III", "I", "V1", "V5", "aVF")

#: Global features: (name, unit, description).
GLOBAL_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("hr_bpm", "1/min", "Heart rate, 60 / mean RR on the rhythm lead"),
    ("rr_mean_s", "s", "Mean RR interval"),
    ("rr_sd_s", "s", "Standard deviation of RR intervals"),
    ("rr_cv", "1", "RR coefficient of variation (SD / mean)"),
    ("rr_irregularity", "1", "RMSSD / mean RR (successive-difference irregularity)"),
    ("rr_range_ratio", "1", "(max RR - min RR) / mean RR"),
    ("n_beats", "count", "R peaks found on the rhythm lead"),
    ("beat_corr_mean", "1", "Mean correlation of each QRS with the median QRS (rhythm lead)"),
    ("beat_corr_min", "1", "Lowest such correlation (ectopic beats lower it)"),
    ("ectopic_fraction", "1", "Fraction of beats whose QRS correlates < 0.9 with the median QRS"),
    ("beat_residual_mv", "mV", "RMS difference of each QRS from the median QRS (rhythm lead)"),
    ("p_amp_mv", "mV", "P-wave amplitude of the rhythm lead's median beat"),
    ("p_wave_fraction", "1", "Fraction of beats with a P wave found by DWT delineation"),
    ("pr_s", "s", "PR interval, P onset to QRS onset (DWT, median over beats)"),
    ("qrs_s", "s", "QRS duration, median over leads of the median-beat QRS width"),
    ("qt_s", "s", "QT interval, QRS onset to T offset (DWT, median over beats)"),
    ("qtc_s", "s", "QT corrected by Bazett, QT / sqrt(RR in s)"),
    ("axis_deg", "deg", "Frontal QRS axis, atan2(net QRS aVF, net QRS I)"),
    ("n_q_waves", "count", "Leads with a pathological Q (>= 30 ms and >= 0.1 mV, or > R/4)"),
    ("st_max_mv", "mV", "Largest ST deviation at J+60 ms over leads (elevation)"),
    ("st_min_mv", "mV", "Smallest ST deviation at J+60 ms over leads (depression)"),
    ("n_st_elevated", "count", "Leads with ST at J+60 ms >= +0.1 mV"),
    ("n_st_depressed", "count", "Leads with ST at J+60 ms <= -0.1 mV"),
    ("n_t_inverted", "count", "Leads other than aVR with T amplitude <= -0.1 mV"),
    ("n_leads_missing", "count", "Leads with no recorded sample"),
    ("st_elev_sum_mv", "mV", "Sum over leads (not aVR) of positive ST deviation at J+60 ms"),
    ("t_neg_sum_mv", "mV", "Sum over leads (not aVR) of negative T amplitude, as a positive number"),
    *((f"{q}_{terr}_mv", "mV", f"Mean {what} over the {terr} leads ({', '.join(leads)})")
      for q, what in (("st", "ST deviation at J+60 ms"), ("t", "T amplitude"),
                      ("q", "Q-wave depth"), ("r", "R amplitude"))
      for terr, leads in (("anterior", ("V1", "V2", "V3", "V4")),
                          ("inferior", ("II", "III", "aVF")),
                          ("lateral", ("I", "aVL", "V5", "V6")))),
)
#: Lead groups of the territory features.
TERRITORIES: dict[str, tuple[str, ...]] = {
    "anterior": ("V1", "V2", "V3", "V4"),
    "inferior": ("II", "III", "aVF"),
    "lateral": ("I", "aVL", "V5", "V6"),
}
#: Per-lead features: (suffix, unit, description); named ``{lead}_{suffix}``.
LEAD_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("r_amp_mv", "mV", "R amplitude of the median beat above the PR baseline"),
    ("s_amp_mv", "mV", "S amplitude (<= 0) after the R peak"),
    ("q_depth_mv", "mV", "Q-wave depth (>= 0) before the R peak"),
    ("q_width_s", "s", "Q-wave width, time below baseline before the R upstroke"),
    ("qrs_net_mv", "mV", "Net QRS amplitude, R + S"),
    ("st60_mv", "mV", "ST deviation at J+60 ms from the PR baseline"),
    ("t_amp_mv", "mV", "T-wave amplitude, signed (negative = inverted)"),
    *TEMPLATE_FEATURES,
)
#: Suffixes of the per-lead measures (amplitudes, widths), as opposed to template samples.
MEASURE_SUFFIXES: tuple[str, ...] = tuple(s for s, _, _ in LEAD_FEATURES
                                          if not s.startswith("beat_"))


def feature_names(lead_names: Sequence[str] = STANDARD_LEADS) -> list[str]:
    """Ordered feature names: the global ones, the per-lead measures, the per-lead templates.

    Per-lead columns are ``{lead}_{suffix}``: first every lead's measures
    (:data:`MEASURE_SUFFIXES`), then every lead's median-beat samples
    (``{lead}_beat_{t}ms``).

    Parameters
    ----------
    lead_names : sequence of str, default STANDARD_LEADS
        Leads whose per-lead features are named, in order.

    Returns
    -------
    list of str
        The column order of :func:`extract_features` and
        :class:`ECGFeatureExtractor` (units in :data:`FEATURES`).

    Examples
    --------
    >>> names = feature_names()
    >>> names[0], names[122], names[-1], len(names)
    ('hr_bpm', 'V6_t_amp_mv', 'V6_beat_+460ms', 459)
    """
    templates = [s for s, _, _ in LEAD_FEATURES if s not in MEASURE_SUFFIXES]
    return [g[0] for g in GLOBAL_FEATURES] + [
        f"{lead}_{suffix}" for suffixes in (MEASURE_SUFFIXES, templates)
        for lead in lead_names for suffix in suffixes]


#: The table of every feature: ``name -> (unit, description)`` (per-lead ones use ``{lead}``).
FEATURES: dict[str, tuple[str, str]] = {
    **{n: (u, d) for n, u, d in GLOBAL_FEATURES},
    **{f"{{lead}}_{s}": (u, d) for s, u, d in LEAD_FEATURES},
}


def features_table_markdown() -> str:
    """Return :data:`FEATURES` as a Markdown table (name | unit | description).

    Returns
    -------
    str
        A header row, a separator row, then one row per entry of :data:`FEATURES`.

    Examples
    --------
    >>> table = features_table_markdown().splitlines()
    >>> table[0], table[2]
    ('| name | unit | description |', '| `hr_bpm` | 1/min | Heart rate, 60 / mean RR on the rhythm lead |')
    """
    rows = ["| name | unit | description |", "| --- | --- | --- |"]
    rows += [f"| `{n}` | {u} | {d} |" for n, (u, d) in FEATURES.items()]
    return "\n".join(rows)


class FeatureWarning(RuntimeWarning):
    """A lead or measure could not be computed and was set to NaN."""


_warned = False


def _warn_once(message: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"{message} (further feature warnings are silenced)", FeatureWarning,
                      stacklevel=3)


# --- segments and R peaks ------------------------------------------------------
def _finite_run(x: np.ndarray) -> tuple[int, int]:
    """Start and stop index of the longest run of finite samples (0, 0 if none)."""
    ok = np.concatenate(([False], np.isfinite(x), [False]))
    edges = np.flatnonzero(np.diff(ok.astype(np.int8)))
    if edges.size == 0:
        return 0, 0
    starts, stops = edges[::2], edges[1::2]
    k = int(np.argmax(stops - starts))
    return int(starts[k]), int(stops[k])


def _choose_rhythm_lead(record: ECGRecord, rhythm_lead: str | None) -> str | None:
    if rhythm_lead is not None:
        if rhythm_lead not in record.lead_names:
            raise ConfigurationError(f"rhythm_lead {rhythm_lead!r} not in {record.lead_names}")
        return rhythm_lead
    lengths = {n: np.subtract(*_finite_run(record.lead(n))[::-1]) for n in record.lead_names}
    best = max(lengths.values(), default=0)
    if best == 0:
        return None
    tied = [n for n in record.lead_names if lengths[n] >= 0.95 * best]
    preferred = [n for n in _RHYTHM_PREFERENCE if n in tied]
    return preferred[0] if preferred else tied[0]


def _clean(x: np.ndarray, fs: float) -> np.ndarray:
    import neurokit2 as nk

    return np.asarray(nk.ecg_clean(x, sampling_rate=round(fs), method="neurokit"))


def _bandpass(x: np.ndarray, fs: float) -> np.ndarray:
    """0.5-40 Hz zero-phase Butterworth for morphology.

    NeuroKit2's ``ecg_clean`` adds a 50 Hz moving-average filter that blunts
    narrow R waves, so amplitudes are read from this gentler filter instead.
    """
    from scipy.signal import butter, sosfiltfilt

    sos = butter(2, [0.5, min(40.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    return np.asarray(sosfiltfilt(sos, x - np.median(x)))


def _find_rpeaks(cleaned: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices by consensus of three detectors; empty on failure.

    NeuroKit2's ``"kalidas2017"`` (stationary wavelets) and ``"neurokit"``
    (gradient) detectors and a QRS-slope-energy detector each propose peaks;
    the proposal agreeing best with the other two (within 60 ms) is kept. A
    single detector fails on some digitized sheets (tall hyperacute T waves,
    tiny QRS complexes); all three rarely fail the same way.
    """
    import neurokit2 as nk

    if cleaned.size < int(1.0 * fs) or not np.any(np.abs(np.diff(cleaned)) > 0):
        return np.zeros(0, dtype=int)
    proposals: list[np.ndarray] = []
    for method in ("kalidas2017", "neurokit"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, info = nk.ecg_peaks(cleaned, sampling_rate=round(fs), method=method)
            proposals.append(np.asarray(info["ECG_R_Peaks"], dtype=int))
        except Exception as exc:  # neurokit raises many types on odd input
            _warn_once(f"R-peak detection ({method}) failed: {exc}")
            proposals.append(np.zeros(0, dtype=int))
    proposals.append(_slope_energy_peaks(cleaned, fs))
    tol = round(0.06 * fs)
    scores = [sum(_peak_agreement(a, b, tol) for b in proposals if b is not a)
              for a in proposals]
    return proposals[int(np.argmax(scores))]


def _slope_energy_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    """QRS detector: peaks of the smoothed |slope| of a 5-25 Hz band (T waves are slow)."""
    from scipy.signal import butter, find_peaks, sosfiltfilt

    sos = butter(2, [5.0, min(25.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    band = sosfiltfilt(sos, x - np.median(x))
    width = max(1, round(0.06 * fs))
    energy = np.convolve(np.abs(np.gradient(band)), np.ones(width) / width, mode="same")
    top = np.percentile(energy, 99)
    if not top > 0:
        return np.zeros(0, dtype=int)
    found, _ = find_peaks(energy, distance=round(0.27 * fs), height=0.3 * top)
    half = round(0.06 * fs)
    peaks = [lo + int(np.argmax(np.abs(band[lo:p + half + 1])))
             for p in found for lo in [max(p - half, 0)]]
    return np.unique(np.asarray(peaks, dtype=int))


def _peak_agreement(a: np.ndarray, b: np.ndarray, tol: int) -> float:
    """Share of peaks matched within ``tol`` samples, over the larger set."""
    if a.size == 0 or b.size == 0:
        return 0.0
    dist = np.abs(a[:, None] - b[None, :]).min(axis=1)
    return float(np.sum(dist <= tol)) / max(a.size, b.size)


# --- rhythm features -------------------------------------------------------------
def _rr_features(rpeaks: np.ndarray, fs: float) -> dict[str, float]:
    out = dict.fromkeys(("hr_bpm", "rr_mean_s", "rr_sd_s", "rr_cv", "rr_irregularity",
                         "rr_range_ratio"), np.nan)
    out["n_beats"] = float(rpeaks.size)
    rr = np.diff(rpeaks) / fs
    rr = rr[(rr > 0.2) & (rr < 3.0)]
    if rr.size == 0:
        return out
    mean = float(np.mean(rr))
    out.update(hr_bpm=60.0 / mean, rr_mean_s=mean)
    if rr.size >= 2:
        sd = float(np.std(rr, ddof=1))
        rmssd = float(np.sqrt(np.mean(np.diff(rr) ** 2)))
        out.update(rr_sd_s=sd, rr_cv=sd / mean, rr_irregularity=rmssd / mean,
                   rr_range_ratio=float(np.ptp(rr)) / mean)
    return out


def _beat_correlation(cleaned: np.ndarray, rpeaks: np.ndarray, fs: float) -> dict[str, float]:
    half = round(0.08 * fs)
    beats = [cleaned[r - half:r + half] for r in rpeaks if r - half >= 0 and r + half <= cleaned.size]
    if len(beats) < 2:
        return dict.fromkeys(("beat_corr_mean", "beat_corr_min", "ectopic_fraction",
                              "beat_residual_mv"), np.nan)
    b = np.asarray(beats)
    tmpl = np.median(b, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        bc = b - b.mean(axis=1, keepdims=True)
        tc = tmpl - tmpl.mean()
        corr = bc @ tc / (np.linalg.norm(bc, axis=1) * np.linalg.norm(tc))
    resid = float(np.sqrt(np.nanmean((b - tmpl) ** 2)))
    return {"beat_corr_mean": float(np.nanmean(corr)), "beat_corr_min": float(np.nanmin(corr)),
            "ectopic_fraction": float(np.mean(corr < 0.9)), "beat_residual_mv": resid}


def _interval_features(cleaned: np.ndarray, rpeaks: np.ndarray, fs: float, rr_mean_s: float,
                       beat: dict[str, float]) -> dict[str, float]:
    """PR, QT, QTc and P-wave fraction.

    P onsets and T offsets come from NeuroKit2's DWT delineation (median
    offset from the R peak over beats); QRS onset and, when DWT finds no T
    offset, T end come from the rhythm lead's median beat (``beat``), which is
    more stable than DWT's QRS onsets.
    """
    import neurokit2 as nk

    out = {"p_wave_fraction": np.nan, "pr_s": np.nan, "qt_s": np.nan, "qtc_s": np.nan}
    if rpeaks.size < 2:
        return out
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, waves = nk.ecg_delineate(cleaned, rpeaks, sampling_rate=round(fs), method="dwt")
    except Exception as exc:  # neurokit raises many types on odd input
        _warn_once(f"DWT delineation failed: {exc}")
        waves = {}

    def rel(key: str, lo: float, hi: float) -> float:
        v = np.asarray(waves.get(key, []), dtype=float)
        d = (v - rpeaks[:v.size]) / fs if v.size else v
        d = _plausible(d, lo, hi)
        return float(np.median(d)) if d.size else np.nan

    p_peak = np.asarray(waves.get("ECG_P_Peaks", []), dtype=float)
    if p_peak.size:
        out["p_wave_fraction"] = float(np.mean(np.isfinite(p_peak)))
    on = beat.get("_on_s", np.nan)
    p_on = rel("ECG_P_Onsets", -0.45, -0.05)
    t_end = rel("ECG_T_Offsets", 0.15, 0.65)
    if not np.isfinite(t_end):
        t_end = beat.get("_t_end_s", np.nan)
    if np.isfinite(p_on) and np.isfinite(on) and 0.06 <= on - p_on <= 0.40:
        out["pr_s"] = on - p_on
    if np.isfinite(t_end) and np.isfinite(on) and 0.2 <= t_end - on <= 0.7:
        out["qt_s"] = t_end - on
        if np.isfinite(rr_mean_s):
            out["qtc_s"] = out["qt_s"] / np.sqrt(rr_mean_s)
    return out


def _plausible(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return values[np.isfinite(values) & (values >= lo) & (values <= hi)]


# --- per-lead morphology -------------------------------------------------------------
def _median_beat(x: np.ndarray, rpeaks: np.ndarray, fs: float) -> np.ndarray | None:
    """Median beat over ``_BEAT_WINDOW_S`` around each R peak (NaN outside ``x``)."""
    pre, post = (round(abs(w) * fs) for w in _BEAT_WINDOW_S)
    beats = []
    for r in rpeaks:
        lo, hi = r - pre, r + post + 1
        beat = np.full(pre + post + 1, np.nan)
        src = x[max(lo, 0):min(hi, x.size)]
        beat[max(lo, 0) - lo:max(lo, 0) - lo + src.size] = src
        if np.isfinite(beat[pre - int(0.06 * fs):pre + int(0.06 * fs)]).all():
            beats.append(beat)
    if not beats:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(np.asarray(beats), axis=0)


def _qrs_bounds(beat: np.ndarray, fs: float) -> tuple[int, int]:
    """QRS onset and offset (indices in ``beat``): where |slope| exceeds 15 % of its peak."""
    pre = round(abs(_BEAT_WINDOW_S[0]) * fs)
    lo, hi = pre - int(0.10 * fs), pre + int(0.12 * fs)
    slope = np.abs(np.gradient(beat[lo:hi]))
    slope[~np.isfinite(slope)] = 0.0
    active = np.flatnonzero(slope > 0.15 * slope.max()) if slope.max() > 0 else np.array([0])
    return lo + int(active[0]), lo + int(active[-1])


def _lead_morphology(beat: np.ndarray, fs: float, rr_s: float) -> dict[str, float]:
    """Amplitudes (mV) and Q width (s) of one median beat."""
    pre = round(abs(_BEAT_WINDOW_S[0]) * fs)
    on, off = _qrs_bounds(beat, fs)
    base_seg = beat[max(on - int(0.03 * fs), 0):max(on - int(0.005 * fs), 1)]
    base = float(np.nanmedian(base_seg)) if np.isfinite(base_seg).any() else 0.0
    qrs = beat[on:off + 1] - base
    i_r = int(np.nanargmax(qrs))
    r_amp = max(float(qrs[i_r]), 0.0)
    s_amp = min(float(np.nanmin(qrs[i_r:])), 0.0)
    q_part = qrs[:i_r]
    q_depth = max(-float(np.nanmin(q_part)), 0.0) if q_part.size else 0.0
    below = q_part < -0.02
    q_width = float(np.sum(below)) / fs if q_depth > 0.02 else 0.0
    p_seg = beat[max(pre - round(0.25 * fs), 0):max(on - round(0.03 * fs), 1)] - base
    p_amp = float(p_seg[np.nanargmax(np.abs(p_seg))]) if np.isfinite(p_seg).any() else np.nan
    j60 = off + round(0.06 * fs)
    st60 = float(beat[j60] - base) if j60 < beat.size else np.nan
    t_lo = off + round(0.08 * fs)
    t_hi = min(pre + round(min(0.45, 0.7 * rr_s if np.isfinite(rr_s) else 0.45) * fs),
               beat.size)
    t_seg = beat[t_lo:t_hi] - base
    t_amp, t_end_s = np.nan, np.nan
    if np.isfinite(t_seg).any():
        i_t = int(np.nanargmax(np.abs(t_seg)))
        t_amp = float(t_seg[i_t])
        tail = beat[t_lo + i_t:] - base  # the T wave may end after the peak search window
        after = np.flatnonzero(np.abs(tail) < 0.15 * abs(t_amp))
        if after.size:
            t_end_s = (t_lo + i_t + int(after[0]) - pre) / fs
    return {"r_amp_mv": r_amp, "s_amp_mv": s_amp, "q_depth_mv": q_depth, "q_width_s": q_width,
            "qrs_net_mv": r_amp + s_amp, "st60_mv": st60, "t_amp_mv": t_amp,
            **beat_template(beat, fs, on, base),
            "_qrs_s": (off - on) / fs, "_on_s": (on - pre) / fs, "_t_end_s": t_end_s,
            "_p_amp_mv": p_amp}


def _lead_features(record: ECGRecord, lead: str, rpeak_times_s: np.ndarray | None,
                   rr_s: float) -> dict[str, float]:
    fs = record.fs
    x = record.lead(lead)
    start, stop = _finite_run(x)
    if stop - start < int(0.6 * fs):
        return {}
    seg = _bandpass(x[start:stop], fs) if stop - start > int(1.0 * fs) else (
        x[start:stop] - np.median(x[start:stop]))
    if rpeak_times_s is None:
        peaks = _find_rpeaks(_clean(x[start:stop], fs), fs) if stop - start > fs else np.zeros(
            0, dtype=int)
    else:
        peaks = np.round(rpeak_times_s * fs).astype(int) - start
        peaks = peaks[(peaks >= 0) & (peaks < seg.size)]
    beat = _median_beat(seg, peaks, fs) if peaks.size else None
    if beat is None:
        return {}
    return _lead_morphology(beat, fs, rr_s)


# --- the public function ----------------------------------------------------------
def extract_features(record: ECGRecord, *, rhythm_lead: str | None = None,
                     lead_names: Sequence[str] = STANDARD_LEADS) -> dict[str, float]:
    """Compute the classical features of one 12-lead record.

    Parameters
    ----------
    record : ECGRecord
        Signal in mV, NaN where a lead was not printed (any layout).
    rhythm_lead : str, optional
        Lead used for R peaks, rhythm and intervals. Default: the lead with
        the longest recorded segment (II preferred among equals).
    lead_names : sequence of str, default STANDARD_LEADS
        Leads to describe; a lead absent from ``record`` gives NaN features.

    Returns
    -------
    dict of str to float
        Keys in the order of :func:`feature_names`; NaN where not computable.

    Raises
    ------
    ConfigurationError
        ``rhythm_lead`` is not a lead of ``record``.

    Examples
    --------
    >>> import neurokit2 as nk
    >>> from ecgdigitize.record import ECGRecord
    >>> x = nk.ecg_simulate(duration=10, sampling_rate=500, heart_rate=60, random_state=0)
    >>> feats = extract_features(ECGRecord(x[:, None], fs=500, lead_names=("II",)))
    >>> round(feats["hr_bpm"] / 10) * 10
    60
    """
    fs = record.fs
    out: dict[str, float] = dict.fromkeys(feature_names(lead_names), np.nan)
    rlead = _choose_rhythm_lead(record, rhythm_lead)
    out["n_leads_missing"] = float(sum(
        n not in record.lead_names or not np.isfinite(record.lead(n)).any() for n in lead_names))
    if rlead is None:
        _warn_once(f"record {record.name!r} has no recorded sample")
        return out
    start, stop = _finite_run(record.lead(rlead))
    cleaned = _clean(record.lead(rlead)[start:stop], fs) if stop - start > fs else np.zeros(0)
    rpeaks = _find_rpeaks(cleaned, fs) if cleaned.size else np.zeros(0, dtype=int)
    out.update(_rr_features(rpeaks, fs))
    out.update(_beat_correlation(cleaned, rpeaks, fs))
    full_strip = (stop - start) >= 0.8 * record.n_samples
    times = (rpeaks + start) / fs if full_strip and rpeaks.size else None
    qrs_widths, rhythm_beat = [], {}
    for lead in dict.fromkeys([*lead_names, rlead]):
        if lead not in record.lead_names:
            continue
        try:
            feats = _lead_features(record, lead, times, out["rr_mean_s"])
        except (ValueError, IndexError, FloatingPointError) as exc:
            _warn_once(f"lead {lead} of {record.name!r}: {exc}")
            feats = {}
        if lead == rlead:
            rhythm_beat = {k: v for k, v in feats.items() if k.startswith("_")}
        if lead in lead_names:
            qrs_widths.append(feats.get("_qrs_s", np.nan))
            out.update({f"{lead}_{k}": v for k, v in feats.items() if not k.startswith("_")})
    out.update(_interval_features(cleaned, rpeaks, fs, out["rr_mean_s"], rhythm_beat))
    out["p_amp_mv"] = rhythm_beat.get("_p_amp_mv", np.nan)
    out.update(_summary_features(out, lead_names, qrs_widths))
    return out


def _summary_features(f: dict[str, float], lead_names: Sequence[str],
                      qrs_widths: list[float]) -> dict[str, float]:
    def per_lead(suffix: str) -> np.ndarray:
        return np.array([f.get(f"{n}_{suffix}", np.nan) for n in lead_names], dtype=float)

    st, t_amp = per_lead("st60_mv"), per_lead("t_amp_mv")
    q_d, q_w, r_a = per_lead("q_depth_mv"), per_lead("q_width_s"), per_lead("r_amp_mv")
    not_avr = np.array([n != "aVR" for n in lead_names])
    with np.errstate(invalid="ignore"):
        path_q = (q_w >= 0.03) & ((q_d >= 0.1) | (q_d > 0.25 * r_a))
        out = {
            "n_q_waves": float(np.sum(path_q & not_avr)),
            "n_st_elevated": float(np.sum(st >= 0.1)),
            "n_st_depressed": float(np.sum(st <= -0.1)),
            "n_t_inverted": float(np.sum((t_amp <= -0.1) & not_avr)),
        }
    finite_st = st[np.isfinite(st)]
    out["st_max_mv"] = float(finite_st.max()) if finite_st.size else np.nan
    out["st_min_mv"] = float(finite_st.min()) if finite_st.size else np.nan
    widths = np.asarray(qrs_widths, dtype=float)
    out["qrs_s"] = float(np.nanmedian(widths)) if np.isfinite(widths).any() else np.nan
    with np.errstate(invalid="ignore"):
        out["st_elev_sum_mv"] = float(np.nansum(np.clip(st[not_avr], 0, None)))
        out["t_neg_sum_mv"] = float(np.nansum(np.clip(-t_amp[not_avr], 0, None)))
    for q, suffix in (("st", "st60_mv"), ("t", "t_amp_mv"), ("q", "q_depth_mv"),
                      ("r", "r_amp_mv")):
        for terr, leads in TERRITORIES.items():
            vals = np.array([f.get(f"{n}_{suffix}", np.nan) for n in leads], dtype=float)
            out[f"{q}_{terr}_mv"] = (float(np.nanmean(vals)) if np.isfinite(vals).any()
                                     else np.nan)
    net_i, net_avf = f.get("I_qrs_net_mv", np.nan), f.get("aVF_qrs_net_mv", np.nan)
    out["axis_deg"] = float(np.degrees(np.arctan2(net_avf, net_i)))
    return out


if extract_features.__doc__:
    extract_features.__doc__ += "\n    Notes\n    -----\n    Features:\n\n" + "\n".join(
        "    " + line for line in features_table_markdown().splitlines()) + "\n"


class ECGFeatureExtractor(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """scikit-learn transformer: a list of :class:`ECGRecord` → 2-D float feature array.

    Parameters
    ----------
    lead_names : sequence of str, optional
        Leads described (default: the 12 standard leads).
    rhythm_lead : str, optional
        Passed to :func:`extract_features`.

    Notes
    -----
    ``X`` is a list of records, not a numeric array, so only the
    input-agnostic :func:`sklearn.utils.estimator_checks.check_estimator`
    checks apply (cloning, get/set_params, default-constructible parameters,
    no attributes set in ``__init__``, repr); ``tests/test_features.py`` runs
    exactly those.

    Examples
    --------
    >>> import neurokit2 as nk
    >>> from ecgdigitize.record import ECGRecord
    >>> x = nk.ecg_simulate(duration=10, sampling_rate=500, random_state=0)
    >>> Xf = ECGFeatureExtractor().fit_transform([ECGRecord(x[:, None], 500, ("II",))])
    >>> Xf.shape
    (1, 459)
    """

    def __init__(self, lead_names: Sequence[str] | None = None,
                 rhythm_lead: str | None = None) -> None:
        self.lead_names = lead_names
        self.rhythm_lead = rhythm_lead

    def _leads(self) -> tuple[str, ...]:
        return tuple(self.lead_names) if self.lead_names is not None else STANDARD_LEADS

    def fit(self, X: Sequence[ECGRecord], y: Any = None) -> ECGFeatureExtractor:
        """Check the input and store the output feature names; nothing is learned."""
        _check_records(X)
        self.feature_names_out_ = np.asarray(feature_names(self._leads()), dtype=object)
        self.n_features_out_ = len(self.feature_names_out_)
        return self

    def transform(self, X: Sequence[ECGRecord]) -> np.ndarray:
        """Feature array of shape (n_records, n_features), NaN where not computable."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "feature_names_out_")
        _check_records(X)
        rows = [extract_features(r, rhythm_lead=self.rhythm_lead, lead_names=self._leads())
                for r in X]
        return np.array([[row[n] for n in self.feature_names_out_] for row in rows],
                        dtype=float).reshape(len(rows), self.n_features_out_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output columns (see :data:`FEATURES`)."""
        return np.asarray(feature_names(self._leads()), dtype=object)


def _check_records(X: Any) -> None:
    if isinstance(X, ECGRecord) or not isinstance(X, Sequence | np.ndarray):
        raise ConfigurationError(
            f"X must be a sequence of ECGRecord; got {type(X).__name__}")
    bad = [type(r).__name__ for r in X if not isinstance(r, ECGRecord)]
    if bad:
        raise ConfigurationError(f"X must hold ECGRecord objects; got {bad[0]}")
