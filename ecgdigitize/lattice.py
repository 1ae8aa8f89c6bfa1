"""Perspective refinement from the printed grid lattice.

A page-outline homography (:func:`ecgdigitize.geometry.find_page_quad`)
leaves a residual keystone when the outline is curved, cropped or missing,
as in phone photos: the millimetre grid is then a little wider on one side
of the working image than on the other, which bends the time axis (a 2 %
keystone is 5 mm, 0.2 s, across a 250 mm row). The grid itself is the better
reference: its lines sit at every millimetre of paper.

:func:`fit_lattice` reads the local phase of the grid's 1 mm period in small
overlapping tiles (complex demodulation of the grid mask's column and row
profiles), unwraps those phases across the tiles into a continuous "lattice
coordinate" (grid lines at integers), and fits one homography from working
pixels to lattice coordinates by iteratively reweighted least squares. The
smooth departure of the tiles from that homography is the bend of a folded
or curled page; it is kept when it explains many tiles the homography does
not. :func:`refine_by_lattice` applies both when they would move the grid by
more than ``min_deviation_mm``; on a flat scan nothing is resampled.

Coordinates are pixels, ``x`` right and ``y`` down; a homography maps
``(x, y, 1)`` of one image to the other.
"""

from __future__ import annotations

import heapq
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage
from scipy.signal import fftconvolve

from .geometry import _paper_colour
from .grid import GridSpec, _grid_weight_of

__all__ = ["LatticeFit", "fit_lattice", "refine_by_lattice"]

#: Tiles are this many grid periods wide (Hann window) and step half of it.
TILE_PERIODS = 8
#: A tile's phase is used when this much of its profile is the grid period (0..~0.65).
MIN_COHERENCE = 0.3
#: Samples further than this from the fit (grid periods) are dropped in the next pass.
MAX_RESIDUAL = 0.3
#: A fit is trusted when at least this fraction of the coherent tiles agree with it,
MIN_KEPT = 0.7
#: their rms distance from it is at most this, mm,
MAX_RESIDUAL_MM = 0.15
#: and it changes the scale at the middle of the grid by at most this fraction.
MAX_SCALE_CHANGE = 0.02
#: A bend is removed only when it brings this much more of the tiles onto the fit.
MIN_BEND_GAIN = 0.15
#: A tile-to-tile fit kept by this fraction of the tiles is taken without trying the 5 mm lines.
CONFIDENT_KEPT = 0.9
#: The correction is applied when the mapping departs from a plain scaling by more than this.
MIN_DEVIATION_MM = 0.25
#: The lattice needs at least this many tiles in each direction.
MIN_TILES = 24


@dataclass(frozen=True)
class LatticeFit:
    """A homography from working pixels to a regular grid, and how well it fits.

    Attributes
    ----------
    homography : ndarray of shape (3, 3)
        Maps working px to rectified px, in which the grid has exactly
        ``px_per_mm_x`` and ``px_per_mm_y`` px per mm everywhere.
    px_per_mm_x, px_per_mm_y : float
        Scale of the rectified image, px per mm.
    n_tiles : int
        Tile phases used in the final fit (both directions together).
    kept : float
        Fraction of the coherent tiles that agree with the fit (0..1).
    residual_mm : float
        Root mean square distance of those phases from the fit, mm.
    deviation_mm : float
        Largest distance over the grid area between the fitted mapping and
        the best axis-aligned scaling and shift, mm: how much the
        correction would move the grid.
    bend_mm : float, default 0
        Largest smooth departure of the grid from the homography (a fold,
        a curled page), mm; 0 unless the bend brings at least
        :data:`MIN_BEND_GAIN` more of the tiles onto the fit.
        :func:`refine_by_lattice` removes it too when it exceeds its threshold.
    bend : object or None, default None
        The smoothed bend on the tile grids, px (internal to
        :func:`refine_by_lattice`; None when ``bend_mm`` is 0).

    Examples
    --------
    >>> fit = LatticeFit(np.eye(3), 8.0, 8.0, 400, 0.98, 0.02, 0.0)
    >>> fit.n_tiles, fit.deviation_mm
    (400, 0.0)
    """

    homography: np.ndarray
    px_per_mm_x: float
    px_per_mm_y: float
    n_tiles: int
    kept: float
    residual_mm: float
    deviation_mm: float
    bend_mm: float = 0.0
    bend: Any = field(default=None, repr=False, compare=False)


