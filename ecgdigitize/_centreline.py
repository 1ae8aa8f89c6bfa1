"""Reading the line centre of a trace from the ink around its tracked path.

Private helpers of :mod:`ecgdigitize.traces` (one panel's band of columns at
a time). Coordinates are pixels of the band, ``y`` down.

- :func:`read_columns`: in each column, the vertical run of ink the path
  meets (bridging columns where the path cut across a narrow QRS).
- :func:`centreline`: the polyline of the line centre. Flat stretches: one
  darkness-weighted centroid per column (sub-pixel). Apexes and nadirs: half
  a line width inside the run's sub-pixel top or bottom edge. Steep strokes: one point per
  pixel row, the horizontal centroid of the stroke; where the up- and
  down-strokes of a sharp wave merge into one horizontal run, a point half a
  stroke width inside each of its ends. Stroke points are then ordered along
  their stroke (sorting them by a noisy sub-pixel ``x`` zig-zags in ``y`` on
  near-vertical strokes).
"""

from __future__ import annotations

import numpy as np

#: Steep strokes are read from horizontal runs at most this many line widths long.
STROKE_RUN = 1.2
#: Cap points sit this many px (plus half a line width) closer to their apex, px.
CAP_SHIFT = 0.0
#: Horizontal runs up to this many times the stroke-run limit are two merged strokes.
MERGED_RUN = 3.0
#: From this many columns on, :func:`run_bounds` steps row by row (faster than accumulate).
_ROW_LOOP_MIN_WIDTH = 256


