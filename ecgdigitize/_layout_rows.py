"""Rows and calibration pulses of the layout stage (see :mod:`ecgdigitize.layout`).

The trace rows are the peaks of the ink row profile inside the grid; the
evenly spaced run of them is the layout's rows (one missing inner row of a
many-row sheet is filled in); each row's calibration pulse gives its 0 mV line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter1d
from scipy.signal import find_peaks

from .errors import LayoutNotFoundError, NoTracesFoundError
from .grid import GridSpec, _grid_weight_of, find_pulse_boxes

_MAX_ROW_SUBSETS = 2000  # row runs tried that skip rows (else contiguous runs only)
_MIN_COVERAGE = 0.3   # a trace row has ink near its baseline over this fraction of its width


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


# --- rows ----------------------------------------------------------------------
def _grid_box(img: np.ndarray, ink: np.ndarray, grid: GridSpec,
              grid_weight: np.ndarray | None = None) -> tuple[float, float, float, float]:
    """Extent of the printed grid (or of the ink when there is no grid).

    Only grid-coloured pixels that repeat one millimetre away in both
    directions, with paper half a millimetre away on one side, count, so
    text, rules and shaded margins around the grid are left out.
    ``grid_weight`` is :func:`~ecgdigitize.grid.grid_mask` of ``img`` when already computed.
    """
    h, w = ink.shape
    if grid.source == "grid":
        on = (_grid_weight_of(img, grid_weight) > 0.15).astype(np.uint8)
        near = cv2.dilate(on, np.ones((3, 3), np.uint8))
        span = []
        for axis, ppm in ((0, grid.px_per_mm_y), (1, grid.px_per_mm_x)):
            shift = [0, 0]
            shift[1 - axis] = round(ppm)  # repeat along the profile's own direction
            ahead = np.roll(near, shift, axis=(0, 1))
            behind = np.roll(near, [-v for v in shift], axis=(0, 1))
            periodic = np.bitwise_and(np.bitwise_and(on, ahead), behind)
            # and paper half a millimetre away on one side at least: a shaded margin or a
            # photo's background is grid-coloured all over, not in lines
            half = [0, 0]
            half[1 - axis] = max(1, round(ppm / 2))
            gap = np.bitwise_and(np.roll(on, half, axis=(0, 1)),
                                 np.roll(on, [-v for v in half], axis=(0, 1)))
            periodic = np.bitwise_and(periodic, 1 - gap)
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
    sizes = [n_want] if n_want is not None else [n for n in (12, 6, 4, 3) if n <= len(rows) + 1]
    for n in sizes:
        best = _even_run(rows, n) if n <= len(rows) else None
        if best is None and n >= 6:
            best = _even_run_with_hole(rows, n)
        if best is not None:
            return best
    need = (f"the layout needs {n_want}" if n_want is not None
            else "every layout has 3, 4, 6 or 12")
    raise LayoutNotFoundError(f"found {len(rows)} trace row(s) but no evenly spaced run of "
                              f"them; {need}")


def _row_runs(rows: list[_Row], n: int) -> list[list[_Row]]:
    """Candidate runs of ``n`` rows: every subset when few, else contiguous runs."""
    if n > len(rows):
        return []
    if comb(len(rows), n) <= _MAX_ROW_SUBSETS:
        return [[rows[i] for i in idx] for idx in combinations(range(len(rows)), n)]
    return [rows[start:start + n] for start in range(len(rows) - n + 1)]


def _even_run(rows: list[_Row], n: int) -> list[_Row] | None:
    """The evenly spaced run of ``n`` rows with the most ink, or None."""
    best, best_score = None, -1.0
    for run in _row_runs(rows, n):
        gaps = np.diff([r.y for r in run])
        # isoelectric lines wander around the printed baselines with the signal's offset
        tolerance = 0.2 if all(r.pulse is not None for r in run) else 0.6
        if len(gaps) and np.ptp(gaps) > tolerance * np.median(gaps):
            continue
        score = float(sum(r.strength * r.coverage for r in run))
        if score > best_score:
            best, best_score = run, score
    return best


def _even_run_with_hole(rows: list[_Row], n: int) -> list[_Row] | None:
    """``n`` evenly spaced rows of which one inner row gave no profile peak.

    On many-row sheets (12x1 at 20 mm/mV) neighbouring traces overlap and one
    row's peak can merge into its neighbour's; ``n - 1`` rows whose gaps are
    one pitch but one of two pitches then place the missing row midway.
    """
    best, best_score = None, -1.0
    for run in _row_runs(rows, n - 1):
        ys = np.array([r.y for r in run])
        gaps = np.diff(ys)
        if len(gaps) < 3:
            continue
        k = int(np.argmax(gaps))
        rest = np.delete(gaps, k)
        pitch = float(np.median(rest))
        if np.ptp(rest) > 0.3 * pitch or abs(gaps[k] - 2 * pitch) > 0.3 * pitch:
            continue
        score = float(sum(r.strength * r.coverage for r in run))
        if score > best_score:
            hole = _Row(float(ys[k] + gaps[k] / 2), 0.0, 0.0)
            best, best_score = [*run[:k + 1], hole, *run[k + 1:]], score
    return best


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
                 ppm_y: float, speeds: tuple[float, float], gain: float) -> list[_Pulse | None]:
    """The calibration pulse of each row (a rectangle ``gain`` mm tall), or None.

    ``speeds`` (slowest, fastest) bound the pulse width, 0.03 to 0.35 s.
    """
    tall = gain * ppm_y
    ratio = (0.03 * speeds[0] * ppm_x / tall, 0.35 * speeds[1] * ppm_x / tall)
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


def _row_length_px(ink: np.ndarray, baselines: Sequence[float], x_start: float,
                   ppm_x: float) -> float:
    """Length of the trace rows from ``x_start``: where ink stops covering a 5 mm window.

    Median over the rows, each band a quarter of the row pitch either side of
    its baseline (gaps between columns and flat stretches are kept by the window).
    """
    b = np.asarray(baselines, dtype=float)
    half = 0.25 * (float(np.median(np.diff(b))) if len(b) > 1 else 0.25 * ink.shape[0])
    x0 = max(round(x_start), 0)
    win = max(3, round(5 * ppm_x))
    ends = []
    for y in b:
        band = ink[max(round(y - half), 0):round(y + half) + 1, x0:]
        if band.size == 0:
            continue
        cov = uniform_filter1d(band.any(axis=0).astype(float), win, mode="constant")
        on = np.flatnonzero(cov > 0.5)
        if len(on):
            ends.append(float(on[-1]))
    return float(np.median(ends)) if ends else 0.0


