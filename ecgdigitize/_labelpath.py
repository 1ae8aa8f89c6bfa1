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

from .clean import _true_runs

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
    starts, ends, pos = [], [], []
    for j in range(j0, j1):
        runs = np.asarray(_true_runs(band[:, j]), dtype=np.int64).reshape(-1, 2)
        s, e = runs[:, 0], runs[:, 1] - 1               # first and last row of each run
        keep = (e >= r0) & (s < r1)                    # whole runs, so a QRS keeps its length
        s, e = s[keep] - r0, e[keep] - r0
        if s.size == 0:
            return None
        wide = (e - s + 1) > pen_px + WIDE_PX
        upper = wide & (e <= line_bottom + LINE_TOL_PX)  # the rest of the run below is text
        lower = wide & (s >= line_top - LINE_TOL_PX)     # the rest above is text
        starts.append(np.concatenate((s, s[upper], s[lower])))
        ends.append(np.concatenate((e, e[upper], e[lower])))
        pos.append(np.concatenate(((s + e) / 2.0, s[upper] + half - 0.5, e[lower] - half + 0.5)))
    # ink outside the text line: the path should cover it (cumulative counts per column)
    outside = band[r0:r1, j0:j1].copy()
    outside[max(int(np.floor(line_top)), 0):max(int(np.ceil(line_bottom)) + 1, 0)] = False
    counts = np.vstack((np.zeros((1, n)), np.cumsum(outside, axis=0)))

    def anchor(j: int) -> np.ndarray:
        p = path[j0 + j] - r0
        return np.where((starts[j] - reach <= p) & (p <= ends[j] + reach), 0.0, np.inf)

    def joins(j: int) -> np.ndarray:
        gap = np.maximum(starts[j][None, :] - ends[j - 1][:, None],
                         starts[j - 1][:, None] - ends[j][None, :]) - 1
        gap = np.maximum(gap, 0).astype(float)
        return np.where(gap <= MAX_GAP_PX, GAP_PRICE * gap, np.inf)

    # cost[k, m]: best path with candidate k in column j-1 and m in column j
    cost = (anchor(0)[:, None] + joins(1)
            + SLOPE_PRICE * np.abs(pos[1][None, :] - pos[0][:, None]))
    back = []
    for j in range(2, n):
        yi, yk, ym = pos[j - 2][:, None, None], pos[j - 1][None, :, None], pos[j][None, None, :]
        # column j-1 is covered between the midpoints to its neighbours
        lo = np.minimum(np.minimum((yi + yk) / 2, (yk + ym) / 2), yk) - half
        hi = np.maximum(np.maximum((yi + yk) / 2, (yk + ym) / 2), yk) + half
        c = counts[:, j - 1]
        a = np.clip(np.ceil(lo).astype(int), 0, c.size - 1)
        b = np.clip(np.floor(hi).astype(int) + 1, 0, c.size - 1)
        missed = c[-1] - np.where(b > a, c[b] - c[a], 0.0)
        total = cost[:, :, None] + np.abs(ym - 2 * yk + yi) + UNEXPLAINED_PRICE * missed
        best = np.argmin(total, axis=0)
        cost = (np.take_along_axis(total, best[None], axis=0)[0] + joins(j)
                + SLOPE_PRICE * np.abs(pos[j][None, :] - pos[j - 1][:, None]))
        back.append(best)
    cost = cost + anchor(n - 1)[None, :]
    if not np.isfinite(cost).any():
        return None
    k, m = np.unravel_index(int(np.argmin(cost)), cost.shape)
    chosen = [int(m), int(k)]
    for best in reversed(back):
        chosen.append(int(best[chosen[-1], chosen[-2]]))
    chosen.reverse()
    out = path.astype(float)
    out[j0:j1] = [pos[j][c] + r0 for j, c in enumerate(chosen)]
    return out
