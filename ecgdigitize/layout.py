"""Layout stage: rows, calibration pulses, columns and lead panels of a sheet.

Works on the *working* image (upright, deskewed, see :mod:`ecgdigitize.geometry`)
with the scale from :mod:`ecgdigitize.grid`:

1. the trace rows are the peaks of the row profile of the ink (the isoelectric
   line is the densest row of each strip) that run across most of the grid;
2. a calibration pulse (a rectangle ``gain`` mm tall) at a row's start gives its
   0 mV line exactly; without one the isoelectric line is used;
3. every standard layout spans 10 s per row, so the trace start plus
   ``10 s x speed x px/mm`` gives the row; full-height column separators,
   when printed, refine the start and the printed row length, ticks the start;
4. the number of rows names the layout (3 -> "3x4", 4 -> "3x4+1", 6 -> "6x2" or
   "3x4+3" by the column separators, 12 -> "12x1"); panels follow the clinical
   convention (column ``c`` of ``C`` shows ``c * 10/C .. (c + 1) * 10/C`` s);
5. the rhythm strip of a "3x4+1" sheet is lead II unless its printed label
   has three strokes ("III").

Changes to the agreed interface: :func:`find_layout` also takes
``rhythm_leads``; :class:`Layout` has an extra field ``px_per_s`` (printed
time scale; map x to time with it or with the panel boxes, since on some
machines it differs from ``speed x grid px/mm``); :class:`PulseInfo` is
``(box_px, height_px, baseline_y_px, row)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from .errors import ConfigurationError, LayoutNotFoundError, NoTracesFoundError
from .grid import GridSpec, find_pulse_boxes, grid_mask, ink_mask
from .result import DigitizedECG, Panel
from .synth.layouts import DEFAULT_RHYTHM_LEADS, layout_cells, layout_grid

__all__ = ["LAYOUT_SHAPES", "Layout", "PulseInfo", "crop_panels", "find_layout", "panel_cells"]

#: Layout name -> (grid rows, grid columns, default rhythm leads), derived from the
#: project's one layout table (:data:`ecgdigitize.synth.layouts.DEFAULT_RHYTHM_LEADS`).
LAYOUT_SHAPES: dict[str, tuple[int, int, tuple[str, ...]]] = {
    name: (*layout_grid(name)[:2], rhythm) for name, rhythm in DEFAULT_RHYTHM_LEADS.items()
}
_BY_ROWS = {3: "3x4", 4: "3x4+1", 12: "12x1"}
_DURATION_S = 10.0
_MAX_ROW_SUBSETS = 2000  # row runs tried that skip rows (else contiguous runs only)
_MIN_COVERAGE = 0.3   # a trace row has ink near its baseline over this fraction of its width


@dataclass(frozen=True)
class PulseInfo:
    """A calibration pulse found on the sheet.

    Attributes
    ----------
    box_px : tuple of float
        ``(x0, y0, x1, y1)`` outer box in working px.
    height_px : float
        Height between the stroke centres: 1 mV, in px.
    baseline_y_px : float
        Row of the pulse's foot (the 0 mV line), working px.
    row : int
        Layout row it starts.

    Examples
    --------
    A 10 mm/mV pulse on a sheet scanned at 8 px/mm is 80 px tall:

    >>> p = PulseInfo((40.0, 118.0, 82.0, 202.0), 80.0, 200.0, row=0)
    >>> p.height_px / 10.0  # px/mm at 10 mm/mV
    8.0
    >>> p.baseline_y_px - p.height_px  # the 1 mV line, working px
    120.0
    """

    box_px: tuple[float, float, float, float]
    height_px: float
    baseline_y_px: float
    row: int


@dataclass(frozen=True)
class Layout:
    """Where each lead is printed on the working image.

    Attributes
    ----------
    name : str
        ``"3x4"``, ``"3x4+1"``, ``"3x4+3"``, ``"6x2"`` or ``"12x1"``.
    panels : tuple of Panel
        Lead segments (grid cells column by column, then rhythm strips).
    grid_box_px : tuple of float
        ``(x0, y0, x1, y1)`` of the area holding the traces, working px.
    pulses : tuple of PulseInfo
        Calibration pulses found.
    row_baselines_px : tuple of float
        0 mV line of each printed row, top to bottom, working px.
    confidence : float
        0..1.
    px_per_s : float
        Horizontal px per second of the printed rows (from the column
        separators when printed, else ``speed x grid px/mm``); the panel boxes
        use it. Map x to time with it (or with the boxes), not with the grid.

    Examples
    --------
    A hand-built "12x1" layout with one lead panel (found by
    :func:`find_layout` in practice) at 25 mm/s and 8 px/mm (200 px/s):

    >>> from ecgdigitize.result import Panel
    >>> panel = Panel("I", (100.0, 20.0, 2100.0, 180.0), 0.0, 10.0, 100.0, row=0, col=0)
    >>> lay = Layout("12x1", (panel,), (100.0, 20.0, 2100.0, 2000.0), (), (100.0,), 0.9,
    ...              px_per_s=200.0)
    >>> (panel.box_px[2] - panel.box_px[0]) / lay.px_per_s  # panel length, s
    10.0
    >>> [p.lead for p in lay.panels], lay.row_baselines_px
    (['I'], (100.0,))
    """

    name: str
    panels: tuple[Panel, ...]
    grid_box_px: tuple[float, float, float, float]
    pulses: tuple[PulseInfo, ...]
    row_baselines_px: tuple[float, ...]
    confidence: float
    px_per_s: float = 0.0


@dataclass(frozen=True)
class _Pulse:
    box_px: tuple[int, int, int, int]
    height_px: float
    baseline_y_px: float
    stroke_px: int


@dataclass(frozen=True)
class _Row:
    y: float            # 0 mV line: pulse foot, else isoelectric row (profile peak), px
    strength: float     # profile height
    coverage: float     # fraction of the grid width with ink near y
    pulse: _Pulse | None = None


def find_layout(rgb_working: np.ndarray, grid: GridSpec, *, speed_mm_per_s: float = 25.0,
                gain_mm_per_mv: float = 10.0, layout: str | None = None,
                lead_order: Sequence[str] | None = None,
                rhythm_leads: Sequence[str] | None = None) -> Layout:
    """Find the rows, pulses and lead panels of an upright sheet.

    Parameters
    ----------
    rgb_working : ndarray of shape (H, W, 3), uint8
        Upright, deskewed sheet (see :func:`~ecgdigitize.geometry.rectify`).
    grid : GridSpec
        Scale of ``rgb_working`` (px/mm).
    speed_mm_per_s : float, default 25
        Paper speed, mm/s.
    gain_mm_per_mv : float, default 10
        Amplitude scale, mm/mV (height of the calibration pulse).
    layout : str, optional
        Force a layout name instead of inferring it from the rows.
    lead_order : sequence of str, optional
        The 12 leads in reading order, column by column (default standard order).
    rhythm_leads : sequence of str, optional
        Leads of the rhythm strips (default: II, or the label read on a
        "3x4+1" sheet; II, V1, V5 for "3x4+3").

    Returns
    -------
    Layout

    Raises
    ------
    NoTracesFoundError
        If the image holds (almost) no dark ink.
    LayoutNotFoundError
        If fewer than 3 trace rows (or fewer than ``layout`` needs) are found.
    ConfigurationError
        If ``layout`` or ``lead_order`` is invalid.

    Examples
    --------
    >>> from ecgdigitize.synth import render_sheet, simulate_record, SheetStyle
    >>> from ecgdigitize.grid import detect_grid
    >>> sheet = render_sheet(simulate_record(seed=1), "6x2", SheetStyle(dpi=100))
    >>> lay = find_layout(sheet.image, detect_grid(sheet.image))
    >>> lay.name, len(lay.panels), len(lay.pulses)
    ('6x2', 12, 6)
    """
    if layout is not None and layout not in LAYOUT_SHAPES:
        raise ConfigurationError(f"layout must be one of {sorted(LAYOUT_SHAPES)}; got {layout!r}")
    img = np.asarray(rgb_working)
    ink = ink_mask(img)
    if ink.sum() < 0.0005 * ink.size:
        raise NoTracesFoundError("the sheet holds almost no dark ink (blank page?)")
    ppm_x, ppm_y = grid.px_per_mm_x, grid.px_per_mm_y
    box = _grid_box(img, ink, grid)
    rows = _find_rows(ink, box, ppm_y)
    # faint or blurred thin strokes (pulses, separators): a looser ink threshold
    loose = ink_mask(img, threshold=0.5)
    pulses = _find_pulses(loose, 255 - _brightest(img), rows, ppm_x, ppm_y, speed_mm_per_s,
                          gain_mm_per_mv)
    rows = _merge_rows_sharing_pulse(
        [_Row(r.y if p is None else p.baseline_y_px, r.strength, r.coverage, p)
         for r, p in zip(rows, pulses, strict=True)], [r.y for r in rows])
    n_want = None if layout is None else LAYOUT_SHAPES[layout][0] + len(LAYOUT_SHAPES[layout][2])
    rows = _select_rows(rows, n_want)
    pulses = [r.pulse for r in rows]
    baselines = [r.y for r in rows]
    row_len = _DURATION_S * speed_mm_per_s * ppm_x
    x_start = _trace_start(ink, rows, pulses, box, ppm_x)
    name = layout or _name_layout(loose, rows, x_start, row_len, ppm_x, ppm_y)
    n_grid_rows, n_cols, _ = LAYOUT_SHAPES[name]
    if n_cols > 1:
        x_start, row_len = _snap_to_separators(loose, rows[:n_grid_rows], x_start, row_len,
                                               n_cols, ppm_x, ppm_y)
    if rhythm_leads is None and name == "3x4+1":
        rhythm_leads = (_read_rhythm_label(ink, baselines[-1], x_start, ppm_x, ppm_y),)
    cells = panel_cells(name, lead_order=lead_order, rhythm_leads=rhythm_leads)
    panels = _panels(cells, baselines, x_start, row_len, img.shape[0])
    found = tuple(PulseInfo((float(p.box_px[0]), float(p.box_px[1]), float(p.box_px[2]),
                             float(p.box_px[3])), p.height_px, p.baseline_y_px, i)
                  for i, p in enumerate(pulses) if p is not None)
    coverage = float(np.mean([r.coverage for r in rows]))
    confidence = float(np.clip(coverage, 0, 1) * (0.6 + 0.4 * len(found) / len(rows)))
    return Layout(name, panels, box, found, tuple(float(b) for b in baselines), confidence,
                  row_len / _DURATION_S)


# --- rows ----------------------------------------------------------------------
def _grid_box(img: np.ndarray, ink: np.ndarray, grid: GridSpec) -> tuple[float, float, float, float]:
    """Extent of the printed grid (or of the ink when there is no grid).

    Only grid-coloured pixels that repeat one millimetre away in both
    directions count, so text and rules around the grid are left out.
    """
    h, w = ink.shape
    if grid.source == "grid":
        on = (grid_mask(img) > 0.15).astype(np.uint8)
        near = cv2.dilate(on, np.ones((3, 3), np.uint8))
        span = []
        for axis, ppm in ((0, grid.px_per_mm_y), (1, grid.px_per_mm_x)):
            shift = [0, 0]
            shift[1 - axis] = round(ppm)  # repeat along the profile's own direction
            ahead = np.roll(near, shift, axis=(0, 1))
            behind = np.roll(near, [-v for v in shift], axis=(0, 1))
            periodic = np.bitwise_and(np.bitwise_and(on, ahead), behind)
            cov = gaussian_filter1d(periodic.mean(axis=axis).astype(float), 2 * ppm)
            act = np.flatnonzero(cov > 0.3 * np.percentile(cov, 90))
            span.append((float(act[0]), float(act[-1])) if len(act) else (0.0, float(
                (w, h)[axis] - 1)))
        return (span[0][0], span[1][0], span[0][1], span[1][1])
    ys, xs = np.nonzero(ink)
    return (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))


def _find_rows(ink: np.ndarray, box: tuple[float, float, float, float], ppm_y: float) -> list[_Row]:
    """Peaks of the ink row profile inside the grid that run across most of it.

    A trace row has ink near its baseline over much of the grid width, and
    waves (QRS complexes, its calibration pulse) reaching more than 1.5 mm
    away from it; rules do not.
    """
    x0, y0, x1, y1 = (round(v) for v in box)
    band = ink[:, x0:x1 + 1]
    profile = gaussian_filter1d(band.sum(axis=1).astype(float), 0.3 * ppm_y)
    margin = round(2 * ppm_y)
    profile[:max(y0 - margin, 0)] = 0
    profile[y1 + margin + 1:] = 0
    if profile.max() <= 0:
        raise NoTracesFoundError("no ink inside the grid area")
    peaks, props = find_peaks(profile, distance=max(3, 6 * ppm_y), height=0.12 * profile.max(),
                              prominence=0.08 * profile.max())
    half, reach = max(2, round(2.5 * ppm_y)), round(1.5 * ppm_y)
    rows = []
    for y, height in zip(peaks, props["peak_heights"], strict=True):
        coverage = float(band[max(y - half, 0):y + half + 1].any(axis=0).mean())
        above = band[max(y - 4 * reach, 0):max(y - reach, 0)].any(axis=0).mean()
        below = band[y + reach:y + 4 * reach].any(axis=0).mean()
        if coverage >= _MIN_COVERAGE and max(above, below) > 0.005:
            rows.append(_Row(_refine_peak(profile, int(y)), float(height), coverage))
    return rows


def _refine_peak(profile: np.ndarray, i: int) -> float:
    if 0 < i < len(profile) - 1:
        a, b, c = profile[i - 1], profile[i], profile[i + 1]
        d = a - 2 * b + c
        if d < 0:
            return i + float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))
    return float(i)


def _select_rows(rows: list[_Row], n_want: int | None) -> list[_Row]:
    """The evenly spaced run of trace rows of a layout (largest plausible count first).

    Printed rows share one pitch, so text lines or rules picked up above or
    below the traces are left out, and so is a second profile peak inside a
    strip (a lead drawn well off its row's baseline) that lies between them;
    among runs of the same size the one with the most ink wins.
    """
    sizes = [n_want] if n_want is not None else [n for n in (12, 6, 4, 3) if n <= len(rows)]
    for n in sizes:
        best, best_score = None, -1.0
        if comb(len(rows), n) <= _MAX_ROW_SUBSETS:
            runs = [[rows[i] for i in idx] for idx in combinations(range(len(rows)), n)]
        else:
            runs = [rows[start:start + n] for start in range(len(rows) - n + 1)]
        for run in runs:
            gaps = np.diff([r.y for r in run])
            # isoelectric lines wander around the printed baselines with the signal's offset
            tolerance = 0.2 if all(r.pulse is not None for r in run) else 0.6
            if len(gaps) and np.ptp(gaps) > tolerance * np.median(gaps):
                continue
            score = float(sum(r.strength * r.coverage for r in run))
            if score > best_score:
                best, best_score = run, score
        if best is not None:
            return best
    need = f"the layout needs {n_want}" if n_want is not None else "every layout has at least 3"
    raise LayoutNotFoundError(f"found {len(rows)} evenly spaced trace row(s); {need}")


def _merge_rows_sharing_pulse(rows: list[_Row], peaks_y: list[float]) -> list[_Row]:
    """One row per calibration pulse.

    A strip whose trace wanders off its baseline can give two profile peaks;
    both then find the strip's pulse and would become two rows on the same
    0 mV line, which breaks the even spacing of the layout's rows (and drops
    a true row in :func:`_select_rows`). The peak nearest the pulse's foot
    keeps the row; the other is dropped.
    """
    kept: dict[tuple[int, int, int, int], int] = {}   # pulse box -> index of its row
    for i, r in enumerate(rows):
        if r.pulse is None:
            continue
        j = kept.setdefault(r.pulse.box_px, i)
        if abs(peaks_y[i] - r.y) < abs(peaks_y[j] - r.y):
            kept[r.pulse.box_px] = i
    return [r for i, r in enumerate(rows) if r.pulse is None or kept[r.pulse.box_px] == i]


def _brightest(img: np.ndarray) -> np.ndarray:
    if img.ndim != 3:
        return img
    r, g, b = cv2.split(np.ascontiguousarray(img))
    return cv2.max(cv2.max(r, g), b)


# --- pulses --------------------------------------------------------------------
def _find_pulses(ink: np.ndarray, dark: np.ndarray, rows: list[_Row], ppm_x: float,
                 ppm_y: float, speed: float, gain: float) -> list[_Pulse | None]:
    """The calibration pulse of each row (a rectangle ``gain`` mm tall), or None."""
    tall = gain * ppm_y
    ratio = (0.03 * speed * ppm_x / tall, 0.35 * speed * ppm_x / tall)
    boxes = [b for b in find_pulse_boxes(ink, min_height_px=max(5, int(0.75 * tall)),
                                         max_height_px=int(1.3 * tall) + 4, width_ratio=ratio)
             if b[4]]
    pitch = np.median(np.diff([r.y for r in rows])) if len(rows) > 1 else 4 * tall
    out: list[_Pulse | None] = []
    for r in rows:
        near = [b for b in boxes if abs(b[3] - r.y) < 0.45 * pitch]
        if not near:
            out.append(None)
            continue
        x0, y0, x1, y1, _, stroke = min(near, key=lambda b: b[0])  # the row's first pulse
        top, base = _pulse_levels(dark, (x0, y0, x1, y1), stroke)
        out.append(_Pulse((x0, y0, x1, y1), base - top, base, stroke))
    return out


def _pulse_levels(dark: np.ndarray, box: tuple[int, int, int, int], stroke: int
                  ) -> tuple[float, float]:
    """Sub-pixel rows of a pulse's top stroke and of its foot (ink-weighted centroids)."""
    x0, y0, x1, y1 = box
    reach = stroke + 2
    inner = dark[max(y0 - 2, 0):y0 + reach, x0 + stroke + 1:x1 - stroke]
    outer = np.hstack([dark[max(y1 - reach, 0):y1 + 3, max(x0 - 3, 0):x0],
                       dark[max(y1 - reach, 0):y1 + 3, x1 + 1:x1 + 4]])
    levels = []
    for patch, first, fallback in ((inner, max(y0 - 2, 0), y0 + (stroke - 1) / 2),
                                   (outer, max(y1 - reach, 0), y1 - (stroke - 1) / 2)):
        weights = patch.sum(axis=1).astype(float) if patch.size else np.zeros(0)
        if weights.size and weights.max() >= 0.3 * 255 * patch.shape[1]:  # a stroke is there
            weights = np.clip(weights - weights.min(), 0, None)
        else:
            weights = np.zeros(0)
        if weights.sum() > 0:
            levels.append(first + float(np.arange(len(weights)) @ weights / weights.sum()))
        else:
            levels.append(float(fallback))
    return levels[0], levels[1]


