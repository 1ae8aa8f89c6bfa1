"""Layout stage: rows, calibration pulses, columns and lead panels of a sheet.

Works on the *working* image (upright, deskewed, see :mod:`ecgdigitize.geometry`)
with the scale from :mod:`ecgdigitize.grid`:

1. the trace rows are the peaks of the row profile of the ink (the isoelectric
   line is the densest row of each strip) that run across most of the grid;
2. a calibration pulse (a rectangle ``gain`` mm tall) at a row's start gives its
   0 mV line exactly; without one the isoelectric line is used;
3. every standard layout spans 10 s per row, so the trace start plus
   ``10 s x speed x px/mm`` gives the row; the speed, unless given, is the one
   that makes the printed row length 10 s (:func:`detect_speed`); full-height
   column separators, when printed, refine the start and the printed row
   length, ticks the start;
4. the number of rows names the layout (3 -> "3x4", 4 -> "3x4+1", 6 -> "6x2" or
   "3x4+3" by the column separators or by rhythm strips that repeat a grid
   cell, 12 -> "12x1"); panels follow the clinical convention (column ``c`` of
   ``C`` shows ``c * 10/C .. (c + 1) * 10/C`` s);
5. the rhythm strip of a "3x4+1" sheet is lead II unless its printed label
   has three strokes ("III").

Rows and pulses live in :mod:`ecgdigitize._layout_rows`, columns and names in
:mod:`ecgdigitize._layout_columns`; this module holds the public names.

Changes to the agreed interface: :func:`find_layout` also takes
``rhythm_leads``; :class:`Layout` has an extra field ``px_per_s`` (printed
time scale; map x to time with it or with the panel boxes, since on some
machines it differs from ``speed x grid px/mm``) and ``speed_mm_per_s``;
:class:`PulseInfo` is
``(box_px, height_px, baseline_y_px, row)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ._layout_columns import _name_layout, _read_rhythm_label, _snap_to_separators, _trace_start
from ._layout_rows import (
    _brightest,
    _find_pulses,
    _find_rows,
    _grid_box,
    _merge_rows_sharing_pulse,
    _Row,
    _row_length_px,
    _select_rows,
)
from .config import KNOWN_SPEEDS_MM_PER_S
from .errors import ConfigurationError, LayoutNotFoundError, NoTracesFoundError
from .grid import GridSpec, ink_mask
from .result import DigitizedECG, Panel
from .synth.layouts import DEFAULT_RHYTHM_LEADS, layout_cells, layout_grid

__all__ = ["LAYOUT_SHAPES", "Layout", "PulseInfo", "crop_panels", "detect_speed", "find_layout",
           "panel_cells", "row_duration"]

#: Layout name -> (grid rows, grid columns, default rhythm leads), derived from the
#: project's one layout table (:data:`ecgdigitize.synth.layouts.DEFAULT_RHYTHM_LEADS`).
LAYOUT_SHAPES: dict[str, tuple[int, int, tuple[str, ...]]] = {
    name: (*layout_grid(name)[:2], rhythm) for name, rhythm in DEFAULT_RHYTHM_LEADS.items()
}
_DURATION_S = 10.0
#: Without a grid, a measured row length within this fraction of the scale's sets the time axis.
_RULER_TOLERANCE = 0.02
#: (ink, loose ink) thresholds, fractions of the paper level: the first pair reads every
#: usual pen; each next one is tried only when the ones before find no layout (a light or
#: broken pen whose grey strokes leave too little ink along the rows; the last one reads
#: a thin pen scanned at half resolution, grey at 0.6-0.7 of the paper).
_INK_THRESHOLDS = ((0.4, 0.5), (0.6, 0.7), (0.72, 0.8))


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
    speed_mm_per_s : float
        Paper speed used, mm/s (given, or detected from the row length).

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
    speed_mm_per_s: float = 25.0

def find_layout(rgb_working: np.ndarray, grid: GridSpec, *, speed_mm_per_s: float | None = None,
                gain_mm_per_mv: float = 10.0, layout: str | None = None,
                lead_order: Sequence[str] | None = None,
                rhythm_leads: Sequence[str] | None = None,
                grid_weight: np.ndarray | None = None) -> Layout:
    """Find the rows, pulses and lead panels of an upright sheet.

    Parameters
    ----------
    rgb_working : ndarray of shape (H, W, 3), uint8
        Upright, deskewed sheet (see :func:`~ecgdigitize.geometry.rectify`).
    grid : GridSpec
        Scale of ``rgb_working`` (px/mm).
    speed_mm_per_s : float, optional
        Paper speed, mm/s. Default: detected from the printed row length
        (every layout shows 10 s per row; see :func:`detect_speed`).
    gain_mm_per_mv : float, default 10
        Amplitude scale, mm/mV (height of the calibration pulse).
    layout : str, optional
        Force a layout name instead of inferring it from the rows.
    lead_order : sequence of str, optional
        The 12 leads in reading order, column by column (default standard order).
    rhythm_leads : sequence of str, optional
        Leads of the rhythm strips (default: II, or the label read on a
        "3x4+1" sheet; II, V1, V5 for "3x4+3").
    grid_weight : ndarray of shape (H, W), float32, optional
        :func:`~ecgdigitize.grid.grid_mask` of ``rgb_working``, when already
        computed (it bounds the grid area).

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
        If ``layout`` or ``lead_order`` is invalid, or ``grid_weight`` is not
        one value per pixel of ``rgb_working``.

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
    if (ink.sum() < 0.0005 * ink.size
            and ink_mask(img, threshold=_INK_THRESHOLDS[-1][0]).sum() < 0.0005 * ink.size):
        raise NoTracesFoundError("the sheet holds almost no dark ink (blank page?)")
    ppm_x, ppm_y = grid.px_per_mm_x, grid.px_per_mm_y
    box = _grid_box(img, ink, grid, grid_weight)
    dark = 255 - _brightest(img)
    speeds = (speed_mm_per_s,) * 2 if speed_mm_per_s else KNOWN_SPEEDS_MM_PER_S
    n_want = None if layout is None else LAYOUT_SHAPES[layout][0] + len(LAYOUT_SHAPES[layout][2])
    for k, (threshold, loose_threshold) in enumerate(_INK_THRESHOLDS):
        if k:  # a light or broken pen: look again with looser thresholds
            ink = ink_mask(img, threshold=threshold)
        rows = _find_rows(ink, box, ppm_y)
        # faint or blurred thin strokes (pulses, separators): a looser ink threshold
        loose = ink_mask(img, threshold=loose_threshold)
        pulses = _find_pulses(loose, dark, rows, ppm_x, ppm_y,
                              (min(speeds), max(speeds)), gain_mm_per_mv)
        for _, looser in _INK_THRESHOLDS[k + 1:]:
            if any(p is not None for p in pulses):
                break
            # a pulse's thin side strokes can break up (blur, light ink) where the
            # traces still hold together: look for the pulses alone more loosely
            pulses = _find_pulses(ink_mask(img, threshold=looser), dark, rows, ppm_x, ppm_y,
                                  (min(speeds), max(speeds)), gain_mm_per_mv)
        rows = _merge_rows_sharing_pulse(
            [_Row(r.y if p is None else p.baseline_y_px, r.strength, r.coverage, p)
             for r, p in zip(rows, pulses, strict=True)], [r.y for r in rows])
        try:
            rows = _select_rows(rows, n_want)
            break
        except LayoutNotFoundError:
            if k == len(_INK_THRESHOLDS) - 1:
                raise
    pulses = [r.pulse for r in rows]
    baselines = [r.y for r in rows]
    x_start = _trace_start(ink, rows, pulses, box, ppm_x)
    measured = _row_length_px(ink, baselines, x_start, ppm_x)
    speed = speed_mm_per_s or detect_speed(measured / ppm_x)
    # a given speed may come with 5 s rows (50 mm/s on letter or A4 paper)
    duration = row_duration(measured / ppm_x, speed) if speed_mm_per_s else _DURATION_S
    row_len = duration * speed * ppm_x
    if (grid.source != "grid" and any(p is not None for p in pulses)
            and abs(measured / row_len - 1) < _RULER_TOLERANCE):
        # no grid to measure with: the printed row is the better ruler, when the pulses
        # mark where it starts
        row_len = measured
    name = layout or _name_layout(loose, rows, x_start, row_len, ppm_x, ppm_y,
                                  _rhythm_pairs(lead_order, rhythm_leads))
    n_grid_rows, n_cols, _ = LAYOUT_SHAPES[name]
    if n_cols > 1:
        x_start, row_len = _snap_to_separators(loose, rows[:n_grid_rows], x_start, row_len,
                                               n_cols, ppm_x, ppm_y, dark)
    if rhythm_leads is None and name == "3x4+1":
        rhythm_leads = (_read_rhythm_label(ink, baselines[-1], x_start, ppm_x, ppm_y),)
    cells = panel_cells(name, lead_order=lead_order, rhythm_leads=rhythm_leads,
                        duration_s=duration)
    panels = _panels(cells, baselines, x_start, row_len / duration, img.shape[0])
    found = tuple(PulseInfo((float(p.box_px[0]), float(p.box_px[1]), float(p.box_px[2]),
                             float(p.box_px[3])), p.height_px, p.baseline_y_px, i)
                  for i, p in enumerate(pulses) if p is not None)
    coverage = float(np.mean([r.coverage for r in rows]))
    confidence = float(np.clip(coverage, 0, 1) * (0.6 + 0.4 * len(found) / len(rows)))
    return Layout(name, panels, box, found, tuple(float(b) for b in baselines), confidence,
                  row_len / duration, float(speed))