def fit_lattice(rgb: np.ndarray, grid: GridSpec, *,
                grid_weight: np.ndarray | None = None) -> LatticeFit | None:
    """Fit a homography that makes the printed grid regular.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        Working image, upright and roughly deskewed (within a few degrees).
    grid : GridSpec
        The grid found on ``rgb`` (its 1 mm period in x and y, px).
    grid_weight : ndarray of shape (H, W), float32, optional
        :func:`~ecgdigitize.grid.grid_mask` of ``rgb``, when already computed.

    Returns
    -------
    LatticeFit or None
        None when there is no periodic grid (``grid.source != "grid"``) or
        too few tiles show it to fit a homography.

    Raises
    ------
    ConfigurationError
        If ``grid_weight`` is not one value per pixel of ``rgb``.

    Examples
    --------
    >>> img = np.full((600, 800, 3), 255, np.uint8)
    >>> img[:, ::8] = (230, 90, 90); img[::8, :] = (230, 90, 90)
    >>> fit = fit_lattice(img, GridSpec(8.0, 8.0, "solid", (230, 90, 90), 1.0, "grid"))
    >>> round(fit.deviation_mm, 3), fit.residual_mm < 0.05
    (0.0, True)
    """
    if grid.source != "grid" or grid.px_per_mm_x < 2.0 or grid.px_per_mm_y < 2.0:
        return None
    mask = _grid_weight_of(rgb, grid_weight)
    fx, fy = 1.0 / grid.px_per_mm_x, 1.0 / grid.px_per_mm_y
    phx, phy = _phases(mask, fx, TILE_PERIODS), _phases(mask.T, fy, TILE_PERIODS)
    if phx is None or phy is None:
        return None
    minor = (phx, phy)
    # the 1 mm lines unwrapped tile to tile; where that slips (e.g. on a blurred
    # photo), each tile given the whole number of periods the 5 mm lines' fit predicts
    tile_lams = (_unwrapped(minor[0]), _unwrapped(minor[1]))
    best = _fit(minor, tile_lams, grid)
    if best is None or best.kept < CONFIDENT_KEPT:
        major = (_phases(mask, fx / 5, TILE_PERIODS // 2),
                 _phases(mask.T, fy / 5, TILE_PERIODS // 2))
        coarse = None
        if major[0] is not None and major[1] is not None:
            coarse = _fit(major, (_unwrapped(major[0]), _unwrapped(major[1])), grid,
                          min_kept=0.9, max_residual_mm=0.3)
        if coarse is not None:
            guided = _fit(minor, (_guided(minor[0], coarse.homography, 0),
                                  _guided(minor[1], coarse.homography, 1)), grid)
            fits = [f for f in (best, guided) if f is not None]
            best = min(fits, key=lambda f: f.residual_mm) if fits else coarse
    ppm = 0.5 * (grid.px_per_mm_x + grid.px_per_mm_y)
    if best is None:
        # a fold or a curl moves many tiles off any homography: fit the rest, and take
        # the fit if the homography plus the smooth bend explains most tiles
        loose = _fit(minor, tile_lams, grid, min_kept=0.0)
        if loose is None:
            return None
        bend = _bend(minor, tile_lams, loose.homography)
        if bend is None or _kept(minor, tile_lams, loose.homography, bend) < max(
                MIN_KEPT, loose.kept + MIN_BEND_GAIN):
            return None
        return replace(loose, bend_mm=bend.max_px / ppm, bend=bend)
    # a bend is kept only when it explains many tiles the homography does not (a real
    # fold); slips of the tile-to-tile unwrap look like bends of whole periods
    bend = _bend(minor, tile_lams, best.homography)
    if bend is None or _kept(minor, tile_lams, best.homography, bend) < (
            best.kept + MIN_BEND_GAIN):
        return best
    return replace(best, bend_mm=bend.max_px / ppm, bend=bend)


def _kept(phases: tuple[_Phases, _Phases], lams: tuple[np.ndarray, np.ndarray],
          hom: np.ndarray, bend: _Bend) -> float:
    """Fraction of the coherent tiles within :data:`MAX_RESIDUAL` periods of ``hom`` + ``bend``."""
    hits = total = 0
    for axis, (ph, lam) in enumerate(zip(phases, lams, strict=True)):
        r = _departure(ph, lam, hom, axis, bend.rx if axis == 0 else bend.ry)
        ok = np.isfinite(r)
        hits += int(np.sum(np.abs(r[ok]) <= MAX_RESIDUAL / ph.f))
        total += int(ok.sum())
    return hits / max(total, 1)


def _unwrapped(ph: _Phases) -> np.ndarray:
    """Tile-to-tile unwrapped lattice coordinates of the coherent tiles (NaN elsewhere)."""
    good = ph.coherence >= MIN_COHERENCE
    if not good.any():
        return np.full(ph.frac.shape, np.nan)
    return _unwrap(ph.frac, ph.coherence, good, ph.f * ph.step)


def _guided(ph: _Phases, prior: np.ndarray, axis: int) -> np.ndarray:
    """Lattice coordinates given the whole number of periods that ``prior`` predicts."""
    pred = _project(prior, *_image_xy(ph, axis))[axis] * ph.f
    lam = ph.frac + np.round(pred - ph.frac)
    return np.where(ph.coherence >= MIN_COHERENCE, lam, np.nan)


def _fit(phases: tuple[_Phases | None, _Phases | None],
         lams: tuple[np.ndarray, np.ndarray], grid: GridSpec, *, min_kept: float = MIN_KEPT,
         max_residual_mm: float = MAX_RESIDUAL_MM) -> LatticeFit | None:
    """Fit a homography to both directions' unwrapped lattice coordinates ``lams``.

    None unless the fit is trustworthy: at least ``min_kept`` of the coherent
    tiles agree with it, their rms distance is at most ``max_residual_mm``, and
    it keeps the scale at the middle of the grid within :data:`MAX_SCALE_CHANGE`
    (the grid's own period is an average over the sheet, so a fit that changes
    it there has slipped a period somewhere).
    """
    px, py = phases
    if px is None or py is None:
        return None
    samples = []
    for ph, lam in ((px, lams[0]), (py, lams[1])):
        ok = np.isfinite(lam)
        if ok.sum() < MIN_TILES:
            return None
        samples.append((ph.xs[ok], ph.ys[ok], lam[ok] / ph.f, 1.0 / ph.f))
    (xa, ya, ua, pa), (yb, xb, vb, pb) = samples  # the transposed mask swaps x and y
    h = _fit_homography(xa, ya, ua, xb, yb, vb, pa, pb)
    if h is None:
        return None
    hom, keep_x, keep_y, rms_px = h
    if keep_x.sum() < MIN_TILES or keep_y.sum() < MIN_TILES:
        return None
    area = (min(xa.min(), xb.min()), min(ya.min(), yb.min()),
            max(xa.max(), xb.max()), max(ya.max(), yb.max()))
    ppm = 0.5 * (grid.px_per_mm_x + grid.px_per_mm_y)
    n = int(keep_x.sum() + keep_y.sum())
    kept = n / (keep_x.size + keep_y.size)
    if kept < min_kept or rms_px / ppm > max_residual_mm:
        return None
    mid_x, mid_y = np.array([0.5 * (area[0] + area[2])]), np.array([0.5 * (area[1] + area[3])])
    u0, v0 = _project(hom, mid_x, mid_y)
    du = _project(hom, mid_x + 1.0, mid_y)[0] - u0
    dv = _project(hom, mid_x, mid_y + 1.0)[1] - v0
    if max(abs(float(du[0]) - 1.0), abs(float(dv[0]) - 1.0)) > MAX_SCALE_CHANGE:
        return None
    dev = _deviation_mm(hom, area, grid.px_per_mm_x, grid.px_per_mm_y)
    return LatticeFit(hom, grid.px_per_mm_x, grid.px_per_mm_y, n, kept, rms_px / ppm, dev)


def refine_by_lattice(rgb: np.ndarray, grid: GridSpec, *,
                      min_deviation_mm: float = MIN_DEVIATION_MM,
                      fill: tuple[int, int, int] | None = None,
                      grid_weight: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray, LatticeFit | None]:
    """Remove the perspective left in a working image, using its grid.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        Working image (upright, roughly deskewed).
    grid : GridSpec
        Grid found on ``rgb``.
    min_deviation_mm : float, default 0.25
        The image is resampled only when the lattice fit moves some part of
        the grid by more than this, mm.
    fill : (int, int, int), optional
        Colour of areas outside the input (default: the paper colour).
    grid_weight : ndarray of shape (H, W), float32, optional
        :func:`~ecgdigitize.grid.grid_mask` of ``rgb``, when already computed.

    Returns
    -------
    image : ndarray of shape (H', W', 3), uint8
        The corrected image, or ``rgb`` itself when no correction was made.
    homography : ndarray of shape (3, 3)
        From ``rgb`` px to ``image`` px (identity when no correction was made).
    fit : LatticeFit or None
        The lattice fit (None when no grid could be fitted).

    Raises
    ------
    ConfigurationError
        If ``grid_weight`` is not one value per pixel of ``rgb``.

    Examples
    --------
    >>> img = np.full((600, 800, 3), 255, np.uint8)
    >>> img[:, ::8] = (230, 90, 90); img[::8, :] = (230, 90, 90)
    >>> out, hom, fit = refine_by_lattice(img, GridSpec(8.0, 8.0, "solid", None, 1.0, "grid"))
    >>> out is img, hom.tolist() == np.eye(3).tolist()
    (True, True)
    """
    fit = fit_lattice(rgb, grid, grid_weight=grid_weight)
    if fit is None or max(fit.deviation_mm, fit.bend_mm) <= min_deviation_mm:
        return rgb, np.eye(3), fit
    h, w = rgb.shape[:2]
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64).reshape(-1, 1, 2)
    mapped = cv2.perspectiveTransform(corners, fit.homography).reshape(-1, 2)
    lo = mapped.min(axis=0)
    size = mapped.max(axis=0) - lo
    if not np.all(np.isfinite(size)) or size[0] * size[1] > 1.5 * w * h:
        return rgb, np.eye(3), fit  # a wild fit: keep the image as it is
    shift = np.array([[1.0, 0.0, -lo[0]], [0.0, 1.0, -lo[1]], [0.0, 0.0, 1.0]])
    hom = shift @ fit.homography
    colour = fill if fill is not None else _paper_colour(rgb)
    out_size = (int(np.ceil(size[0])), int(np.ceil(size[1])))
    if fit.bend is not None and fit.bend_mm > min_deviation_mm:
        map_x, map_y = _bend_maps(hom, fit.bend, out_size)
        out = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=colour)
    else:
        out = cv2.warpPerspective(rgb, hom, out_size, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=colour)
    return out, hom, fit


def _bend_maps(hom: np.ndarray, bend: _Bend, size: tuple[int, int],
               step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Input px of every output px: the inverse homography, less the bend there.

    The output is ``hom(p) + bend(p)`` for input ``p``; one fixed-point step
    inverts it (the bend is smooth and a few px at most). Computed every
    ``step`` px and interpolated.
    """
    w, h = size
    inv = np.linalg.inv(hom)
    gx, gy = np.meshgrid(np.arange(0, w + step, step, dtype=float),
                         np.arange(0, h + step, step, dtype=float))
    x0, y0 = _project(inv, gx, gy)
    # the bend is a function of input px, in output px (the canvas shift is a translation)
    bx = _sample(bend.ax, bend.rx, y0, x0)
    by = _sample(bend.ay, bend.ry, x0, y0)
    x1, y1 = _project(inv, gx - bx, gy - by)
    map_x = cv2.resize(x1.astype(np.float32), None, fx=step, fy=step,
                       interpolation=cv2.INTER_LINEAR)[:h, :w]
    map_y = cv2.resize(y1.astype(np.float32), None, fx=step, fy=step,
                       interpolation=cv2.INTER_LINEAR)[:h, :w]
    return map_x, map_y


def _sample(axes: tuple[np.ndarray, np.ndarray], values: np.ndarray, a: np.ndarray,
            b: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``values`` (on the grid ``axes``) at ``(a, b)``, edges held."""
    ia = np.interp(a, axes[0], np.arange(axes[0].size))
    ib = np.interp(b, axes[1], np.arange(axes[1].size))
    return ndimage.map_coordinates(values, [ia.ravel(), ib.ravel()], order=1,
                                   mode="nearest").reshape(a.shape)


class _Phases(NamedTuple):
    """Local phase of one direction's grid lines on a grid of tiles (arrays of one shape)."""

    xs: np.ndarray      # tile centre along the profile, px
    ys: np.ndarray      # tile centre across it, px
    frac: np.ndarray    # lattice coordinate up to a whole number (integer on every line)
    coherence: np.ndarray  # 0..~0.65: how much of the tile's profile is the grid period
    f: float            # demodulation frequency, cycles per px
    step: int           # tile step, px


def _phases(mask: np.ndarray, f: float, tile_periods: int) -> _Phases | None:
    """Phase of the vertical lines of ``mask`` (period ``1 / f`` px) in overlapping tiles.

    Each tile's column profile, less its one-period running mean, is
    demodulated at ``f`` under a Hann window ``tile_periods`` periods wide;
    the lattice coordinate ``f x + angle / 2 pi`` is an integer on every line.
    """
    h, w = mask.shape
    period = 1.0 / f
    step = max(4, round(tile_periods * period / 2))
    win = 2 * step
    if w < 3 * win or h < 3 * win:
        return None
    # column profiles of horizontal strips two blocks tall (one strip per tile row)
    n_blocks = h // step
    blocks = np.add.reduceat(mask[:n_blocks * step], np.arange(0, n_blocks * step, step), axis=0,
                             dtype=np.float64)
    prof = blocks[:-1] + blocks[1:]
    y0 = np.arange(prof.shape[0]) * step
    box = max(1, round(period))
    prof = prof - fftconvolve(prof, np.ones((1, box)) / box, mode="same", axes=1)
    x = np.arange(w)
    hann = np.hanning(win)[None, :]
    demod = fftconvolve(prof * np.exp(-2j * np.pi * f * x)[None, :], hann, mode="same", axes=1)
    spread = fftconvolve(np.abs(prof), hann, mode="same", axes=1)
    xc = np.arange(win // 2, w - win // 2, step)
    z = demod[:, xc]
    coherence = np.abs(z) / np.maximum(spread[:, xc], 1e-9)
    ys, xs = np.meshgrid(y0 + win / 2.0, xc.astype(float), indexing="ij")
    frac = f * xs + np.angle(z) / (2 * np.pi)
    return _Phases(xs, ys, frac, coherence, f, step)


class _Bend(NamedTuple):
    """Smoothed displacement of the grid from the homography, px of the corrected image,
    on the two tile grids: ``rx`` across vertical lines (axes: tile-row y, tile x),
    ``ry`` across horizontal lines (axes: tile-column x, tile y)."""

    ax: tuple[np.ndarray, np.ndarray]
    rx: np.ndarray
    ay: tuple[np.ndarray, np.ndarray]
    ry: np.ndarray
    max_px: float


def _bend(phases: tuple[_Phases, _Phases], lams: tuple[np.ndarray, np.ndarray],
          hom: np.ndarray) -> _Bend | None:
    """Where the tile-to-tile lattice departs smoothly from ``hom`` (a fold, a curl).

    The departure of every coherent tile is taken modulo nothing (the tile-to-
    tile unwrap follows a bend of several periods), less its median whole
    number of periods; a 5 x 5 tile median removes slips of single tiles and a
    Gaussian of 1.5 tiles fills the gaps. Tiles with little support nearby
    get no correction.
    """
    out = []
    for axis, (ph, lam) in enumerate(zip(phases, lams, strict=True)):
        r = _departure(ph, lam, hom, axis)
        ok = np.isfinite(r)
        if ok.sum() < MIN_TILES:
            return None
        padded = np.pad(np.where(ok, r, np.nan), 2, constant_values=np.nan)
        with warnings.catch_warnings():  # all-NaN windows stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(sliding_window_view(padded, (5, 5)), axis=(-2, -1))
        valid = np.isfinite(med)
        weight = ndimage.gaussian_filter(valid.astype(float), 1.5)
        smooth = ndimage.gaussian_filter(np.where(valid, med, 0.0), 1.5)
        field_px = np.where(weight > 0.2, smooth / np.maximum(weight, 1e-9), 0.0)
        out.append(((ph.ys[:, 0], ph.xs[0, :]), field_px))
    (ax, rx), (ay, ry) = out
    inner = [f[2:-2, 2:-2] for f in (rx, ry) if f.shape[0] > 4 and f.shape[1] > 4]
    max_px = max((float(np.abs(f).max()) for f in inner), default=0.0)
    return _Bend(ax, rx, ay, ry, max_px)


def _image_xy(ph: _Phases, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Image ``(x, y)`` of the tile centres (``axis`` 1: phases of the transposed mask)."""
    return (ph.xs, ph.ys) if axis == 0 else (ph.ys, ph.xs)


def _departure(ph: _Phases, lam: np.ndarray, hom: np.ndarray, axis: int,
               offset: np.ndarray | float = 0.0) -> np.ndarray:
    """How far each tile's lattice coordinate lies from ``hom`` (+ ``offset``) along
    ``axis``, px, less the median whole number of periods (NaN where ``lam`` is)."""
    r = lam / ph.f - _project(hom, *_image_xy(ph, axis))[axis] - offset
    ok = np.isfinite(r)
    if ok.any():
        r = r - np.round(np.median(r[ok]) * ph.f) / ph.f
    return r


def _unwrap(frac: np.ndarray, amp: np.ndarray, good: np.ndarray, dx: float) -> np.ndarray:
    """Quality-guided unwrapping of lattice coordinates on the tile grid.

    ``frac`` holds each tile's coordinate up to a whole number; starting from
    the most coherent tile (``amp``), every neighbour takes the whole number that brings it
    closest to the prediction from its strongest assigned neighbour (``+dx``
    per tile along x, unchanged along y).
    """
    n_rows, n_cols = frac.shape
    r0, c0 = (int(v) for v in np.unravel_index(np.argmax(np.where(good, amp, -1.0)), frac.shape))
    # plain Python lists: the walk visits one tile at a time, and NumPy's per-element
    # access would cost more than the arithmetic
    fr, strength, ok = frac.tolist(), amp.tolist(), good.tolist()
    out: list[list[float | None]] = [[None] * n_cols for _ in range(n_rows)]
    out[r0][c0] = fr[r0][c0]
    heap: list[tuple[float, int, int, float]] = []

    def push(r: int, c: int) -> None:
        here = out[r][c]
        assert here is not None
        for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            rr, cc = r + dr, c + dc
            if 0 <= rr < n_rows and 0 <= cc < n_cols and ok[rr][cc] and out[rr][cc] is None:
                heapq.heappush(heap, (-strength[rr][cc], rr, cc, here + dc * dx))

    push(r0, c0)
    while heap:
        _, r, c, pred = heapq.heappop(heap)
        if out[r][c] is not None:
            continue
        out[r][c] = fr[r][c] + round(pred - fr[r][c])
        push(r, c)
    return np.array([[np.nan if v is None else v for v in row] for row in out], dtype=float)


def _fit_homography(xa: np.ndarray, ya: np.ndarray, ua: np.ndarray, xb: np.ndarray,
                    yb: np.ndarray, vb: np.ndarray, ppm_x: float, ppm_y: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """Homography with ``u = H(x, y)_x`` at the ``a`` samples and ``v = H(x, y)_y`` at the ``b``.

    Linear least squares (the DLT form, both sample sets sharing the
    denominator), reweighted three times without the samples further than
    :data:`MAX_RESIDUAL` periods from the previous fit. Coordinates are
    normalised for conditioning.
    """
    scale = max(float(np.ptp(np.r_[xa, xb])), float(np.ptp(np.r_[ya, yb])), 1.0)
    cx, cy = float(np.mean(np.r_[xa, xb])), float(np.mean(np.r_[ya, yb]))
    cu, cv = float(np.mean(ua)), float(np.mean(vb))
    na = ((xa - cx) / scale, (ya - cy) / scale, (ua - cu) / scale)
    nb = ((xb - cx) / scale, (yb - cy) / scale, (vb - cv) / scale)
    keep_a = np.ones(xa.size, bool)
    keep_b = np.ones(xb.size, bool)
    hn = None
    rms = np.inf
    for _ in range(4):
        x, y, u = (v[keep_a] for v in na)
        x2, y2, v2 = (v[keep_b] for v in nb)
        if x.size < 4 or x2.size < 4:
            return None
        # unknowns: h11 h12 h13 h21 h22 h23 h31 h32
        za, zb = np.zeros_like(x), np.zeros_like(x2)
        rows_a = np.column_stack([x, y, np.ones_like(x), za, za, za, -u * x, -u * y])
        rows_b = np.column_stack([zb, zb, zb, x2, y2, np.ones_like(x2), -v2 * x2, -v2 * y2])
        a = np.vstack([rows_a, rows_b])
        b = np.r_[u, v2]
        sol, *_ = np.linalg.lstsq(a, b, rcond=None)
        hn = np.array([[sol[0], sol[1], sol[2]], [sol[3], sol[4], sol[5]], [sol[6], sol[7], 1.0]])
        ra = _project(hn, na[0], na[1])[0] - na[2]
        rb = _project(hn, nb[0], nb[1])[1] - nb[2]
        ra_px, rb_px = ra * scale, rb * scale
        new_a = np.abs(ra_px) <= MAX_RESIDUAL * ppm_x
        new_b = np.abs(rb_px) <= MAX_RESIDUAL * ppm_y
        rms = float(np.sqrt(np.mean(np.r_[ra_px[keep_a], rb_px[keep_b]] ** 2)))
        if np.array_equal(new_a, keep_a) and np.array_equal(new_b, keep_b):
            break
        keep_a, keep_b = new_a, new_b
    if hn is None:
        return None
    t_in = np.array([[1 / scale, 0, -cx / scale], [0, 1 / scale, -cy / scale], [0, 0, 1]])
    t_out = np.array([[scale, 0, cu], [0, scale, cv], [0, 0, 1]])
    hom = t_out @ hn @ t_in
    return hom / hom[2, 2], keep_a, keep_b, rms


def _project(hom: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = hom[2, 0] * x + hom[2, 1] * y + hom[2, 2]
    return ((hom[0, 0] * x + hom[0, 1] * y + hom[0, 2]) / d,
            (hom[1, 0] * x + hom[1, 1] * y + hom[1, 2]) / d)


def _deviation_mm(hom: np.ndarray, area: tuple[float, float, float, float],
                  ppm_x: float, ppm_y: float) -> float:
    """Largest departure of ``hom`` over ``area`` from its best fit ``u = a x + b, v = c y + d``, mm."""
    x0, y0, x1, y1 = area
    gx, gy = np.meshgrid(np.linspace(x0, x1, 17), np.linspace(y0, y1, 13))
    u, v = _project(hom, gx.ravel(), gy.ravel())
    ax = np.column_stack([gx.ravel(), np.ones(gx.size)])
    ay = np.column_stack([gy.ravel(), np.ones(gy.size)])
    ru = u - ax @ np.linalg.lstsq(ax, u, rcond=None)[0]
    rv = v - ay @ np.linalg.lstsq(ay, v, rcond=None)[0]
    return float(max(np.abs(ru).max() / ppm_x, np.abs(rv).max() / ppm_y))