# --- columns -------------------------------------------------------------------
def _trace_start(ink: np.ndarray, rows: list[_Row], pulses: list[_Pulse | None],
                 box: tuple[float, float, float, float], ppm_x: float) -> float:
    """x of time 0: the first trace ink after the pulses (median over the rows)."""
    ys = np.array([r.y for r in rows])
    edges = np.concatenate([[ys[0] - (ys[1] - ys[0]) / 2 if len(ys) > 1 else 0],
                            (ys[:-1] + ys[1:]) / 2,
                            [ys[-1] + (ys[-1] - ys[-2]) / 2 if len(ys) > 1 else ink.shape[0]]])
    starts = []
    for i, p in enumerate(pulses):
        lo = p.box_px[2] + 1 if p is not None else max(int(box[0]) - 2, 0)
        band = ink[max(round(edges[i]), 0):max(round(edges[i + 1]), 0), lo:]
        start = _first_run_start(np.asarray(band.any(axis=0)), skip_short=p is not None,
                                 ppm_x=ppm_x)
        if start is not None:
            stroke = 2.0 if p is None else p.stroke_px
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
                        n_cols: int, ppm_x: float, ppm_y: float) -> tuple[float, float]:
    """Refine the start (and length) of the rows with the printed column separators.

    Full-height separator lines at ``x0 + k * row_len / n_cols`` give
    ``x = a + b * k`` by least squares: ``a`` is the start and ``n_cols * b``
    the printed row length, which may differ slightly from ``10 s x speed x
    grid px/mm`` on some machines. Short ticks across the baselines can be
    mistaken for QRS strokes (which fall at the same x in every row), so they
    only move the start, by the median of their votes, and by at most 1.5 mm.
    """
    full = _full_separators(ink, rows, x0, row_len, n_cols, ppm_x)
    if len(full) >= 2:
        ks = sorted(full)
        b, a = np.polyfit(ks, [full[k] for k in ks], 1)
        if abs(b * n_cols / row_len - 1) < 0.03:
            return float(a), float(b * n_cols)
    votes = []
    for r in rows:
        for k in range(1, n_cols):
            x = _separator_x(ink, r.y, x0 + k * row_len / n_cols, ppm_x, ppm_y, search_mm=1.5)
            if x is not None:
                votes.append(x - k * row_len / n_cols)
    if len(votes) >= max(2, 0.4 * len(rows) * (n_cols - 1)):
        start = float(np.median(votes))
        if abs(start - x0) < 1.5 * ppm_x:
            return start, row_len
    return x0, row_len