def run_bounds(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last row of the vertical ink run through each pixel (valid on ink).

    Examples
    --------
    >>> m = np.array([[1, 0], [1, 1], [0, 1], [1, 1]], bool)
    >>> top, bot = run_bounds(m)
    >>> top[m].tolist(), bot[m].tolist()
    ([0, 0, 1, 1, 3, 1], [1, 1, 3, 3, 3, 3])
    """
    h, w = mask.shape
    dtype = np.int16 if h < 32000 else np.int32
    idx = np.arange(h, dtype=dtype)[:, None]
    top = np.where(mask, dtype(-1), idx)
    bot = np.where(mask, dtype(h), idx)
    if w < _ROW_LOOP_MIN_WIDTH:
        top = np.maximum.accumulate(top, axis=0)
        bot = np.minimum.accumulate(bot[::-1], axis=0)[::-1]
    else:
        # a running max/min row by row: numpy's accumulate along axis 0 walks each
        # column with a stride, 3x slower than these whole-row steps on a sheet
        for r in range(1, h):
            np.maximum(top[r - 1], top[r], out=top[r])
        for r in range(h - 2, -1, -1):
            np.minimum(bot[r + 1], bot[r], out=bot[r])
    top += 1
    bot -= 1
    return top, bot


def read_columns(band: np.ndarray, path: np.ndarray, reach: int,
                 bounds: tuple[np.ndarray, np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top row, bottom row (NaN off ink) and on-ink flag of the ink run per column.

    The run is the longest vertical run of ink within ``reach + 1`` px of
    the path (or, failing that, between the runs of both neighbouring
    columns on a steep stroke).
    """
    h, w = band.shape
    cols = np.arange(w)
    offsets = sorted(range(-reach - 1, reach + 2), key=abs)
    near = np.stack([np.clip(path + d, 0, h - 1) for d in offsets])
    hit = band[near, cols]
    on_ink = hit.any(axis=0)
    top, bot = bounds
    # the longest run within reach: a QRS stroke or the trace, not a speck or
    # a grid fragment next to it (ties go to the run nearest the path)
    length = (bot[near, cols] - top[near, cols]).astype(float)
    length -= 0.01 * np.abs(np.asarray(offsets, dtype=float))[:, None]
    start = near[np.argmax(np.where(hit, length, -np.inf), axis=0), cols]
    t = np.where(on_ink, top[start, cols], np.nan)
    b = np.where(on_ink, bot[start, cols], np.nan)
    _bridge_steep(band, path, on_ink, t, b, bounds)
    return t, b, on_ink


def line_width(t: np.ndarray, b: np.ndarray, min_flat: int = 8) -> float:
    """Vertical thickness of the line, px: the 25th percentile of flat columns' runs.

    A column is flat when its run's middle is at most 1 px from both
    neighbours'. On a sloped stretch a run is longer than the line is thick
    (by about the slope), so a trace that is steep almost everywhere (a tall
    wave at high rate, a stretched time axis) would otherwise look thick;
    with fewer than ``min_flat`` flat columns every run counts.

    Examples
    --------
    >>> t = np.array([10.0, 10, 10, 10, 10, 10, 10, 10, 10, 20, 30, 40])
    >>> line_width(t, t + 2, min_flat=4), line_width(t, t + 12, min_flat=40)
    (3.0, 13.0)
    """
    length = b - t + 1
    mid = (t + b) / 2
    flat = np.zeros(t.size, dtype=bool)
    flat[1:-1] = (np.abs(mid[1:-1] - mid[:-2]) <= 1) & (np.abs(mid[1:-1] - mid[2:]) <= 1)
    if np.count_nonzero(flat & np.isfinite(length)) >= min_flat:
        return float(np.nanpercentile(length[flat], 25))
    if not np.isfinite(length).any():
        return float("nan")
    return float(np.nanpercentile(length, 25))


def centreline(t: np.ndarray, b: np.ndarray, mode: str, band: np.ndarray | None = None,
               weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Polyline ``(x, y)`` (x relative to the first column) of the line centre.

    ``"midpoint"``: the middle of each column's run. ``"hybrid"``: the same,
    except at apexes (a run that tops both neighbours' runs: its top plus half
    the line width), nadirs (likewise at the bottom) and steep strokes
    (runs over 2.5 line widths): there the stroke is read row by row, each
    row's horizontal run centre giving ``x`` (the midpoint of a long vertical
    run is off wherever the stroke curves), two points per row where two
    strokes merge (see :func:`_stroke_points`), and the points are ordered
    along their stroke (:func:`_monotone_strokes`). With ``weight`` (ink
    darkness of ``band`` above a floor, about 1 on solid ink), centres are
    darkness-weighted centroids: sub-pixel.
    """
    w = t.size
    x = np.arange(w, dtype=float)
    mid = (t + b) / 2
    if mode == "midpoint" or not np.isfinite(mid).any():
        return x, mid
    width = line_width(t, b)
    half = 0.5 * max(width - 1, 0.0)
    inf = np.array([np.inf])
    tp, tn = np.concatenate((-inf, t[:-1])), np.concatenate((t[1:], -inf))
    bp, bn = np.concatenate((inf, b[:-1])), np.concatenate((b[1:], inf))
    # an apex tops both neighbours' runs (strictly at least one), a nadir
    # reaches below both; a flat run (ties both ways) is neither, nor is an end
    # column (with one neighbour, the first column of a steep stroke would be one)
    apex = (t <= np.fmin(tp, tn)) & (t < np.fmax(tp, tn))
    nadir = (b >= np.fmax(bp, bn)) & (b > np.fmin(bp, bn))
    steep = np.isfinite(t) & (b - t + 1 > 2.5 * width)
    if weight is not None:
        mid = np.where(steep, mid, _centroid(weight, t, b, x.astype(int), axis=0))
    y = np.where(apex & ~nadir, t + half, np.where(nadir & ~apex, b - half, mid))
    if weight is not None:
        y = _subpixel_caps(weight, t, b, y, apex & ~nadir, nadir & ~apex, ~steep)
    if band is None:
        return x, y
    sx, sy = _stroke_points(band, t, b, steep & ~(apex ^ nadir), STROKE_RUN * width, weight,
                            steep)
    keep = ~steep | (apex ^ nadir)
    # stroke rows covered in each column: cap points must reach beyond them
    sc = np.floor(sx + 0.5).astype(int).clip(0, w - 1)
    s_top, s_bot = np.full(w, np.inf), np.full(w, -np.inf)
    np.minimum.at(s_top, sc, sy)
    np.maximum.at(s_bot, sc, sy)
    cx, cy = _cap_points(t, b, steep & ~keep, apex & ~nadir, nadir & ~apex, half,
                         half + CAP_SHIFT, (s_top, s_bot))
    xk = x[keep].copy()
    if weight is not None:
        tips = np.flatnonzero(keep & steep & (apex ^ nadir))
        rows = np.where(apex[tips], t[tips] + 1, b[tips] - 1).astype(int)
        xk[np.searchsorted(np.flatnonzero(keep), tips)] = _tip_x(band, weight, rows, tips)
    xs = np.concatenate((xk, sx, cx))
    ys = np.concatenate((y[keep], sy, cy))
    stroke = np.r_[np.zeros(xk.size, bool), np.ones(sx.size, bool), np.zeros(cx.size, bool)]
    order = np.argsort(xs, kind="stable")
    xs, ys, stroke = xs[order], ys[order], stroke[order]
    _monotone_strokes(xs, ys, stroke)
    return xs, ys


def _subpixel_caps(weight: np.ndarray, t: np.ndarray, b: np.ndarray, y: np.ndarray,
                   apex: np.ndarray, nadir: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """``y`` with apexes (nadirs) half a line width inside the sub-pixel ink edge.

    The edge is the run's end row, moved by the partial ink of the pixels
    just outside and at it (``weight`` about 1 on solid ink); the line width
    is the median vertical ink mass of the ``flat`` columns. Sub-pixel where
    the run's end row alone (integer) rounds every apex by up to half a px.
    """
    ok = np.isfinite(t) & np.isfinite(b)
    if not (ok & flat).any():
        return y
    h = weight.shape[0]
    cols = np.flatnonzero(ok)
    ti, bi = t[ok].astype(int), b[ok].astype(int)

    def ink(rows: np.ndarray, at: np.ndarray) -> np.ndarray:
        # clipped where read, not over the whole band
        return np.minimum(weight[rows, at], 1.0)

    idx = ti[:, None] - 1 + np.arange(int((bi - ti).max()) + 3)[None, :]
    inside = idx <= bi[:, None] + 1
    mass = np.where(inside, ink(np.clip(idx, 0, h - 1), cols[:, None]), 0.0).sum(axis=1)
    half = 0.5 * float(np.median(mass[flat[ok]]))
    top = ti - 0.5 - ink(np.maximum(ti - 1, 0), cols) + 1.0 - ink(ti, cols)
    bot = bi + 0.5 + ink(np.minimum(bi + 1, h - 1), cols) - 1.0 + ink(bi, cols)
    out = y.copy()
    out[cols] = np.where(apex[ok], top + half, np.where(nadir[ok], bot - half, y[ok]))
    return out


def _monotone_strokes(xs: np.ndarray, ys: np.ndarray, stroke: np.ndarray) -> None:
    """Order the row-by-row points of steep strokes along the strokes (in place).

    Between two column points, a run of stroke points (``stroke``) is one
    monotone stroke, or two meeting at an apex or nadir beyond both ends.
    Sorted by their noisy sub-pixel ``x``, points of a near-vertical stroke
    zig-zag in ``y``; instead each leg is sorted by ``y`` in its direction
    and ``x`` is made non-decreasing (mean of the forward running maximum
    and the backward running minimum). Runs that fit neither shape are left.
    """
    edges = np.flatnonzero(np.diff(np.r_[0, stroke.astype(np.int8), 0]))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if a == 0 or b >= xs.size or b - a < 2:
            continue
        order = _stroke_order(xs[a:b], ys[a:b], ys[a - 1], ys[b])
        if order is None:
            continue
        x, y = xs[a:b][order], ys[a:b][order]
        x = 0.5 * (np.maximum.accumulate(x) + np.minimum.accumulate(x[::-1])[::-1])
        xs[a:b] = np.clip(x, xs[a - 1], xs[b])
        ys[a:b] = y


def _stroke_order(x: np.ndarray, y: np.ndarray, y0: float, y1: float) -> np.ndarray | None:
    """Order of stroke points from a point at ``y0`` to one at ``y1`` (None: unclear)."""
    if not (np.isfinite(y0) and np.isfinite(y1)):
        return None
    lo, hi = min(y0, y1) - 1.0, max(y0, y1) + 1.0
    if y.min() >= lo and y.max() <= hi:
        if abs(y1 - y0) < 1.0:
            return None
        return np.argsort(y if y1 > y0 else -y, kind="stable")
    if y.min() < lo and y.max() > hi:
        return None                              # both an apex and a nadir
    e = int(np.argmin(y) if y.min() < lo else np.argmax(y))
    sign = 1.0 if y.min() < lo else -1.0         # +1: apex (y decreasing to it)
    first = np.flatnonzero(x < x[e])
    second = np.flatnonzero(x > x[e])
    ties = np.flatnonzero((x == x[e]) & (np.arange(x.size) != e))
    if ties.size:
        return None
    if (sign * (y[first] - y0) > 1.0).any() or (sign * (y[second] - y1) > 1.0).any():
        return None                              # a leg goes back beyond its end
    return np.concatenate((first[np.argsort(sign * y[first], kind="stable")[::-1]], [e],
                           second[np.argsort(sign * y[second], kind="stable")]))


def _tip_x(band: np.ndarray, weight: np.ndarray, rows: np.ndarray, cols: np.ndarray
           ) -> np.ndarray:
    """Sub-pixel x of sharp apexes: the centroid of the ink row just inside the tip."""
    w = band.shape[1]
    out = cols.astype(float)
    for k, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        lo, hi = max(0, c - 3), min(w, c + 4)
        seg = np.where(band[r, lo:hi], weight[r, lo:hi], 0.0)
        if seg.sum() > 0:
            out[k] = float(np.clip((seg * np.arange(lo, hi)).sum() / seg.sum(), c - 0.5, c + 0.5))
    return out


def _cap_points(t: np.ndarray, b: np.ndarray, bare: np.ndarray, apex: np.ndarray,
                nadir: np.ndarray, half: float, shift: float,
                strokes: tuple[np.ndarray, np.ndarray], reach: int = 4
                ) -> tuple[np.ndarray, np.ndarray]:
    """Points of the rounded cap next to an apex (nadir) where both strokes merge.

    There a column's run top (bottom) is the curve a little closer to the
    apex: ``shift`` px towards it, ``half`` a line width inside the ink. A
    point is added only where it reaches beyond the column's stroke points
    (``strokes``: their top and bottom row per column).
    """
    xs, ys = [], []
    ia, ina = np.flatnonzero(apex), np.flatnonzero(nadir)
    for x in np.flatnonzero(bare):
        da = ia[np.abs(ia - x) <= reach]
        dn = ina[np.abs(ina - x) <= reach]
        a = da[np.argmin(np.abs(da - x))] if da.size else None
        n = dn[np.argmin(np.abs(dn - x))] if dn.size else None
        if a is not None and (n is None or abs(a - x) < abs(n - x)):
            target, value = a, t[x] + half
            if value > strokes[0][x] - 1:
                continue
        elif n is not None and (a is None or abs(n - x) < abs(a - x)):
            target, value = n, b[x] - half
            if value < strokes[1][x] + 1:
                continue
        else:
            continue
        step = min(shift, abs(target - x) - 0.25)
        xs.append(x + np.sign(target - x) * step)
        ys.append(value)
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


def _centroid(weight: np.ndarray, lo: np.ndarray, hi: np.ndarray, at: np.ndarray,
              axis: int) -> np.ndarray:
    """Weighted centre of ``weight`` from ``lo - 1`` to ``hi + 1`` along ``axis``.

    ``at`` gives the other coordinate (column for ``axis=0``, row for
    ``axis=1``); NaN bounds give NaN.
    """
    ok = np.isfinite(lo) & np.isfinite(hi)
    out = np.full(lo.shape, np.nan)
    if not ok.any():
        return out
    lo_i, hi_i, at_i = lo[ok].astype(int) - 1, hi[ok].astype(int) + 1, at[ok]
    span = int((hi_i - lo_i).max()) + 1
    idx = lo_i[:, None] + np.arange(span)[None, :]
    inside = (idx <= hi_i[:, None]) & (idx >= 0) & (idx < weight.shape[axis])
    idx = np.clip(idx, 0, weight.shape[axis] - 1)
    w = weight[idx, at_i[:, None]] if axis == 0 else weight[at_i[:, None], idx]
    w = np.where(inside, w, 0.0)
    total = w.sum(axis=1)
    centre = (w * idx).sum(axis=1) / np.where(total > 0, total, 1.0)
    out[ok] = np.where(total > 0, centre, (lo[ok] + hi[ok]) / 2)
    return out


def _stroke_points(band: np.ndarray, t: np.ndarray, b: np.ndarray, steep: np.ndarray,
                   max_run_px: float, weight: np.ndarray | None = None,
                   long: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``(x, y)`` of the horizontal runs crossing steep columns' runs.

    A narrow run (at most ``max_run_px``) centred on a ``steep`` column is
    one stroke: its centre, or its darkness-weighted centroid. Near a sharp
    apex or nadir the up- and down-strokes merge into one wider run (up to
    :data:`MERGED_RUN` times ``max_run_px``): when both its ends lie on
    columns with long vertical runs (``long``, default ``steep``) and inside
    the band, each stroke is half a stroke width inside the run's sub-pixel
    left and right edges (edges from the partial ink of the end pixels; the
    stroke width is the median ink mass of the narrow runs). Without the
    merged points the polyline would cut straight from the last separate
    rows to the apex, early on the upstroke and late on the downstroke.
    """
    long = steep if long is None else long
    if not long.any():
        return np.empty(0), np.empty(0)
    lo, hi = int(np.nanmin(t[long])), int(np.nanmax(b[long])) + 1
    sub = band[lo:hi]
    left, right = (a.T for a in run_bounds(np.ascontiguousarray(sub.T)))
    centre = (left + right) / 2.0
    rows = np.arange(lo, hi)[:, None]
    cols = np.arange(band.shape[1])[None, :]
    inside = sub & long[None, :] & (rows >= t[None, :]) & (rows <= b[None, :])
    run = right - left + 1
    sel = inside & steep[None, :] & (run <= max_run_px) & (np.floor(centre + 0.5) == cols)
    ry, cx = np.nonzero(sel)
    xs = centre[ry, cx]
    if weight is not None and ry.size:
        xs = _centroid(weight, left[ry, cx].astype(float), right[ry, cx].astype(float),
                       ry + lo, axis=1)
    ys = (ry + lo).astype(float)
    # merged runs, read once (at their left end); one cut by the band's edge is not
    merged = (sub & (run > max_run_px) & (run <= MERGED_RUN * max_run_px) & (cols == left)
              & (left > 0) & (right < band.shape[1] - 1))
    my, mx = np.nonzero(merged)
    if my.size == 0:
        return xs, ys
    ml, mr = left[my, mx].astype(int), right[my, mx].astype(int)
    ok = inside[my, ml] & inside[my, mr]
    if not ok.any():
        return xs, ys
    my, ml, mr = my[ok], ml[ok], mr[ok]
    half = 0.5 * (max_run_px / STROKE_RUN)
    if weight is not None:
        w = band.shape[1]
        r = my + lo

        def ink(at: np.ndarray) -> np.ndarray:
            return np.minimum(weight[r, at], 1.0)    # clipped where read

        a = ml - 0.5 - ink(np.maximum(ml - 1, 0)) + 1.0 - ink(ml)
        z = mr + 0.5 + ink(np.minimum(mr + 1, w - 1)) - 1.0 + ink(mr)
        if xs.size:
            half = 0.5 * float(np.median(_run_mass(weight, left[ry, cx], right[ry, cx], ry + lo)))
    else:
        a, z = ml - 0.5, mr + 0.5
    xs = np.concatenate((xs, a + half, z - half))
    ys = np.concatenate((ys, (my + lo).astype(float), (my + lo).astype(float)))
    return xs, ys


def _run_mass(weight: np.ndarray, left: np.ndarray, right: np.ndarray, rows: np.ndarray
              ) -> np.ndarray:
    """Ink mass (sum of ``weight``) of horizontal runs widened by one px each side, px."""
    span = int((right - left).max()) + 3
    idx = left[:, None] - 1 + np.arange(span)[None, :]
    inside = idx <= right[:, None] + 1
    idx = np.clip(idx, 0, weight.shape[1] - 1)
    return np.where(inside, np.minimum(weight[rows[:, None], idx], 1.0), 0.0).sum(axis=1)


def _bridge_steep(band: np.ndarray, path: np.ndarray, on_ink: np.ndarray, t: np.ndarray,
                  b: np.ndarray, bounds: tuple[np.ndarray, np.ndarray], max_gap: int = 8) -> None:
    """Re-read columns the path crossed off the stroke, inside steep complexes (in place).

    The path may cut straight through a narrow QRS (every column has ink at
    mid-height) and so land, in a column or two, off ink or on a speck next
    to the stroke. The trace must pass between the runs of the columns on
    either side, so there the longest run in that span is taken; at the
    band's first or last columns, within the run of the one column beside them.
    """
    w = band.shape[1]
    length = b - t + 1
    if not on_ink.any():
        return
    width = line_width(t, b)
    bad = ~on_ink | (length < 0.75 * width)
    miss = np.concatenate(([0], bad.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(miss))
    for g0, g1 in zip(edges[::2], edges[1::2], strict=True):
        # the columns on either side; at the band's edge, the one inside
        sides = [c for c in (g0 - 1, g1) if 0 <= c < w]
        if not sides or g1 - g0 > max_gap or bad[sides].any():
            continue
        if on_ink[g0:g1].all() and length[sides].min() < 2 * width:
            continue            # a thin spot on a flat stretch, not a stroke crossing
        lo = int(t[sides].min())
        hi = int(b[sides].max())
        for x in range(g0, g1):
            rows = np.flatnonzero(band[lo:hi + 1, x]) + lo
            if rows.size:
                y0 = rows[np.argmax(bounds[1][rows, x] - bounds[0][rows, x])]
                t[x], b[x], on_ink[x] = bounds[0][y0, x], bounds[1][y0, x], True
