"""Limb-lead fusion: one consistent estimate from every printed view of the limb leads.

The six limb leads are differences of three electrode potentials (right arm
RA, left arm LA, left leg LL), so at any instant they hold only two degrees
of freedom: with ``I = LA - RA`` and ``II = LL - RA``,

====  ==================  =========
lead  definition          on (I, II)
====  ==================  =========
I     LA - RA             (1, 0)
II    LL - RA             (0, 1)
III   LL - LA             (-1, 1)
aVR   RA - (LA + LL) / 2  (-1/2, -1/2)
aVL   LA - (RA + LL) / 2  (1, -1/2)
aVF   LL - (RA + LA) / 2  (-1/2, 1)
====  ==================  =========

(Einthoven's law ``II = I + III`` and Goldberger's leads). A sheet prints
several of them at the same time: column 1 of a 3x4 sheet holds I, II and
III, column 2 aVR, aVL and aVF, and a lead II rhythm strip runs under both,
so each instant of the first 5 s is read from the paper three or four times.
Every reading carries its own error (the pen's width, a neighbouring trace,
a label), while the true leads lie on a plane. :func:`fuse_limb_leads`
projects the readings of each instant onto that plane by weighted least
squares, which averages independent reading errors out: with column 1's
I, II and III and a lead II strip, the error variance of I and III falls
to 3/5 of one reading's and that of II to 2/5. Readings within
:data:`EDGE_S` of a panel's ends (the least sure: the separator and the
neighbour's stroke sit there) weigh :data:`EDGE_WEIGHT`, so a rhythm strip
running through carries those instants, and the weights are refined by each
view's residual (iteratively re-weighted least squares). A reading that
followed the wrong ink over a stretch still pulls the fused leads there
(with two views to spare, one bad view is not singled out reliably), but
never beyond that stretch.

The fused leads are exact combinations of each other: a check of Einthoven's
law on the output measures nothing. Checks of a sheet's own consistency use
``DigitizeConfig(fuse_limb_leads=False)``.

Examples
--------
>>> import numpy as np
>>> t = np.arange(1000) / 500
>>> lead_i, lead_ii = np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)
>>> rng = np.random.default_rng(0)
>>> views = [(name, a * lead_i + b * lead_ii + rng.normal(0, 0.02, t.size))
...          for name, (a, b) in LIMB_LEADS.items() if name in ("I", "II", "III")]
>>> views.append(("II", lead_ii + rng.normal(0, 0.02, t.size)))  # a rhythm strip
>>> fused = fuse_limb_leads(views)
>>> err_raw = np.std(views[0][1] - lead_i)
>>> err_fused = np.std(fused["I"] - lead_i)
>>> bool(err_fused < 0.85 * err_raw)  # four views of two unknowns: 0.81
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import uniform_filter1d

from .clean import _true_runs
from .errors import ConfigurationError

__all__ = ["LIMB_LEADS", "fuse_limb_leads"]

#: Each limb lead on the basis (I, II).
LIMB_LEADS: dict[str, tuple[float, float]] = {
    "I": (1.0, 0.0), "II": (0.0, 1.0), "III": (-1.0, 1.0),
    "aVR": (-0.5, -0.5), "aVL": (1.0, -0.5), "aVF": (-0.5, 1.0)}

#: Residual, mV RMS over :data:`WINDOW_S`, at which a view's weight halves (the reading
#: noise of a clean render is about 0.01-0.02 mV).
ROBUST_MV = 0.02
#: Window of the residual RMS that weights a view, s.
WINDOW_S = 0.01
#: Rounds of re-weighting.
ROUNDS = 3
#: Readings of one set of simultaneous views that fit the limb-lead plane worse than this
#: (reading energy over residual energy, dB) are fused without the one view that breaks
#: the fit (four views or more), else left as read: leads printed in another order or
#: polarity than their labels say (a Cabrera sheet's -aVR: 2-7 dB), a rhythm strip not
#: printed at the same time as the column (column 2 of the reference sheets: 4-13 dB with
#: the strip, 22-36 dB without), signals that do not obey Einthoven's law (NeuroKit2's
#: simulated 12 leads: 7-20 dB), or readings too poor to gain from it. The 51 clean renders' sets score 31 dB (median;
#: 5 % below 22 dB), the reference sheets' column 1 22-35 dB.
#: (During development, without the leave-one-out: 10 dB gave the same on clean renders
#: and +0.03 dB on degraded ones; 25 dB -0.09 and -0.11 dB.)
MIN_AGREEMENT_DB = 20.0
#: Readings this close to either end of their view, s, are the least sure (a panel's
#: first and last columns sit on the separator and the neighbour's stroke).
EDGE_S = 0.02
#: Weight of a reading within EDGE_S of its view's ends.
EDGE_WEIGHT = 0.05


def fuse_limb_leads(views: Sequence[tuple[str, np.ndarray]], *, fs: float = 500.0,
                    min_views: int = 3, robust_mv: float = ROBUST_MV,
                    window_s: float = WINDOW_S) -> dict[str, np.ndarray]:
    """Fuse simultaneous readings of the limb leads into one consistent set.

    Parameters
    ----------
    views : sequence of (str, ndarray of shape (n_samples,))
        Each a limb lead's name and one reading of it on the common time axis,
        mV, NaN where that reading does not cover (a panel's window). A lead
        may come twice (a grid panel and a rhythm strip). Other leads are
        ignored.
    fs : float, default 500
        Sampling rate, Hz (sets the residual window).
    min_views : int, default 3
        Instants read fewer times are left as read (two views of two unknowns
        leave nothing to average).
    robust_mv : float, default ROBUST_MV
        Iteratively re-weighted least squares: each view's weight is divided
        by ``1 + (rms / robust_mv) ** 2``, ``rms`` its residual's RMS over
        ``window_s``, mV; ``inf`` gives plain least squares.
    window_s : float, default WINDOW_S
        Length of the window of that residual, s.

    Returns
    -------
    dict of str to ndarray
        For each limb lead with at least one view: the fused lead at the
        instants read ``min_views`` times or more by views that agree with
        the limb-lead plane (:data:`MIN_AGREEMENT_DB`; when a set of four or
        more does not, the best set with one view left out may), and where
        one of the lead's own views is among them; NaN elsewhere (keep the
        readings there).

    Raises
    ------
    ConfigurationError
        If the views differ in length or ``min_views < 3``.

    Examples
    --------
    Column 1 of a sheet (I, II, III) and a lead II rhythm strip, each read with
    its own error; the fit obeys Einthoven's law and is closer to the truth:

    >>> t = np.arange(1250) / 500
    >>> true_i, true_ii = 0.5 * np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)
    >>> rng = np.random.default_rng(1)
    >>> read = {k: a * true_i + b * true_ii + rng.normal(0, 0.02, t.size)
    ...         for k, (a, b) in LIMB_LEADS.items() if k in ("I", "II", "III")}
    >>> strip = true_ii + rng.normal(0, 0.02, t.size)
    >>> fused = fuse_limb_leads([*read.items(), ("II", strip)], fs=500)
    >>> bool(np.allclose(fused["II"], fused["I"] + fused["III"]))
    True
    >>> bool(np.std(fused["III"] - (true_ii - true_i)) < np.std(read["III"] - (true_ii - true_i)))
    True
    >>> sorted(fused)           # only leads that were read
    ['I', 'II', 'III']
    """
    limb = [(name, np.asarray(x, dtype=np.float64)) for name, x in views if name in LIMB_LEADS]
    if not limb:
        return {}
    n = limb[0][1].size
    if any(x.shape != (n,) for _, x in limb):
        raise ConfigurationError("every view must be 1-D and of the same length")
    if min_views < 3:
        raise ConfigurationError(f"min_views must be >= 3; got {min_views}")
    m = np.stack([x for _, x in limb], axis=1)                          # (n, k)
    coef = np.array([LIMB_LEADS[name] for name, _ in limb])             # (k, 2)
    seen = np.isfinite(m)
    mz = np.where(seen, m, 0.0)
    use = _agreeing_views(mz, seen, coef, min_views)
    prior = np.where(use, 1.0, 0.0)
    edge = max(0, round(EDGE_S * fs))
    if edge:
        for j in range(m.shape[1]):
            for a, b in _true_runs(seen[:, j]):
                prior[a:min(b, a + edge), j] *= EDGE_WEIGHT
                prior[max(a, b - edge):b, j] *= EDGE_WEIGHT
    w = prior.copy()
    win = max(1, round(window_s * fs))
    basis = _solve(mz, w, coef)
    for _ in range(ROUNDS if np.isfinite(robust_mv) else 0):
        resid = np.where(use, mz - basis @ coef.T, 0.0)
        ms = uniform_filter1d(resid * resid, win, axis=0, mode="nearest")
        cover = uniform_filter1d(use.astype(np.float64), win, axis=0, mode="nearest")
        rms = np.sqrt(np.maximum(ms, 0.0) / np.maximum(cover, 1e-9))
        w = prior / (1.0 + (rms / robust_mv) ** 2)
        basis = _solve(mz, w, coef)
    names = [name for name, _ in limb]
    out = {}
    for name in dict.fromkeys(names):
        own = use[:, [j for j, nm in enumerate(names) if nm == name]].any(axis=1)
        out[name] = np.where(own, basis @ np.asarray(LIMB_LEADS[name]), np.nan)
    return out


def _agreeing_views(m: np.ndarray, seen: np.ndarray, coef: np.ndarray, min_views: int
                    ) -> np.ndarray:
    """Which views to fuse at each instant: over all instants read by the same set of
    views, that set if it fits the limb-lead plane within :data:`MIN_AGREEMENT_DB` (plain
    least squares), else the best-fitting set with one view left out if that fits (a rhythm
    strip printed at another time than the column, a lead printed inverted), else none."""
    use = np.zeros_like(seen)
    enough = seen.sum(axis=1) >= min_views
    if not enough.any():
        return use
    patterns, which = np.unique(seen[enough], axis=0, return_inverse=True)
    rows = np.flatnonzero(enough)
    for p, pattern in enumerate(patterns):
        at = rows[which.ravel() == p]
        views = np.flatnonzero(pattern)
        subsets = [views] + ([np.delete(views, i) for i in range(views.size)]
                             if views.size > min_views else [])
        scores = [_agreement_db(m[np.ix_(at, sub)], coef[sub]) for sub in subsets]
        best = 0 if scores[0] >= MIN_AGREEMENT_DB else int(np.argmax(scores))
        if scores[best] >= MIN_AGREEMENT_DB:
            use[np.ix_(at, subsets[best])] = True
    return use


def _agreement_db(x: np.ndarray, coef: np.ndarray) -> float:
    """Energy of the readings ``x`` (instants x views, means removed) over that of their
    residual from the plain least-squares fit on the limb-lead plane, dB."""
    x = x - x.mean(axis=0)
    fit = _solve(x, np.ones_like(x), coef) @ coef.T
    energy, resid = float((x * x).sum()), float(((x - fit) ** 2).sum())
    return 10 * float(np.log10(energy / max(resid, 1e-12))) if energy > 0 else -np.inf


def _solve(m: np.ndarray, w: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Weighted least-squares (I, II) per instant; zeros where under-determined."""
    a11 = w @ (coef[:, 0] ** 2)
    a12 = w @ (coef[:, 0] * coef[:, 1])
    a22 = w @ (coef[:, 1] ** 2)
    b1 = (w * m) @ coef[:, 0]
    b2 = (w * m) @ coef[:, 1]
    det = a11 * a22 - a12 * a12
    ok = det > 1e-12
    det = np.where(ok, det, 1.0)
    x1 = np.where(ok, (a22 * b1 - a12 * b2) / det, 0.0)
    x2 = np.where(ok, (a11 * b2 - a12 * b1) / det, 0.0)
    return np.column_stack([x1, x2])