def _name_layout(ink: np.ndarray, rows: list[_Row], x0: float, row_len: float, ppm_x: float,
                 ppm_y: float) -> str:
    """Layout from the row count; 6 rows: 3x4+3 when the top rows have quarter separators."""
    n = len(rows)
    if n != 6:
        return _BY_ROWS[n]
    quarter = np.mean([_separator_at(ink, r.y, x0 + f * row_len, ppm_x, ppm_y)
                       for r in rows[:3] for f in (0.25, 0.75)])
    half_low = np.mean([_separator_at(ink, r.y, x0 + 0.5 * row_len, ppm_x, ppm_y)
                        for r in rows[3:]])
    return "3x4+3" if quarter > 0.5 and quarter > half_low else "6x2"


def _full_separators(ink: np.ndarray, rows: list[_Row], x0: float, row_len: float, n_cols: int,
                     ppm_x: float) -> dict[int, float]:
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
            out[k] = lo + float(on.mean())
    return out


def _separator_x(ink: np.ndarray, y: float, x: float, ppm_x: float, ppm_y: float,
                 search_mm: float = 1.5) -> float | None:
    """Centre of a straight vertical bar (at least 4.5 mm of ink) crossing row ``y`` near ``x``."""
    yi, xi = round(y), round(x)
    half = round(6 * ppm_y)
    lo = max(xi - round(search_mm * ppm_x), 0)
    hi = min(xi + round(search_mm * ppm_x) + 1, ink.shape[1])
    win = ink[max(yi - half, 0):yi + half + 1, lo:hi]
    if win.size == 0:
        return None
    win = cv2.morphologyEx(win.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 1), np.uint8)) > 0
    runs = _longest_runs(win)
    if runs.max() < 4.5 * ppm_y:
        return None
    on = np.flatnonzero(runs >= 4.5 * ppm_y)
    # a thin (straight, not slanted) bar: the longest, then the nearest to the expected place
    groups = np.split(on, np.flatnonzero(np.diff(on) > 1) + 1)
    thin = [g for g in groups if len(g) <= max(3, 0.6 * ppm_x)]
    if not thin:
        return None
    best = max(thin, key=lambda g: runs[g].max() / ppm_y - 0.5 * abs(lo + g.mean() - x) / ppm_x)
    return lo + float(best.mean())


