"""Refining a trace's polyline by fitting a drawn line to the ink (model-based reading).

Private helper of :mod:`ecgdigitize.traces`. The centre line read column by
column (module ``_centreline``) cannot be finer than the ink's own blur: a pen
about 3 px wide averages a QRS complex over the several pixels it covers.
Here the polyline itself is the unknown. A printed trace is the polyline
thickened by the pen: a pixel's ink coverage is about
``clip((r + a/2 - d) / a, 0, 1)``, with ``d`` its distance from the polyline,
``r`` half the pen width and ``a`` the width of the anti-aliased (or
blurred) edge. Starting from the column reading, the vertices (one per
:data:`SPACING_PX` of the time axis) are moved up and down by damped
Gauss-Newton steps until the coverage they predict matches the ink, while
``r`` and ``a`` are refined with them. Only pixels on the line's edges inform
a step; a pixel depends on the two ends of its nearest segment, and a
curvature penalty on the correction to the column reading (vertices between
pixel columns are otherwise free to zig-zag) couples each vertex to two more,
so the normal equations are banded, bordered by the two pen unknowns, and one
step costs a few array passes and a banded solve. Measured effect: see the
"Fitting a drawn line to the ink" section of docs/how-it-works.md.

Coordinates are working-image pixels, ``y`` down, pixel centres at integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.linalg import solveh_banded

from .clean import _finite_runs

#: Vertex spacing of the fitted polyline along the time axis, px (0.39 px is one 500 Hz
#: sample at 25 mm/s and 200 dpi).
SPACING_PX = 0.4
#: Gauss-Newton steps (6 until 2026-11-27; 10-15 gained nothing more on the 51 clean renders).
ITERATIONS = 8
#: Levenberg damping added to the normal equations (per vertex).
DAMPING = 0.03
#: Weight of the curvature penalty on the correction to the column reading. 0.05 tied the
#: line to the reading's errors (51 clean renders, 8 px leash: 0.05 23.65, 0.01 23.79,
#: 0.003 23.82, 0 23.72 dB mean); below 0.01 a lone 70 px spike read well by the columns
#: comes out 0.02 px RMS worse (tests/test_inkfit.py).
SMOOTH = 0.01
#: Largest move of a vertex in one step, px.
MAX_STEP_PX = 1.0
#: Coverage below this counts as paper (a coloured or grey grid line leaves some), 0-1.
#: Measuring it per sheet (95th percentile beside the traces) was tried: -0.1 dB on clean
#: and -0.2 dB on grey-grid renders. 0.2 (2026-11-27) gave +0.11 dB on the 51 clean renders
#: and nothing on the stress matrix or the real sheets, but lies below the darkness of a red
#: grid line (0.24-0.29 of the ink's): kept at 0.3.
FLOOR = 0.3
#: Largest change of the pen's half width or edge width in one step, px.
MAX_RADIUS_STEP_PX = 0.2
#: Stretches of ink shorter than this (px) keep their column reading: a trace broken into
#: specks (a gridless low-resolution sheet) would cost a fit call each for nothing.
MIN_RUN_PX = 8.0
#: Largest total move of a vertex from the column reading, px; beyond it the reading stays
#: (3 px until 2026-11-27: 8 px raised the 51 clean renders 23.49 -> 23.65 dB, 20 px the same).
MAX_MOVE_PX = 8.0


class Coverage:
    """Ink coverage of a darkness image, 0 (paper) to 1, computed only where it is read.

    ``Coverage(darkness, level)[idx]`` equals ``np.minimum(darkness[idx] / level, 1)``
    (float32); the whole image is never converted, since the fit reads only the
    pixels near the traces.

    Examples
    --------
    >>> cov = Coverage(np.array([[0, 100, 250]], np.uint8), 200)
    >>> cov.shape, cov[0, 1:].tolist()
    ((1, 3), [0.5, 1.0])
    """

    def __init__(self, darkness: np.ndarray, level: float) -> None:
        self.darkness = darkness
        self.level = max(level, 1)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.darkness.shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.minimum(self.darkness[index].astype(np.float32) / self.level, 1.0)


def pen_profile(coverage: np.ndarray | Coverage, lines: Sequence[tuple[np.ndarray, np.ndarray]], *,
                floor: float = FLOOR, max_columns: int = 400) -> tuple[float, float] | None:
    """Half pen width ``r`` and edge width ``a`` (px) from the flat stretches of traces.

    Columns where a line ``(x, y)`` is flat and nothing else is inked within
    5 px give the pen's vertical profile. Above ``floor`` its mass is
    ``2 r - a floor`` whatever the line's sub-pixel position; the edge width
    is the one whose model profile, each column at its best sub-pixel
    offset, fits best. None when fewer than 8 such columns are found.
    """
    h, w = coverage.shape
    profs, centres = [], []
    for x, y in lines:
        ok = np.isfinite(y)
        if ok.sum() < 16:
            continue
        cols = np.arange(max(0, int(np.ceil(x[ok][0]))), min(w, int(np.floor(x[ok][-1])) + 1))
        yc = np.interp(cols, x[ok], y[ok])
        flat = np.zeros(cols.size, dtype=bool)
        flat[2:-2] = np.abs(yc[4:] - yc[:-4]) <= 0.5
        rows = np.rint(yc[flat]).astype(int)[:, None] + np.arange(-5, 6)[None, :]
        inside = (rows >= 0) & (rows < h)
        prof = np.where(inside, coverage[np.clip(rows, 0, h - 1), cols[flat][:, None]], 0.0)
        # nothing but the pen: paper at both ends (no grid line, trace or label)
        clean = (prof[:, 0] < 0.05) & (prof[:, -1] < 0.05)
        profs.append(prof[clean])
        centres.append(yc[flat][clean])
    if not profs or sum(p.shape[0] for p in profs) < 8:
        return None
    prof = _above_floor(np.concatenate(profs), floor)
    yc = np.concatenate(centres)
    # a jagged (noisy) stretch looks like a wider pen: keep the narrower half
    m = np.maximum(prof.sum(axis=1), 1e-6)
    mu = (prof * np.arange(11)).sum(axis=1) / m
    spread = (prof * (np.arange(11)[None, :] - mu[:, None]) ** 2).sum(axis=1) / m
    keep = spread <= np.median(spread)
    step = max(1, int(keep.sum()) // max_columns)
    prof, yc = prof[keep][::step], yc[keep][::step]
    base = np.arange(-5, 6)[None, None, :] + np.rint(yc)[:, None, None]
    mass = float(np.median(prof.sum(axis=1)))
    shifts = np.linspace(-0.6, 0.6, 25)
    best = (np.inf, float("nan"), float("nan"))
    dist = np.abs(base - (yc[:, None, None] + shifts[None, :, None]))
    for a in np.arange(0.6, 4.01, 0.1):
        r = 0.5 * (mass + a * floor)
        if r - 0.5 * a < 0:
            continue
        model = _above_floor(np.clip((r + 0.5 * a - dist) / a, 0.0, 1.0), floor)
        err = float(((model - prof[:, None, :]) ** 2).sum(axis=2).min(axis=1).sum())
        if err < best[0]:
            best = (err, r, float(a))
    if not np.isfinite(best[0]):
        return None
    return best[1], best[2]


def fit_polyline(coverage: np.ndarray | Coverage, x: np.ndarray, y: np.ndarray, radius: float,
                 edge: float = 1.0, *, floor: float = FLOOR, spacing: float = SPACING_PX,
                 iterations: int = ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """Polyline ``(x, y)`` drawn with half width ``radius`` that best explains ``coverage``.

    Parameters
    ----------
    coverage : ndarray of shape (H, W), float, or Coverage
        Ink coverage of every pixel, 0 (paper) to 1 (solid ink).
    x, y : ndarray of shape (n,)
        Starting polyline, ``x`` non-decreasing; NaN ``y`` breaks it (each
        finite run is fitted on its own).
    radius : float
        Half the pen width, px.
    edge : float, default 1.0
        Width of the ink's edge ramp, px (1 for anti-aliasing; more when blurred).
    floor : float, default FLOOR
        Coverage that counts as paper (grid lines stay below it).
    spacing : float, default SPACING_PX
        Vertex spacing of the result along ``x``, px.
    iterations : int, default ITERATIONS
        Gauss-Newton steps.

    Runs of finite ``y`` shorter than :data:`MIN_RUN_PX` are returned as given.

    Returns
    -------
    x, y : ndarray
        The fitted polyline, vertices every ``spacing`` px; NaN between runs.

    Examples
    --------
    A wave drawn with a 2 px pen, read with a wobble of 0.8 px (RMS 0.56 px):

    >>> from ecgdigitize.synth.draw import ink_mask
    >>> xs = np.arange(5.0, 75.0, 0.4)
    >>> true = 20 + 8 * np.exp(-((xs - 40) / 3) ** 2)
    >>> cov = ink_mask((40, 80), [(xs, true)], 2.0).astype(float)
    >>> fx, fy = fit_polyline(cov, xs, true + 0.8 * np.sin(xs), 1.45)
    >>> err = np.interp(xs, fx, fy)[20:-20] - true[20:-20]
    >>> bool(np.sqrt(np.mean(err**2)) < 0.2)
    True
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    xs_out, ys_out = [], []
    for start, stop in _finite_runs(y):
        xr, yr = x[start:stop], y[start:stop]
        if xr[-1] - xr[0] < MIN_RUN_PX:
            xs_out.append(xr)
            ys_out.append(yr)
        else:
            xv = xr[0] + spacing * np.arange(int(np.floor((xr[-1] - xr[0]) / spacing)) + 1)
            y0 = np.interp(xv, xr, yr)
            yv = _gauss_newton(coverage, xv, y0, radius, edge, floor, iterations)
            xs_out.append(xv)
            ys_out.append(yv)
        xs_out.append(np.array([np.nan]))
        ys_out.append(np.array([np.nan]))
    if not xs_out:
        return x.copy(), y.copy()
    xo, yo = np.concatenate(xs_out[:-1]), np.concatenate(ys_out[:-1])
    # the x of a break: between its neighbours, so x stays sorted
    gaps = np.flatnonzero(np.isnan(xo))
    xo[gaps] = 0.5 * (xo[gaps - 1] + xo[gaps + 1])
    return xo, yo


