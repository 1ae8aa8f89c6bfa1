"""The smoothest path of a trace through the lead label printed over it.

Private helper of :mod:`ecgdigitize.traces`. Where a lead label's glyphs
touch or cross the trace, the column-wise Viterbi path (first order: it
prices vertical travel, and travel along ink is cheap) may climb a glyph's
stroke and come back down another. The trace itself is a smooth curve of
one pen width that goes straight on through a crossing; a glyph's strokes
turn sharply where they meet the trace.

:func:`smoothest_path` re-tracks the path across one label box with a
second-order cost. In each column the candidate positions are the vertical
ink runs: a run's middle, and - for a run wider than the pen where the ink
beyond the pen lies on the text line - a point half a pen inside either
end (the trace running along a glyph's foot or head). A move between
columns needs the two runs to touch (or a gap of at most
:data:`MAX_GAP_PX`, priced per px). The cost is the change of slope
(``|y[j+1] - 2 y[j] + y[j-1]|``, px), a small price for the slope itself, and
a price for ink outside the text line that the path leaves unexplained
(the trace's own ink: a QRS rising out of the label must be followed).
States are pairs of candidates in successive columns, so the search is
exact for that cost; the path is anchored at both ends to the runs the
first-order path holds just outside the box.

Coordinates are pixels of the panel's band (``y`` down, column 0 the
band's first column).
"""

from __future__ import annotations

import numpy as np

#: Columns beyond either side of the label box that anchor the re-tracked path, px.
MARGIN_PX = 4
#: The re-tracked rows reach this many box heights above and below the box (so a QRS
#: crossing the label is re-tracked with it; on the 51 clean renders 1 gave 24.60 dB,
#: 2 gave 24.69, 3 gave 24.75, 6 and 12 gave 24.79).
REACH_BOXES = 6.0
#: Price of the slope, per px of vertical move, relative to 1 per px of slope change.
SLOPE_PRICE = 0.05
#: Price per pixel of ink outside the text line that the path leaves uncovered.
UNEXPLAINED_PRICE = 2.0
#: A run's ends are candidates when the rest of the run lies within this many px
#: of the text line (a glyph's foot or head merged with the trace).
LINE_TOL_PX = 2.0
#: Runs of successive columns this many px apart may still join (a broken line), px.
MAX_GAP_PX = 3
#: Price per px of such a gap.
GAP_PRICE = 3.0
#: A run is wider than the pen when longer than the pen width plus this, px.
WIDE_PX = 1.5