# --- paper speed -----------------------------------------------------------------
def detect_speed(row_length_mm: float, *, duration_s: float = _DURATION_S) -> float:
    """Paper speed (mm/s) from the printed length of a row.

    Every standard layout prints ``duration_s`` (10 s) per row, so a row is
    about 250 mm long at 25 mm/s and 500 mm at 50 mm/s; the known speed whose
    row length is nearest (on a log scale) wins, so 25 mm/s up to 354 mm.
    The pulse width (0.2 s by convention only; 0.07 s on some machines) and
    the heart rate (RR intervals of 40-150 bpm overlap between the two
    speeds) are weaker evidence and are not used.

    Parameters
    ----------
    row_length_mm : float
        Length of the printed trace rows, mm of paper.
    duration_s : float, default 10
        Time shown per row, s.

    Returns
    -------
    float
        A speed of :data:`~ecgdigitize.config.KNOWN_SPEEDS_MM_PER_S`; 25
        when the length is not positive.

    Examples
    --------
    >>> detect_speed(246.0), detect_speed(497.0), detect_speed(0.0)
    (25.0, 50.0, 25.0)
    """
    if not row_length_mm > 0:
        return 25.0
    per_s = row_length_mm / duration_s
    return float(min(KNOWN_SPEEDS_MM_PER_S, key=lambda v: abs(np.log(per_s / v))))