def _second_difference_normal(v: np.ndarray) -> np.ndarray:
    """``D.T @ D @ v`` for the second-difference operator ``D``."""
    if v.size < 3:
        return np.zeros(v.size)
    d2 = v[:-2] - 2.0 * v[1:-1] + v[2:]
    out = np.zeros(v.size)
    out[:-2] += d2
    out[1:-1] -= 2.0 * d2
    out[2:] += d2
    return out


def _above_floor(v: np.ndarray, floor: float) -> np.ndarray:
    return np.clip((v - floor) / (1.0 - floor), 0.0, 1.0)


def _gauss_newton(coverage: np.ndarray | Coverage, xv: np.ndarray, y0: np.ndarray, r: float, a: float,
                  floor: float, iterations: int) -> np.ndarray:
    """Vertex heights of a uniformly spaced polyline fitted to ``coverage``."""
    h, w = coverage.shape
    n = xv.size
    dx = xv[1] - xv[0]
    r_start = r
    reach = r + 0.5 * a
    c0, c1 = max(0, int(np.ceil(xv[0] - reach))), min(w - 1, int(np.floor(xv[-1] + reach)))
    if c1 <= c0:
        return y0
    y = y0.astype(np.float32)
    # the floor applied once, to the rows the line can reach
    top = max(0, int(np.floor(np.nanmin(y0) - reach - MAX_MOVE_PX - 2)))
    bottom = min(h, int(np.ceil(np.nanmax(y0) + reach + MAX_MOVE_PX + 3)))
    crop = _above_floor(coverage[top:bottom, c0:c1 + 1], floor).astype(np.float32)
    # curvature penalty on the correction (y - y0), in upper banded form: it damps
    # the zig-zag that vertices between pixel columns are free to make
    smooth = np.zeros((3, n))
    if n >= 3:
        smooth[2] = SMOOTH * np.convolve(np.ones(n - 2), [1.0, 4.0, 1.0])
        smooth[2, [0, -1]] = SMOOTH
        smooth[1, 1:] = -SMOOTH * np.convolve(np.ones(n - 2), [2.0, 2.0])
        smooth[0, 2:] = SMOOTH
    for _ in range(iterations):
        pr, pc, d, uu, ry, sg = _edge_pixels(y, float(xv[0]), float(dx), reach, a, floor,
                                             (c0, c1, top, bottom))
        z = (reach - d) / a
        # compared above the floor, where grid lines leave no ink
        res = _above_floor(z, floor) - crop[pr - top, pc - c0]
        g = ry / d / (a * (1.0 - floor))
        ga, gb = g * (1.0 - uu), g * uu
        banded = smooth.copy()
        banded[2] += DAMPING + np.bincount(sg, ga * ga, n) + np.bincount(sg + 1, gb * gb, n)
        banded[1, 1:] += np.bincount(sg, ga * gb, n)[:-1]
        rhs = (np.bincount(sg, ga * res, n) + np.bincount(sg + 1, gb * res, n)
               + SMOOTH * _second_difference_normal(y - y0))
        # the pen's half width and edge width are two more unknowns (their estimates
        # from flat stretches are off by a few hundredths of a px, which moves every
        # apex): a banded system bordered by two columns
        jr = np.full(d.size, 1.0 / (a * (1.0 - floor)))
        ja = (d - r) / (a * a * (1.0 - floor))
        border = np.stack([np.bincount(sg, ga * jg, n) + np.bincount(sg + 1, gb * jg, n)
                           for jg in (jr, ja)], axis=1)
        sol = solveh_banded(banded, np.column_stack([-rhs, border]), check_finite=False)
        gram = np.array([[jr @ jr, jr @ ja], [jr @ ja, ja @ ja]]) + DAMPING * np.eye(2)
        schur = gram - border.T @ sol[:, 1:]
        dg = np.linalg.solve(schur, -np.array([jr @ res, ja @ res]) - border.T @ sol[:, 0])
        dg = np.clip(dg, -MAX_RADIUS_STEP_PX, MAX_RADIUS_STEP_PX)
        dr = float(np.clip(r + dg[0], r_start - 1.0, r_start + 1.0)) - r
        da = float(np.clip(a + dg[1], 0.5, 3.0)) - a
        r += dr
        a += da
        reach = r + 0.5 * a
        step = sol[:, 0] - sol[:, 1] * dr - sol[:, 2] * da
        y += np.clip(step, -MAX_STEP_PX, MAX_STEP_PX).astype(np.float32)
    y = y.astype(float)
    far = np.abs(y - y0) > MAX_MOVE_PX
    y[far] = y0[far]
    return y