def smoothest_path(band: np.ndarray, path: np.ndarray, box: tuple[float, float, float, float],
                   pen_px: float, reach: int) -> np.ndarray | None:
    """Re-track ``path`` across one label box with the least change of slope.

    Parameters
    ----------
    band : ndarray of shape (H, W), bool
        Ink mask of the panel's columns (all rows).
    path : ndarray of shape (W,), int
        Row of the first-order path in every column.
    box : (float, float, float, float)
        The label's ``(left, top, right, bottom)`` in band px.
    pen_px : float
        Width of the trace's line, px (vertical run on flat stretches).
    reach : int
        How far from the path (px) a run still holds it at the anchors (the
        path's row pooling).

    Returns
    -------
    ndarray of shape (W,), float or None
        The path with the box's columns (plus :data:`MARGIN_PX` either side)
        replaced, or None where nothing is re-tracked: the box lies outside
        the band, the first-order path leaves the rows searched, a column has
        no ink, or no joined path links the two anchors.

    Examples
    --------
    A flat trace with an "X" glyph standing on it; the first-order path took
    one of the X's strokes up and the other back down:

    >>> band = np.zeros((40, 40), bool)
    >>> band[30:33, :] = True                       # the trace, 3 px
    >>> for k in range(16):                         # the glyph: an X on the trace
    ...     band[14 + k, 12 + k] = band[14 + k, 27 - k] = True
    >>> wrong = np.full(40, 31)
    >>> wrong[12:20] = 14 + np.arange(8)           # up the first stroke
    >>> new = smoothest_path(band, wrong, (10.0, 12.0, 30.0, 29.0), 3.0, 1)
    >>> float(np.abs(new[10:30] - 31).max())    # along the trace (the feet widen it)
    0.5
    """
    h, w = band.shape
    left, top, right, bottom = box
    j0 = max(int(np.floor(left)) - MARGIN_PX, 0)
    j1 = min(int(np.ceil(right)) + 1 + MARGIN_PX, w)
    if j1 - j0 < 2 * MARGIN_PX + 4:
        return None
    tall = (bottom - top) * REACH_BOXES
    r0, r1 = max(0, int(top - tall)), min(h, int(bottom + tall) + 1)
    seg = path[j0:j1]
    if (seg < r0).any() or (seg >= r1).any():
        return None
    n = j1 - j0
    half = pen_px / 2.0
    line_top, line_bottom = top - r0, bottom - r0      # the text line, in search rows
    found = _candidates(band[:, j0:j1], r0, r1, pen_px, line_top, line_bottom)
    if found is None:
        return None
    starts, ends, pos = found
    # ink outside the text line: the path should cover it (cumulative counts per column)
    outside = band[r0:r1, j0:j1].copy()
    outside[max(int(np.floor(line_top)), 0):max(int(np.ceil(line_bottom)) + 1, 0)] = False
    counts = np.vstack((np.zeros((1, n)), np.cumsum(outside, axis=0)))
    # candidates padded to the same number per column; a padded one is never joined
    real = np.isfinite(pos)
    pos = np.where(real, pos, 0.0)
    p = path[j0:j1] - r0
    anchors = np.where((starts - reach <= p[:, None]) & (p[:, None] <= ends + reach) & real,
                       0.0, np.inf)
    # joins[j - 1, k, m]: the price of the move from candidate k of column j - 1 to m of j
    gap = np.maximum(starts[1:, None, :] - ends[:-1, :, None],
                     starts[:-1, :, None] - ends[1:, None, :]) - 1
    gap = np.maximum(gap, 0).astype(float)
    joins = np.where((gap <= MAX_GAP_PX) & real[:-1, :, None] & real[1:, None, :],
                     GAP_PRICE * gap, np.inf)
    slopes = SLOPE_PRICE * np.abs(pos[1:, None, :] - pos[:-1, :, None])
    # cost[k, m]: best path with candidate k in column j-1 and m in column j
    cost = anchors[0][:, None] + joins[0] + slopes[0]
    back = []
    size = pos.shape[1]
    chunk = max(1, 2_000_000 // size ** 3)       # columns whose triples are priced at once
    for j_lo in range(2, n, chunk):
        bend, missed = _triples(pos, counts, np.arange(j_lo, min(j_lo + chunk, n)), half)
        for t, j in enumerate(range(j_lo, min(j_lo + chunk, n))):
            total = cost[:, :, None] + bend[t] + missed[t]
            best = np.argmin(total, axis=0)
            cost = (np.take_along_axis(total, best[None], axis=0)[0] + joins[j - 1]
                    + slopes[j - 1])
            back.append(best)
    cost = cost + anchors[n - 1][None, :]
    if not np.isfinite(cost).any():
        return None
    k, m = np.unravel_index(int(np.argmin(cost)), cost.shape)
    chosen = [int(m), int(k)]
    for best in reversed(back):
        chosen.append(int(best[chosen[-1], chosen[-2]]))
    chosen.reverse()
    out = path.astype(float)
    out[j0:j1] = pos[np.arange(n), chosen] + r0
    return out


def _candidates(cols: np.ndarray, r0: int, r1: int, pen_px: float, line_top: float,
                line_bottom: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Candidate positions of the path in every column of ``cols`` (see the module docstring).

    Returns, per column (row) and candidate (column), the first and last row of the
    run the candidate lies in and its position (rows counted from ``r0``; NaN pads
    the columns with fewer candidates). A column's candidates are every vertical
    ink run that reaches rows ``r0..r1 - 1`` (whole, so a QRS keeps its length),
    then the upper and the lower point of the runs wider than the pen; None when
    a column has none.
    """
    n = cols.shape[1]
    padded = np.zeros((n, cols.shape[0] + 2), dtype=np.int8)
    padded[:, 1:-1] = cols.T
    col, edge = np.nonzero(np.diff(padded, axis=1))   # per column, rows in order
    col, s, e = col[::2], edge[::2], edge[1::2] - 1       # first and last row of each run
    keep = (e >= r0) & (s < r1)
    col, s, e = col[keep], s[keep] - r0, e[keep] - r0
    if np.unique(col).size < n:
        return None
    half = pen_px / 2.0
    wide = (e - s + 1) > pen_px + WIDE_PX
    upper = wide & (e <= line_bottom + LINE_TOL_PX)  # the rest of the run below is text
    lower = wide & (s >= line_top - LINE_TOL_PX)     # the rest above is text
    all_col = np.concatenate((col, col[upper], col[lower]))
    order = np.argsort(all_col, kind="stable")          # per column: runs, uppers, lowers
    col = all_col[order]
    rank = np.arange(col.size) - np.searchsorted(col, col)
    shape = (n, int(rank.max()) + 1)
    starts, ends = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    pos = np.full(shape, np.nan)
    starts[col, rank] = np.concatenate((s, s[upper], s[lower]))[order]
    ends[col, rank] = np.concatenate((e, e[upper], e[lower]))[order]
    pos[col, rank] = np.concatenate(((s + e) / 2.0, s[upper] + half - 0.5,
                                     e[lower] - half + 0.5))[order]
    return starts, ends, pos


def _triples(pos: np.ndarray, counts: np.ndarray, js: np.ndarray, half: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """Change of slope and price of the ink left uncovered, for every triple of candidates
    ``(i, k, m)`` in columns ``j - 2, j - 1, j``, for each ``j`` of ``js``."""
    yi = pos[js - 2][:, :, None, None]
    yk = pos[js - 1][:, None, :, None]
    ym = pos[js][:, None, None, :]
    # column j-1 is covered between the midpoints to its neighbours
    lo = np.minimum(np.minimum((yi + yk) / 2, (yk + ym) / 2), yk) - half
    hi = np.maximum(np.maximum((yi + yk) / 2, (yk + ym) / 2), yk) + half
    last = counts.shape[0] - 1
    a = np.clip(np.ceil(lo).astype(int), 0, last)
    b = np.clip(np.floor(hi).astype(int) + 1, 0, last)
    col = (js - 1)[:, None, None, None]
    missed = counts[last, js - 1][:, None, None, None] - np.where(
        b > a, counts[b, col] - counts[a, col], 0.0)
    return np.abs(ym - 2 * yk + yi), UNEXPLAINED_PRICE * missed