def row_duration(row_length_mm: float, speed_mm_per_s: float) -> float:
    """Time shown per printed row (s) at a known paper speed: 10 s, or 5 s.

    Sheets printed at 50 mm/s on letter or A4 paper often show 5 s per row
    (about 250 mm), not 10 s. The row is taken as 5 s when its length is
    within 15 % of 5 s at ``speed_mm_per_s``; otherwise 10 s.

    Parameters
    ----------
    row_length_mm : float
        Printed length of the trace rows, mm of paper.
    speed_mm_per_s : float
        Paper speed, mm/s.

    Returns
    -------
    float
        5.0 or 10.0.

    Examples
    --------
    >>> row_duration(248.0, 50.0), row_duration(248.0, 25.0), row_duration(497.0, 50.0)
    (5.0, 10.0, 10.0)
    """
    short = _DURATION_S / 2
    if row_length_mm > 0 and abs(np.log(row_length_mm / (short * speed_mm_per_s))) < 0.15:
        return short
    return _DURATION_S


# --- panels --------------------------------------------------------------------
def panel_cells(layout: str, *, lead_order: Sequence[str] | None = None,
                rhythm_leads: Sequence[str] | None = None, duration_s: float = _DURATION_S
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
    duration_s : float, default 10
        Time shown per row, s (see :func:`row_duration`).

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
                         duration_s=duration_s)
    return tuple((c.lead, c.row, c.col, c.t0_s, c.t1_s, c.is_rhythm) for c in cells)


def _rhythm_pairs(lead_order: Sequence[str] | None, rhythm_leads: Sequence[str] | None
                  ) -> list[tuple[int, int, int]]:
    """(rhythm row, quarter, grid row) of each rhythm lead of a "3x4+3" sheet; none when the
    given rhythm leads do not fit that layout."""
    try:
        cells = panel_cells("3x4+3", lead_order=lead_order, rhythm_leads=rhythm_leads)
    except ConfigurationError:
        return []
    grid = {lead: (row, col) for lead, row, col, _, _, rhythm in cells if not rhythm}
    return [(row, grid[lead][1], grid[lead][0]) for lead, row, _, _, _, rhythm in cells
            if rhythm and lead in grid]


def _panels(cells: Sequence[tuple[str, int, int, float, float, bool]], baselines: Sequence[float],
            x0: float, px_per_s: float, height: int) -> tuple[Panel, ...]:
    b = np.asarray(baselines, dtype=float)
    pitch = float(np.median(np.diff(b))) if len(b) > 1 else 0.25 * height
    edges = np.concatenate([[b[0] - 0.55 * pitch], (b[:-1] + b[1:]) / 2, [b[-1] + 0.45 * pitch]])
    edges = np.clip(edges, 0, height - 1)
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