def _edge_pixels(y: np.ndarray, x0: float, dx: float, reach: float, a: float, floor: float,
                 box: tuple[int, int, int, int]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pixels on the edge ramp of the line drawn along ``y``, with their nearest segment.

    Only these pixels inform a Gauss-Newton step: deeper inside the pen the
    coverage is 1 whatever the line's position, farther out it is 0, and the
    ramp lies nearer than ``reach - floor a`` to the line. Each segment
    (vertices ``k`` and ``k + 1``, ``x0 + dx k`` to ``x0 + dx (k + 1)``) lists
    the pixels within that distance of its bounding box; a pixel keeps the
    segment nearest to it. Listing by segment rather than by column keeps a
    steep stroke from listing every pixel of its height once per segment.

    Parameters
    ----------
    y : ndarray of shape (n,), float32
        Vertex heights, px.
    x0, dx : float
        First vertex's x and the vertex spacing, px.
    reach : float
        ``r + a / 2``: the farthest a pixel with ink can be from the line, px.
    a, floor : float
        Edge width (px) and the coverage that counts as paper.
    box : (c0, c1, top, bottom)
        Columns ``c0..c1`` and rows ``top..bottom - 1`` that may be listed.

    Returns
    -------
    rows, cols : ndarray of int
        The pixels (each once).
    dist, along, dy : ndarray of float
        Distance to the nearest segment (px), the fraction along it of the
        nearest point (0-1), and the pixel's height above that point (px).
    seg : ndarray of int
        Index ``k`` of the nearest segment.
    """
    c0, c1, top, bottom = box
    # a pixel on the ramp is nearer than reach - floor * a to some segment, so to its nearest
    near = reach - floor * a
    i32, f32 = np.int32, np.float32
    k = np.arange(y.size - 1, dtype=i32)
    ya, yb = y[:-1], y[1:]
    xa = x0 + dx * k
    col_lo = np.maximum(np.ceil(xa - near), c0).astype(i32)
    ncol = np.maximum(np.minimum(np.floor(xa + dx + near), c1).astype(i32) - col_lo + 1, 0)
    # (segment, column) pairs; a pair's rows are those within ``near`` of the segment's box
    pair_seg = np.repeat(k, ncol)
    pair_col = (col_lo[pair_seg] + np.arange(pair_seg.size, dtype=i32)
                - np.repeat(np.cumsum(ncol, dtype=i32) - ncol, ncol))
    beside = np.maximum(np.maximum(xa[pair_seg] - pair_col, pair_col - xa[pair_seg] - dx), 0.0)
    tall = np.sqrt(np.maximum(near * near - beside * beside, 0.0)) + 1e-3
    row_lo = np.maximum(np.ceil(np.minimum(ya, yb)[pair_seg] - tall), top).astype(i32)
    count = np.maximum(np.minimum(np.floor(np.maximum(ya, yb)[pair_seg] + tall), bottom - 1)
                       .astype(i32) - row_lo + 1, 0)
    seg = np.repeat(pair_seg, count)
    pc = np.repeat(pair_col, count)
    pr = (np.arange(seg.size, dtype=i32)
          - np.repeat(np.cumsum(count, dtype=i32) - count - row_lo, count))
    # nearest point of each segment (single precision: coordinates within a few hundred px
    # of x0 keep 1e-4 px); vertices are evenly spaced, so a segment's x span is known
    # without a lookup
    ex = (pc - f32(x0)).astype(f32) - f32(dx) * seg.astype(f32)
    ay = y[seg]
    ddy = y[seg + 1] - ay
    ey = pr.astype(f32) - ay
    u = np.clip((ex * f32(dx) + ey * ddy) / (f32(dx * dx) + ddy * ddy), f32(0.0), f32(1.0))
    ey -= u * ddy
    ex -= u * f32(dx)
    d2 = ex * ex + ey * ey
    width = c1 - c0 + 1
    flat = (pr - top) * width + (pc - c0)
    best = np.full((bottom - top) * width, np.inf, dtype=d2.dtype)
    np.minimum.at(best, flat, d2)
    win = np.flatnonzero((d2 == best[flat]) & (d2 < f32(near * near)))
    # one segment per pixel (ties, as at a shared vertex, give the same gradient)
    owner = np.empty(best.size, dtype=np.int64)
    owner[flat[win]] = win
    pick = win[owner[flat[win]] == win]
    d = np.sqrt(d2[pick])
    z = (reach - d) / a
    on = (z > floor) & (z < 1.0) & (d > 1e-6)
    pick = pick[on]
    return pr[pick], pc[pick], d[on], u[pick], ey[pick], seg[pick]