def _longest_runs(win: np.ndarray) -> np.ndarray:
    """Longest vertical run of True in each column."""
    out = np.zeros(win.shape[1])
    run = np.zeros(win.shape[1])
    for row in win:
        run = np.where(row, run + 1, 0)
        out = np.maximum(out, run)
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


# --- panels --------------------------------------------------------------------
def panel_cells(layout: str, *, lead_order: Sequence[str] | None = None,
                rhythm_leads: Sequence[str] | None = None
                ) -> tuple[tuple[str, int, int, float, float, bool], ...]:
    """Lead, row, column and time window of every printed segment of a layout.

    Parameters
    ----------
    layout : str
        A key of :data:`LAYOUT_SHAPES`.
    lead_order : sequence of str, optional
        The 12 leads filled column by column (default standard order).
    rhythm_leads : sequence of str, optional
        Leads of the rhythm strips (default from :data:`LAYOUT_SHAPES`).

    Returns
    -------
    tuple of (lead, row, col, t0_s, t1_s, is_rhythm)

    Raises
    ------
    ConfigurationError
        If the layout, lead order or rhythm leads are invalid.

    Examples
    --------
    >>> panel_cells("3x4+1")[3]
    ('aVR', 0, 1, 2.5, 5.0, False)
    >>> panel_cells("3x4+1")[-1]
    ('II', 3, 0, 0.0, 10.0, True)
    """
    if layout not in LAYOUT_SHAPES:
        raise ConfigurationError(f"layout must be one of {sorted(LAYOUT_SHAPES)}; got {layout!r}")
    cells = layout_cells(layout, lead_order=lead_order, rhythm_leads=rhythm_leads,
                         duration_s=_DURATION_S)
    return tuple((c.lead, c.row, c.col, c.t0_s, c.t1_s, c.is_rhythm) for c in cells)


