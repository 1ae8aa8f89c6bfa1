"""Columns of the layout stage (see :mod:`ecgdigitize.layout`): trace start,
column separators, the layout name of a 6-row sheet and the rhythm strip's label.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ._layout_rows import _Pulse, _Row

_BY_ROWS = {3: "3x4", 4: "3x4+1", 12: "12x1"}
#: (rhythm row, quarter, grid row) showing the same lead on a default "3x4+3" sheet:
#: II (row 1, 0-2.5 s), V1 (row 0, 5-7.5 s), V5 (row 1, 7.5-10 s).
_DEFAULT_PAIRS = ((3, 0, 1), (4, 2, 0), (5, 3, 1))


def _trace_start(ink: np.ndarray, rows: list[_Row], pulses: list[_Pulse | None],
                 box: tuple[float, float, float, float], ppm_x: float) -> float:
    """x of time 0: the first trace ink after the pulses (median over the rows).

    The pulses are printed one above the other, so a row whose pulse was not
    found (a broken stroke) is read from the right edge of the others'.
    """
    ys = np.array([r.y for r in rows])
    edges = np.concatenate([[ys[0] - (ys[1] - ys[0]) / 2 if len(ys) > 1 else 0],
                            (ys[:-1] + ys[1:]) / 2,
                            [ys[-1] + (ys[-1] - ys[-2]) / 2 if len(ys) > 1 else ink.shape[0]]])
    found = [p for p in pulses if p is not None]
    shared = int(np.median([p.box_px[2] for p in found])) + 1 if found else None
    shared_stroke = float(np.median([p.stroke_px for p in found])) if found else 2.0
    starts = []
    for i, p in enumerate(pulses):
        if p is not None:
            lo = p.box_px[2] + 1
        else:
            lo = shared if shared is not None else max(int(box[0]) - 2, 0)
        band = ink[max(round(edges[i]), 0):max(round(edges[i + 1]), 0), lo:]
        start = _first_run_start(np.asarray(band.any(axis=0)), skip_short=bool(found),
                                 ppm_x=ppm_x)
        if start is not None:
            stroke = p.stroke_px if p is not None else shared_stroke
            starts.append(lo + start + (stroke - 1) / 2.0)
    return float(np.median(starts)) if starts else float(box[0])


def _first_run_start(cols: np.ndarray, *, skip_short: bool, ppm_x: float) -> float | None:
    """Start of the first ink run; a short run right after a pulse (its foot) is skipped."""
    idx = np.flatnonzero(cols)
    if len(idx) == 0:
        return None
    breaks = np.flatnonzero(np.diff(idx) > 1)
    first_end = idx[breaks[0]] if len(breaks) else idx[-1]
    if skip_short and len(breaks) and idx[0] <= 1 and first_end - idx[0] < 3 * ppm_x:
        return float(idx[breaks[0] + 1])
    return float(idx[0])


def _snap_to_separators(ink: np.ndarray, rows: list[_Row], x0: float, row_len: float,
                        n_cols: int, ppm_x: float, ppm_y: float,
                        dark: np.ndarray | None = None) -> tuple[float, float]:
    """Refine the start (and length) of the rows with the printed column separators.

    Full-height separator lines at ``x0 + k * row_len / n_cols`` give
    ``x = a + b * k`` by least squares: ``a`` is the start and ``n_cols * b``
    the printed row length, which may differ slightly from ``10 s x speed x
    grid px/mm`` on some machines. Short ticks across the baselines can be
    mistaken for QRS strokes, so they only move the start, by at most 1.5 mm,
    to where most columns agree: the three leads of a column are printed at
    the same time, so their QRS strokes fall at one x, but the ticks of every
    column share one offset from the start (see :func:`_consensus_start`).
    With ``dark`` (ink darkness, 0-255) each bar's centre is refined to a
    fraction of a pixel (see :func:`_bar_centre`).
    """
    full = _full_separators(ink, rows, x0, row_len, n_cols, ppm_x, dark)
    if len(full) >= 2:
        ks = sorted(full)
        b, a = np.polyfit(ks, [full[k] for k in ks], 1)
        if abs(b * n_cols / row_len - 1) < 0.03:
            return float(a), float(b * n_cols)
    votes = {(i, k): [x - k * row_len / n_cols
                      for x, _ in _separator_candidates(ink, r.y, x0 + k * row_len / n_cols,
                                                        ppm_x, ppm_y, search_mm=1.5, dark=dark)]
             for i, r in enumerate(rows) for k in range(1, n_cols)}
    start = _consensus_start(votes, x0, tol_px=0.3 * ppm_x,
                             min_votes=max(2, 0.4 * len(rows) * (n_cols - 1)))
    if start is not None and abs(start - x0) < 1.5 * ppm_x:
        return start, row_len
    return x0, row_len


def _name_layout(ink: np.ndarray, rows: list[_Row], x0: float, row_len: float, ppm_x: float,
                 ppm_y: float, pairs: Sequence[tuple[int, int, int]] = _DEFAULT_PAIRS) -> str:
    """Layout from the row count; 6 rows: "3x4+3" when the top rows have quarter
    separators, or when the bottom rows repeat quarters of the top ones (rhythm strips:
    ``pairs`` of (rhythm row, quarter, grid row) that show the same lead)."""
    n = len(rows)
    if n != 6:
        return _BY_ROWS[n]
    quarter = np.mean([_separator_at(ink, r.y, x0 + f * row_len, ppm_x, ppm_y)
                       for r in rows[:3] for f in (0.25, 0.75)])
    half_low = np.mean([_separator_at(ink, r.y, x0 + 0.5 * row_len, ppm_x, ppm_y)
                        for r in rows[3:]])
    if quarter > 0.5 and quarter > half_low:
        return "3x4+3"
    errors = _rhythm_repeats(ink, [r.y for r in rows], x0, row_len, pairs)
    alike = sum(e < 0.4 for e in errors) >= 2 or min(errors, default=1.0) < 0.3
    # a thick or low-resolution drawing blurs both copies: all three pairs only half alike
    # is still a rhythm strip, when the first pair is (on a 6x2 sheet that pair is aVR
    # against II, which differ by over 1.1)
    blurred = len(errors) == 3 and errors[0] < 1.0 and float(np.mean(errors)) < 0.95
    return "3x4+3" if alike or blurred else "6x2"


def _rhythm_repeats(ink: np.ndarray, baselines: Sequence[float], x0: float, row_len: float,
                    pairs: Sequence[tuple[int, int, int]] = _DEFAULT_PAIRS) -> list[float]:
    """How closely each rhythm strip repeats, over its lead's quarter, that lead's grid
    cell: RMS difference of the two centre lines over their larger SD (0 = drawn alike).

    A rhythm strip of a "3x4+3" sheet shows its lead over 10 s, so over that
    lead's quarter it is drawn like the lead's grid cell above (same shape,
    same amplitude). On a "6x2" sheet those rows and quarters hold other
    leads (aVR and II, V5 and V1, V6 and V2 for the default strips), which
    are not drawn alike to 40 % RMS (30 % for one pair alone). Only the
    expected ``pairs`` of (rhythm row, quarter, grid row) are compared, so
    look-alike leads elsewhere cannot vote. Pairs without enough ink are left out.
    Measured on the stress matrix: 6x2 sheets give 1.1-2.2 for the aVR/II pair and
    a mean of 1.05-1.65 over the three; 3x4+3 sheets 0.03-0.4 when drawn cleanly,
    up to about 0.9 on thick 100 dpi scans.
    """
    curves = [_centre_line(ink, y, baselines) for y in baselines]
    bounds = [round(x0 + f * row_len) for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    skip = round(0.08 * row_len / 2.5)  # 0.08 of a 2.5 s quarter: the cell's lead label
    errors = []
    for low, q, top in pairs:
        lo, hi = bounds[q] + skip, bounds[q + 1] - 3
        a, b = curves[low][lo:hi], curves[top][lo:hi]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 0.6 * max(hi - lo, 1):
            continue
        a, b = a[ok] - np.median(a[ok]), b[ok] - np.median(b[ok])
        scale = max(float(np.std(a)), float(np.std(b)), 1e-9)
        errors.append(float(np.sqrt(np.mean((a - b) ** 2))) / scale)
    return errors


def _centre_line(ink: np.ndarray, y: float, baselines: Sequence[float]) -> np.ndarray:
    """Mean ink row (offset from ``y``) of each column within 0.25 pitch of ``y`` (NaN without
    ink there): two drawings of one signal stay alike, neighbouring rows mostly stay out."""
    b = np.asarray(baselines, dtype=float)
    half = 0.25 * float(np.median(np.diff(b)))
    y0, y1 = max(round(y - half), 0), round(y + half) + 1
    band = ink[y0:y1].astype(np.float32)
    count = band.sum(axis=0)
    rows = np.arange(y0, y0 + band.shape[0], dtype=np.float32)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (band * rows).sum(axis=0) / count - y, np.nan)


def _full_separators(ink: np.ndarray, rows: list[_Row], x0: float, row_len: float, n_cols: int,
                     ppm_x: float, dark: np.ndarray | None = None) -> dict[int, float]:
    """Column boundaries drawn as lines over the whole height of the grid rows."""
    if len(rows) < 2:
        return {}
    y0, y1 = round(rows[0].y), round(rows[-1].y)
    out = {}
    for k in range(1, n_cols):
        xc = x0 + k * row_len / n_cols
        lo = max(round(xc - 2.5 * ppm_x), 0)
        win = ink[y0:y1 + 1, lo:round(xc + 2.5 * ppm_x) + 1]
        if win.size == 0:
            continue
        runs = _longest_runs(win)
        on = np.flatnonzero(runs >= 0.9 * win.shape[0])
        if 0 < len(on) <= max(3, 0.6 * ppm_x):
            out[k] = lo + (float(on.mean()) if dark is None
                           else _bar_centre(dark[y0:y1 + 1, lo:lo + win.shape[1]], on))
    return out


def _consensus_start(votes: dict[tuple[int, int], list[float]], x0: float, *, tol_px: float,
                     min_votes: float) -> float | None:
    """The start most (row, column) separator windows agree on, px (None if too few).

    Parameters
    ----------
    votes : dict of (int, int) to list of float
        For each (row, column boundary ``k``) window, the starts its bar
        candidates imply (bar x less ``k`` column widths), px.
    x0 : float
        The start found from the first trace ink, px (ties go to the nearest).
    tol_px : float
        Votes within this of a hypothesis support it, px.
    min_votes : float
        Fewest supporting windows to accept.

    Returns
    -------
    float or None
        Median of the supporting votes (one per window, the nearest). A
        hypothesis backed by more column boundaries wins over one backed by
        more windows: the QRS strokes of one column agree across its rows,
        the ticks agree across columns.

    Examples
    --------
    Three QRS strokes of the last column against two ticks:

    >>> votes = {(0, 1): [100.1], (0, 2): [100.0], (0, 3): [112.2],
    ...          (1, 3): [111.9], (2, 3): [112.1]}
    >>> _consensus_start(votes, 103.0, tol_px=2.0, min_votes=2)
    100.05
    """
    best: tuple[tuple[int, int, float], list[float]] | None = None
    for h in sorted({v for vs in votes.values() for v in vs}):
        nearest = {key: min(vs, key=lambda v: abs(v - h)) for key, vs in votes.items() if vs}
        support = {key: v for key, v in nearest.items() if abs(v - h) <= tol_px}
        score = (len({k for _, k in support}), len(support), -abs(h - x0))
        if best is None or score > best[0]:
            best = (score, list(support.values()))
    if best is None or best[0][1] < min_votes:
        return None
    return float(np.median(best[1]))


def _separator_x(ink: np.ndarray, y: float, x: float, ppm_x: float, ppm_y: float,
                 search_mm: float = 1.5, dark: np.ndarray | None = None) -> float | None:
    """Centre of a straight vertical bar (at least 4.5 mm of ink) crossing row ``y`` near ``x``.

    The centre is that of the bar's ink columns, or with ``dark`` (ink
    darkness, 0-255, same shape as ``ink``) their darkness-weighted centre.
    Of several bars, the tallest, then the nearest to ``x``.
    """
    found = _separator_candidates(ink, y, x, ppm_x, ppm_y, search_mm=search_mm, dark=dark)
    return max(found, key=lambda c: c[1])[0] if found else None


def _separator_candidates(ink: np.ndarray, y: float, x: float, ppm_x: float, ppm_y: float,
                          search_mm: float = 1.5, dark: np.ndarray | None = None
                          ) -> list[tuple[float, float]]:
    """Every straight vertical bar (at least 4.5 mm of ink) crossing row ``y`` near ``x``.

    Returns ``(centre_x, score)`` pairs, px; the score is the bar's height in
    mm less half its distance from ``x`` in mm.
    """
    yi, xi = round(y), round(x)
    half = round(6 * ppm_y)
    lo = max(xi - round(search_mm * ppm_x), 0)
    hi = min(xi + round(search_mm * ppm_x) + 1, ink.shape[1])
    rows = slice(max(yi - half, 0), yi + half + 1)
    win = ink[rows, lo:hi]
    if win.size == 0:
        return []
    win = cv2.morphologyEx(win.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 1), np.uint8)) > 0
    runs = _longest_runs(win)
    on = np.flatnonzero(runs >= 4.5 * ppm_y)
    # thin (straight, not slanted) bars
    groups = np.split(on, np.flatnonzero(np.diff(on) > 1) + 1) if len(on) else []
    out = []
    for g in groups:
        if len(g) > max(3, 0.6 * ppm_x):
            continue
        score = runs[g].max() / ppm_y - 0.5 * abs(lo + g.mean() - x) / ppm_x
        if dark is None:
            out.append((lo + float(g.mean()), score))
            continue
        on_bar = win[:, g].any(axis=1)
        # rows where nothing else is inked beside the bar (no label, no crossing trace)
        side = np.r_[max(g[0] - 3, 0):max(g[0] - 1, 0), g[-1] + 2:g[-1] + 4]
        alone = on_bar & ~win[:, side[side < win.shape[1]]].any(axis=1)
        out.append((lo + _bar_centre(dark[rows, lo:hi][alone if alone.sum() >= 3 else on_bar], g),
                    score))
    return out


def _bar_centre(dark: np.ndarray, cols: np.ndarray) -> float:
    """Sub-pixel x of a vertical bar: the darkness-weighted centre of its columns.

    Parameters
    ----------
    dark : ndarray of shape (h, w)
        Ink darkness (0-255) of the rows the bar crosses.
    cols : ndarray of int
        The bar's ink columns in ``dark`` (contiguous).

    Returns
    -------
    float
        Centre, px from the first column of ``dark``. Each column's darkness
        is its median over the rows (a trace crossing the bar does not move
        it), less the lowest column within 2 px of the bar (the paper).
        The centre is taken over the bar's columns and one more on each side,
        so anti-aliased edge columns weigh in by how much of them is inked,
        and a grid line 2 px away does not.

    Examples
    --------
    >>> dark = np.tile(np.array([0, 0, 60, 255, 255, 0, 30], float), (9, 1))
    >>> round(_bar_centre(dark, np.array([3, 4])), 3)
    3.342
    """
    lo, hi = max(int(cols[0]) - 2, 0), min(int(cols[-1]) + 3, dark.shape[1])
    if dark.shape[0] == 0:
        return float(cols.mean())
    prof = np.median(dark[:, lo:hi], axis=0).astype(np.float64)
    prof -= prof.min()
    inner = np.zeros(prof.size, dtype=bool)
    inner[max(int(cols[0]) - 1 - lo, 0):int(cols[-1]) + 2 - lo] = True
    prof[~inner] = 0.0
    if prof.sum() <= 0:
        return float(cols.mean())
    return lo + float((prof * np.arange(prof.size)).sum() / prof.sum())


def _longest_runs(win: np.ndarray) -> np.ndarray:
    """Longest vertical run of True in each column.

    Examples
    --------
    >>> _longest_runs(np.array([[1, 0, 1], [1, 0, 0], [0, 0, 1], [1, 0, 1]], bool)).tolist()
    [2.0, 0.0, 2.0]
    """
    h, w = win.shape
    edges = np.zeros((w, h + 2), np.int8)
    edges[:, 1:-1] = win.T
    step = np.diff(edges, axis=1)
    # starts and ends come in the same column-major order, one end per start
    col, start = np.nonzero(step == 1)
    end = np.nonzero(step == -1)[1]
    out = np.zeros(w)
    np.maximum.at(out, col, (end - start).astype(float))
    return out


def _separator_at(ink: np.ndarray, y: float, x: float, ppm_x: float, ppm_y: float) -> float:
    """1 when a straight vertical bar crosses row ``y`` within 0.8 mm of ``x``, else 0."""
    return float(_separator_x(ink, y, x, ppm_x, ppm_y, search_mm=0.8) is not None)


def _read_rhythm_label(ink: np.ndarray, baseline: float, x0: float, ppm_x: float,
                       ppm_y: float) -> str:
    """"III" when the label printed at the rhythm strip's start has three stems, else "II".

    Stems are vertical ink runs 1.5-3.5 mm long that stay inside the label
    area just above the baseline (trace strokes run out of it).
    """
    y0, y1 = round(baseline - 4.5 * ppm_y), round(baseline - 0.3 * ppm_y)
    xa, xb = round(x0 - 0.5 * ppm_x), round(x0 + 5.0 * ppm_x)
    if y0 < 1 or xa < 0 or y1 <= y0:
        return "II"
    win = ink[y0 - 1:y1 + 1, xa:xb]  # one extra row each side: a run touching them is a trace
    spans = []
    for j in range(win.shape[1]):
        d = np.diff(np.concatenate([[0], win[:, j].astype(np.int8), [0]]))
        for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
            if a > 0 and b < win.shape[0] - 1 and 1.5 * ppm_y <= b - a <= 3.5 * ppm_y:
                spans.append((j, int(a), int(b)))
    if not spans:
        return "II"
    # glyph stems share their top and bottom rows; QRS strokes do not
    top = np.median([a for _, a, _ in spans])
    bottom = np.median([b for _, _, b in spans])
    cols = np.array(sorted({j for j, a, b in spans if abs(a - top) <= 2 and abs(b - bottom) <= 2}))
    if len(cols) == 0:
        return "II"
    groups = np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1)
    centres = np.array([g.mean() for g in groups])
    thin = all(len(g) <= max(2, 0.6 * ppm_x) for g in groups)
    gaps = np.diff(centres)
    even = len(gaps) == 2 and gaps.max() <= 1.25 * gaps.min() and gaps.max() <= 1.6 * ppm_x
    return "III" if len(groups) == 3 and thin and even else "II"