def _panels(cells: Sequence[tuple[str, int, int, float, float, bool]], baselines: Sequence[float],
            x0: float, row_len: float, height: int) -> tuple[Panel, ...]:
    b = np.asarray(baselines, dtype=float)
    pitch = float(np.median(np.diff(b))) if len(b) > 1 else 0.25 * height
    edges = np.concatenate([[b[0] - 0.55 * pitch], (b[:-1] + b[1:]) / 2, [b[-1] + 0.45 * pitch]])
    edges = np.clip(edges, 0, height - 1)
    px_per_s = row_len / _DURATION_S
    return tuple(Panel(lead, (x0 + t0 * px_per_s, float(edges[row]), x0 + t1 * px_per_s,
                              float(edges[row + 1])), t0, t1, float(b[row]), row, col, rhythm)
                 for lead, row, col, t0, t1, rhythm in cells)


def crop_panels(image_rgb: np.ndarray, result: DigitizedECG) -> dict[str, np.ndarray]:
    """Crop each lead panel out of the *input* image, upright.

    The input is mapped to the working frame with ``result.transform`` and each
    panel box is cut out. Rhythm strips are keyed ``"<lead>_rhythm"``.

    Parameters
    ----------
    image_rgb : ndarray of shape (H, W, 3), uint8
        The image given to :func:`~ecgdigitize.digitize`.
    result : DigitizedECG
        Its digitization (panels, transform and working shape).

    Returns
    -------
    dict of str to ndarray
        Lead name -> crop (h, w, 3) uint8 in working px.

    Examples
    --------
    >>> from ecgdigitize.result import DigitizedECG, Panel
    >>> img = np.zeros((100, 200, 3), np.uint8)
    >>> res = DigitizedECG(np.zeros((10, 1)), 500.0, ("I",), working_shape=(100, 200),
    ...                    panels=(Panel("I", (10, 20, 60, 50), 0.0, 2.5, 40.0, 0, 0),))
    >>> crop_panels(img, res)["I"].shape
    (30, 50, 3)
    """
    h, w = result.working_shape
    transform = np.asarray(result.transform, dtype=np.float64)
    if np.allclose(transform, np.eye(3)) and image_rgb.shape[:2] == (h, w):
        working = np.asarray(image_rgb)
    else:
        working = cv2.warpPerspective(np.asarray(image_rgb), transform, (int(w), int(h)),
                                      flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out: dict[str, np.ndarray] = {}
    for p in result.panels:
        x0, y0, x1, y1 = (round(v) for v in p.box_px)
        key = f"{p.lead}_rhythm" if p.is_rhythm else p.lead
        out[key] = working[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)].copy()
    return out
