"""Trace stage: separate the ECG ink from grid and text, then follow each trace.

1. :func:`ink_darkness` / :func:`ink_mask` mark trace ink: pixels much darker
   than the local paper in every colour channel (grids are coloured, or -
   when grey - much lighter than the trace), minus grid dots and specks, long
   vertical rules (column separators) and, with :func:`drop_labels`, lead
   names standing free in each panel's label zone.
2. :func:`extract_traces` follows every panel's trace with a column-wise
   Viterbi path through the ink (all panels at once, vectorised). A vertical
   move between columns costs ``jump_cost`` per pixel of *paper* crossed and
   only ``slope_cost`` per pixel along ink, so steep QRS edges are free while
   jumps to another trace are not; a prior pulls the path towards the
   panel's own baseline once it strays beyond half a row pitch.
3. In each column the vertical run of ink the path meets gives the line
   centre (module ``_centreline``): a darkness-weighted centroid on flat
   stretches (sub-pixel), the run's top or bottom (minus half the line
   width) at apexes and nadirs, and row-by-row horizontal centroids along
   steep strokes (two per row where the up- and down-strokes of a sharp wave
   merge, ordered along the stroke), so sharp R waves are neither clipped
   nor smeared in time.

Coordinates are working-image pixels (``y`` down).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import cv2
import numpy as np

from ._centreline import centreline, read_columns, run_bounds
from ._inkfit import Coverage, fit_polyline, pen_profile
from ._labelpath import smoothest_path
from ._morph import components, open_lines
from .clean import _true_runs
from .config import DigitizeConfig
from .errors import NoTracesFoundError
from .result import Panel

__all__ = ["Trace", "TraceSet", "drop_labels", "drop_labels_and_boxes", "extend_to_edges",
           "extract_trace", "extract_traces", "fit_traces_to_ink", "ink_darkness", "ink_level",
           "ink_mask", "label_boxes"]

#: Vertical single-column runs of ink longer than this are lines, not traces, mm.
MAX_STROKE_MM = 45.0
#: Components whose bounding box is smaller than this on both sides are specks, mm.
SPECK_MM = 0.6
#: Up to this many specks are cleared box by box; more, with one look-up over the image.
_SPECK_LOOP_MAX = 256
#: A pixel is trace ink when its darkness exceeds this fraction of the darkest ink's.
INK_CONTRAST = 0.7
#: Paper darker than this (0-255) is taken at this level when darkness is measured
#: relative to the paper (a black border or background around a photographed sheet).
_MIN_PAPER = 64
#: Horizontal runs of ink longer than this, and at most RULE_THICK_MM thick, are grid rules, mm.
RULE_MM = 60.0
RULE_THICK_MM = 0.3
#: Rows pooled for path tracking: one per this many px of row pitch (max 4).
POOL_PITCH_PX = 100
#: Ink edges blurred wider than this (px) are not fitted (:func:`fit_traces_to_ink`): on renders
#: blurred by 1 px (edge about 2.6 px) the fit gained nothing and tripled its cost.
MAX_FIT_EDGE_PX = 2.0
#: The path may stray this many row pitches above or below its baseline.
BAND_PITCHES = 1.25
#: Ink inside a lead label's box counts this much as evidence for the path (1 elsewhere):
#: where a glyph touches the trace, the path keeps to the trace's own stroke.
LABEL_INK_WEIGHT = 0.5
#: Label ink more than this many px (plus the path's pooling) from a path that passes a
#: label box by is not read as trace (see ``_clip_label_ink``).
LABEL_KEEP_PX = 1
#: :func:`extend_to_edges`: the slope of a trace's end is taken over its last this many px,
EDGE_STRETCH_PX = 1.5
#: a run that reaches farther only the other way than a stroke this steep (px per px) heads
#: is not followed,
EDGE_MIN_SLOPE = 1.0
#: nor one whose end lies farther than this many times a straight continuation of the
#: last stretch (plus the pen's half width). On the 51 clean renders, without this cap
#: the traces ran into the separator ticks: 23.92 dB mean SNR (24.15 unextended).
EDGE_EXTRAPOLATE = 2.0
#: A run reaches farther than the last column's when its end is this much farther, px.
EDGE_TOL_PX = 1.0
#: A run whose last 12 rows' darkness (5 columns) drifts less than this (0-255) from their
#: first to their last third ends as a vertical bar (a separator), not a slanted stroke.
EDGE_BAR_DRIFT = 12.0
#: Points this close to a side's last point are dropped when it is carried on, px (the
#: end vertex of a fitted polyline; its neighbours lie 0.4 px apart).
EDGE_DROP_PX = 0.3


@dataclass(frozen=True, eq=False)
class Trace:
    """One panel's trace: the centre line of the ink, plus per-column diagnostics.

    Attributes
    ----------
    lead : str
        Lead name of the panel.
    x_px, y_px : ndarray of shape (n,)
        Polyline of the line centre, working-image px (``y`` down), ``x``
        increasing; NaN ``y`` where the path found no ink.
    column_x_px : ndarray of shape (m,)
        Centres of the pixel columns traced, working px.
    path_px : ndarray of shape (m,)
        Row of the Viterbi path in each column (always finite), working px.
    width_px : ndarray of shape (m,)
        Length of the vertical ink run read in each column, px (NaN off ink).
    quality : float
        Score in [0, 1]: fraction of columns where the path lies on ink.
    panel : Panel
        The panel the trace was extracted from.

    Examples
    --------
    >>> import numpy as np
    >>> p = Panel("I", (100.0, 0.0, 300.0, 80.0), 0.0, 1.0, 40.0, 0, 0)
    >>> xs = np.arange(100.0, 300.0)
    >>> tr = Trace("I", xs, np.full(200, 30.0), xs, np.full(200, 30.0),
    ...            np.full(200, 3.0), 1.0, p)
    >>> tr.lead, tr.x_px.shape, float(tr.panel.baseline_y_px - tr.y_px[0])
    ('I', (200,), 10.0)
    """

    lead: str
    x_px: np.ndarray
    y_px: np.ndarray
    column_x_px: np.ndarray
    path_px: np.ndarray
    width_px: np.ndarray
    quality: float
    panel: Panel


@dataclass(frozen=True, eq=False)
class TraceSet:
    """All traces of a sheet, in panel order.

    Attributes
    ----------
    traces : tuple of Trace
        One per panel.
    line_width_px : float
        Median thickness of the trace ink, px.
    fitted : bool, default False
        Whether the polylines were fitted to the ink (:func:`fit_traces_to_ink`)
        rather than read column by column.

    Examples
    --------
    >>> import numpy as np
    >>> p = Panel("I", (100.0, 0.0, 300.0, 80.0), 0.0, 1.0, 40.0, 0, 0)
    >>> xs = np.arange(100.0, 300.0)
    >>> tr = Trace("I", xs, np.full(200, 40.0), xs, np.full(200, 40.0),
    ...            np.full(200, 3.0), 1.0, p)
    >>> ts = TraceSet((tr,), line_width_px=3.0)
    >>> len(ts), [t.lead for t in ts]
    (1, ['I'])
    """

    traces: tuple[Trace, ...]
    line_width_px: float
    fitted: bool = False

    def __iter__(self) -> Iterator[Trace]:
        return iter(self.traces)

    def __len__(self) -> int:
        return len(self.traces)


def ink_darkness(rgb: np.ndarray, *, px_per_mm: float) -> np.ndarray:
    """Darkness of every pixel below the local paper, as a fraction of it, 0-255.

    Brightness is the mean of luminance and the largest of R, G, B: a
    coloured grid keeps one bright channel and stays light, black ink (also
    where it is blended with grid) is dark in every channel. The paper level
    is the brightest pixel within 1.5 mm, so shading and tinted paper cancel;
    the darkness is ``255 (paper - brightness) / paper``, so ink in a shadow
    (ink and paper dimmed alike) is as dark as in the light. Paper darker
    than :data:`_MIN_PAPER` counts as that level (no division by near zero).

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        Working image.
    px_per_mm : float
        Scale, px per mm.

    Returns
    -------
    ndarray of shape (H, W), uint8

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((20, 20, 3), 240, np.uint8); img[10, :] = (232, 90, 90); img[5, :] = 0
    >>> d = ink_darkness(img, px_per_mm=4.0)
    >>> int(d[5, 5]), int(d[10, 5]), int(d[0, 0])
    (255, 62, 0)
    >>> shaded = (img * 0.5).astype(np.uint8)   # the same sheet in a shadow
    >>> int(ink_darkness(shaded, px_per_mm=4.0)[5, 5])
    255
    """
    img = np.ascontiguousarray(rgb, dtype=np.uint8)
    r, g, b = cv2.split(img)
    lum = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    value = cv2.addWeighted(cv2.max(cv2.max(r, g), b), 0.5, lum, 0.5, 0.0)
    k = max(3, round(1.5 * px_per_mm)) | 1
    paper = cv2.dilate(value, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    # relative to the paper: a shadow or a light fall-off dims ink and paper alike
    floor = np.full_like(paper, _MIN_PAPER)
    return cv2.divide(cv2.subtract(paper, value), cv2.max(paper, floor), scale=255)


def ink_level(darkness: np.ndarray) -> int:
    """Darkness of the darkest ink on the sheet: the 99.8th percentile, 0-255.

    Every second row and column is sampled, so a few isolated very dark
    pixels (under 0.2 % of the sample) do not set the level.

    Parameters
    ----------
    darkness : ndarray of shape (H, W), uint8
        Output of :func:`ink_darkness` (0 = paper, 255 = darkest).

    Returns
    -------
    int
        The 99.8th percentile of the sampled darkness, 0-255.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.zeros((100, 100), np.uint8)
    >>> d[50, :] = 200   # a trace: 1 % of the pixels
    >>> d[0, 0] = 255    # one dark speck
    >>> ink_level(d)
    200
    """
    hist = np.bincount(darkness[::2, ::2].ravel(), minlength=256)
    return int(np.searchsorted(np.cumsum(hist), 0.998 * hist.sum()))


def ink_mask(rgb: np.ndarray, *, px_per_mm: float, contrast: float = INK_CONTRAST,
             darkness: np.ndarray | None = None) -> np.ndarray:
    """Mark the pixels of trace ink.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        Working image.
    px_per_mm : float
        Scale, px per mm (sizes of specks and strokes follow it).
    contrast : float, default 0.7
        A pixel is ink when its darkness (:func:`ink_darkness`) exceeds
        ``contrast`` x the darkness of the darkest ink on the sheet.
    darkness : ndarray, optional
        :func:`ink_darkness` of ``rgb``, when already computed.

    Returns
    -------
    ndarray of shape (H, W), bool
        True on trace ink (text labels are kept; grid dots, specks and long
        vertical rules are removed).

    Raises
    ------
    NoTracesFoundError
        If the image holds no dark ink at all (blank page).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((60, 80, 3), 255, np.uint8)
    >>> img[30:33, 5:75] = 0          # a trace
    >>> img[10, 10] = 0               # a grid dot
    >>> img[40, :] = (232, 90, 90)    # a red grid line
    >>> m = ink_mask(img, px_per_mm=4.0)
    >>> bool(m[31, 40]), bool(m[10, 10]), bool(m[40, 40])
    (True, False, False)
    """
    score = ink_darkness(rgb, px_per_mm=px_per_mm) if darkness is None else darkness
    top = ink_level(score)
    if top < 40:
        raise NoTracesFoundError("no dark ink on the sheet (blank page?)")
    mask = score > max(contrast * top, 30.0)
    mask = _drop_grid_rules(mask, RULE_MM * px_per_mm, max(2, round(RULE_THICK_MM * px_per_mm)))
    mask = _drop_specks(mask, max(2, round(SPECK_MM * px_per_mm)))
    return _drop_long_strokes(mask, MAX_STROKE_MM * px_per_mm)


def drop_labels(mask: np.ndarray, panels: Sequence[Panel], *, px_per_mm: float,
                zone_mm: tuple[float, float, float, float] = (1.0, 12.0, 10.0, 3.0)
                ) -> np.ndarray:
    """Remove lead labels: ink blobs lying wholly inside each panel's label zone.

    The zone spans ``(left, right, above, below)`` mm around the panel start
    and baseline. A blob inside it that touches none of its sides is text
    (the trace runs on through the zone's sides). The free labels tell where
    the text line lies; on that line, glyphs that a QRS stroke crosses or
    touches are then cut from the stroke and removed too (see
    :func:`_drop_touching_labels`). Glyphs that a wave runs through from one
    end of the label to the other are kept.

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool
        Ink mask.
    panels : sequence of Panel
        Panels of the sheet.
    px_per_mm : float
        Scale, px per mm.
    zone_mm : (float, float, float, float), default (1, 12, 10, 3)
        Extent of the zone left of, right of, above and below the panel start.

    Returns
    -------
    ndarray of shape (H, W), bool
        A copy of ``mask`` without the labels.

    Examples
    --------
    >>> import numpy as np
    >>> from ecgdigitize.result import Panel
    >>> m = np.zeros((100, 200), bool)
    >>> m[60, :] = True                   # the trace
    >>> m[40:52, 20:23] = True            # a label "I" above it
    >>> p = Panel("I", (10, 20, 200, 100), 0, 1, 60.0, 0, 0)
    >>> out = drop_labels(m, [p], px_per_mm=4.0)
    >>> int(out[40:52, 20:23].sum()), int(out[60].sum())
    (0, 200)
    """
    return drop_labels_and_boxes(mask, panels, px_per_mm=px_per_mm, zone_mm=zone_mm)[0]


def label_boxes(mask: np.ndarray, panels: Sequence[Panel], *, px_per_mm: float,
                zone_mm: tuple[float, float, float, float] = (1.0, 12.0, 10.0, 3.0)
                ) -> list[tuple[float, float, float, float]]:
    """Where each panel's lead label prints, measured on the labels that stand free.

    The labels found by :func:`drop_labels` (blobs inside the zone around a
    panel's start that touch none of its sides) give one text line relative to
    the panel start and baseline: from the leftmost glyph's left edge to the
    rightmost glyph's right edge, or to the zone's right end when that is
    farther (a last glyph that touches the trace on every panel is not
    measured), between the median top and bottom of the glyphs. Each
    panel's label is taken to lie on that line.

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool
        Ink mask (labels still in it).
    panels : sequence of Panel
        Panels of the sheet.
    px_per_mm : float
        Scale, px per mm.
    zone_mm : (float, float, float, float), default (1, 12, 10, 3)
        As for :func:`drop_labels`.

    Returns
    -------
    list of (float, float, float, float)
        One ``(left, top, right, bottom)`` box per panel, px (empty when no
        label stands free anywhere on the sheet).

    Examples
    --------
    >>> import numpy as np
    >>> from ecgdigitize.result import Panel
    >>> m = np.zeros((120, 300), bool)
    >>> m[80, :] = True                               # the trace
    >>> m[62:72, 30:33] = m[62:72, 36:39] = True      # a two-glyph label above it
    >>> p = Panel("II", (20, 30, 300, 120), 1, 0, 80.0, 0, 0)
    >>> label_boxes(m, [p], px_per_mm=4.0)    # out to the zone's right end, 12 mm
    [(30.0, 62.0, 68.0, 72.0)]
    """
    return drop_labels_and_boxes(mask, panels, px_per_mm=px_per_mm, zone_mm=zone_mm)[1]


def drop_labels_and_boxes(mask: np.ndarray, panels: Sequence[Panel], *, px_per_mm: float,
                          zone_mm: tuple[float, float, float, float] = (1.0, 12.0, 10.0, 3.0)
                          ) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """:func:`drop_labels` and :func:`label_boxes` from one search for the free labels.

    Parameters
    ----------
    mask, panels, px_per_mm, zone_mm
        As for :func:`label_boxes` (``px_per_mm`` in px per mm, ``zone_mm`` in mm).

    Returns
    -------
    (ndarray of shape (H, W), bool; list of (float, float, float, float))
        The mask without the labels, and one label box per panel, px (both as
        the two functions return them).

    Examples
    --------
    A sheet printed without labels keeps its ink and has no label boxes:

    >>> import numpy as np
    >>> from ecgdigitize.result import Panel
    >>> trace_only = np.zeros((50, 80), bool)
    >>> trace_only[30, :] = True
    >>> out, boxes = drop_labels_and_boxes(
    ...     trace_only, [Panel("V1", (0, 0, 80, 50), 0, 0, 30.0, 0, 0)], px_per_mm=4.0)
    >>> bool((out == trace_only).all()), boxes
    (True, [])
    """
    out = mask.copy()
    box = _drop_free_labels(out, panels, px_per_mm, zone_mm)
    if box is None:
        return out, []
    _drop_touching_labels(out, panels, box, px_per_mm)
    left, top, right, bottom = (float(v) for v in box)
    right = max(right, zone_mm[1] * px_per_mm)  # a last glyph touching the trace everywhere
    return out, [(p.box_px[0] + left, p.baseline_y_px + top, p.box_px[0] + right,
                  p.baseline_y_px + bottom) for p in panels]


def _drop_free_labels(out: np.ndarray, panels: Sequence[Panel], px_per_mm: float,
                      zone_mm: tuple[float, float, float, float]) -> np.ndarray | None:
    """Remove the labels standing free in each panel's zone, in place; return their line.

    The line is ``(left, top, right, bottom)`` relative to a panel's start and
    baseline, px: leftmost and rightmost glyph edges, median top and bottom
    (None when no glyph stands free).
    """
    h, w = out.shape
    left, right, above, below = (v * px_per_mm for v in zone_mm)
    found: list[tuple[float, float, float, float]] = []  # free labels, px from start/baseline
    for p in panels:
        x0 = max(0, int(p.box_px[0] - left))
        x1 = min(w, int(p.box_px[0] + right))
        y0 = max(0, int(p.baseline_y_px - above))
        y1 = min(h, int(p.baseline_y_px + below))
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        zone = out[y0:y1, x0:x1]
        n, labels, stats, _ = cv2.connectedComponentsWithStats(zone.view(np.uint8),
                                                               connectivity=8)
        sx, sy = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
        sw, sh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
        inner = (sx > 0) & (sy > 0) & (sx + sw < x1 - x0) & (sy + sh < y1 - y0)
        inner[0] = False
        if n > 1 and inner.any():
            zone[inner[labels]] = False
            big = inner & (sh >= 1.5 * px_per_mm)  # glyphs, not specks
            if big.any():
                ox, oy = x0 - p.box_px[0], y0 - p.baseline_y_px
                found.append((ox + float(sx[big].min()), oy + float(sy[big].min()),
                              ox + float((sx + sw)[big].max()), oy + float((sy + sh)[big].max())))
    if not found:
        return None
    f = np.asarray(found)  # free glyphs: the label starts at the leftmost
    return np.array([f[:, 0].min(), np.median(f[:, 1]), f[:, 2].max(), np.median(f[:, 3])])


def _drop_touching_labels(mask: np.ndarray, panels: Sequence[Panel], box: np.ndarray,
                          px_per_mm: float) -> None:
    """Remove label glyphs that touch the trace, in place, knowing where labels print.

    ``box`` is the label's ``(left, top, right, bottom)`` relative to a
    panel's start and baseline, px, measured on the labels that stood free.
    The glyphs of every panel sit on that text line. A trace crosses it as
    steep strokes (a QRS) entering from above or below: each is followed row
    by row from outside the line, its run never wider than where it entered
    (so a glyph it touches comes apart from it). What is left on the line and
    reaches neither end of the label's box is glyphs; a wave that runs through
    the text from one end to the other keeps the glyphs it touches.
    """
    h, w = mask.shape
    left, top, right, bottom = (float(v) for v in box)
    pad = max(2, round(0.25 * px_per_mm))
    pen = max(3, round(0.5 * px_per_mm))
    for p in panels:
        x0 = max(0, int(np.floor(p.box_px[0] + left)) - pad)
        x1 = min(w, int(np.ceil(p.box_px[0] + right)) + 2 * pad)
        y0 = int(np.floor(p.baseline_y_px + top)) - pad
        y1 = int(np.floor(p.baseline_y_px + bottom)) + 1   # below the text's last row
        if x1 - x0 < 3 or y1 - y0 < 3 or y0 < 1 or y1 + 2 >= h:
            continue
        region = mask[y0:y1 + 2, x0:x1]       # the line and two rows under it
        strokes = (_follow_strokes(region, mask[y0 - 1, x0:x1], pen)
                   | _follow_strokes(region[::-1], mask[y1 + 2, x0:x1], pen)[::-1])
        line = mask[y0:y1, x0:x1]
        rest = line & ~strokes[: y1 - y0]
        n, labels, stats, _ = cv2.connectedComponentsWithStats(rest.view(np.uint8),
                                                               connectivity=8)
        sx = stats[:, cv2.CC_STAT_LEFT]
        glyph = (sx > 0) & (sx + stats[:, cv2.CC_STAT_WIDTH] < x1 - x0)
        glyph[0] = False
        glyph &= ~_passes_through(labels, n, mask[y0 - 1, x0:x1], mask[y1, x0:x1])
        if n > 1 and glyph.any():
            reach = y1 - y0                  # the trace around the line, one line height
            ya, yb = max(0, y0 - reach), min(h, y1 + reach)
            glyph &= ~_bridges(mask[ya:yb, x0:x1], labels, glyph, y0 - ya)
            line[glyph[labels]] = False


def _bridges(region: np.ndarray, labels: np.ndarray, glyph: np.ndarray,
             row: int) -> np.ndarray:
    """Which glyph pieces carry the trace across a label: without them it breaks.

    ``region`` is the ink around the text line (its columns), ``labels``
    numbers the pieces of the line's ink (the line starts at ``row`` of
    ``region``) and ``glyph`` flags those taken for glyphs. Ink joining the
    region's left and right sides is the trace. When it joins them with
    every glyph piece in, and no longer without them, a piece it passes
    through was taken for a glyph (a wave merged with the text): each piece
    that joins the sides again on its own is kept; if none does, all are.

    Examples
    --------
    >>> reg = np.zeros((9, 12), bool)
    >>> reg[6, :4] = reg[6, 8:] = True      # the trace, below the line
    >>> reg[1:4, 4:8] = True                # ...rising through it (rows 1-3)
    >>> reg[4:6, 3] = reg[4:6, 8] = True
    >>> lab = np.zeros((3, 12), int)
    >>> lab[:, 4:8] = 1
    >>> _bridges(reg, lab, np.array([False, True]), 1).tolist()
    [False, True]
    """
    n = glyph.size
    keep = np.zeros(n, dtype=bool)
    pieces = glyph[labels]
    without = region.copy()
    without[row:row + labels.shape[0]][pieces] = False
    if _joins_sides(without) or not _joins_sides(region):
        return keep
    for k in np.flatnonzero(glyph):
        trial = without.copy()
        trial[row:row + labels.shape[0]][labels == k] = True
        keep[k] = _joins_sides(trial)
    return keep if keep.any() else glyph.copy()


def _joins_sides(mask: np.ndarray) -> bool:
    """Whether one 8-connected piece of ``mask`` touches both its first and last column."""
    _, lab = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
    left, right = lab[:, 0], lab[:, -1]
    return bool(np.intersect1d(left[left > 0], right[right > 0]).size)


def _passes_through(labels: np.ndarray, n: int, above: np.ndarray,
                    below: np.ndarray) -> np.ndarray:
    """Which pieces of a text line are a wave passing through it, not glyphs.

    ``labels`` numbers the ``n`` pieces (connected components, 0 the
    background) of the line's ink; ``above`` and ``below`` are the ink rows
    just outside it. A wave (a P or T hump) leaves the line and comes back: it
    meets the ink outside at points farther apart than the line is tall, with
    no ink along the line's edge between them for most of the way. A glyph
    stands on the trace by its feet (closer together than its height), and a
    trace lying along the line's edge, with glyphs standing on it, touches
    the ink outside all along.

    Examples
    --------
    >>> lab = np.zeros((4, 30), int)
    >>> lab[3, 2:5] = lab[3, 25:28] = lab[1:3, 4:26] = lab[0, 10:20] = 1  # a hump
    >>> out = np.zeros(30, bool)
    >>> out[:5] = out[25:] = True          # the trace below, on either side
    >>> _passes_through(lab, 2, np.zeros(30, bool), out).tolist()
    [False, True]
    """
    cols = np.arange(labels.shape[1])
    lo, hi = np.full(n, cols.size), np.full(n, -1)
    contacts = np.zeros(n)
    for row, outside in ((labels[0], above), (labels[-1], below)):
        near = outside.copy()          # 8-connected: diagonal neighbours touch too
        near[1:] |= outside[:-1]
        near[:-1] |= outside[1:]
        touch = row * near
        np.minimum.at(lo, touch, cols)
        np.maximum.at(hi, touch, cols)
        contacts += np.bincount(touch, minlength=n)
    wave = (hi - lo >= labels.shape[0]) & (contacts <= 0.5 * (hi - lo + 1))
    wave[0] = False
    return wave


def _follow_strokes(band: np.ndarray, seed: np.ndarray, max_width: int) -> np.ndarray:
    """Ink of ``band`` on the steep strokes that enter it from the row ``seed`` above it.

    Every run of ``seed`` at most ``max_width`` px wide starts a stroke. Row by
    row, a stroke takes the ink within a pixel of its last run, cut to the
    width it entered with around that run's centre (where a glyph merges with
    it); it ends where it finds no ink.

    Examples
    --------
    >>> band = np.zeros((6, 12), bool)
    >>> band[:, 3:5] = True            # a stroke
    >>> band[2, 4:10] = True           # a glyph's bar touching it
    >>> kept = _follow_strokes(band, band[0], 3)
    >>> kept[2].nonzero()[0].tolist(), int(kept.sum())
    ([3, 4], 12)
    """
    h, w = band.shape
    kept = np.zeros_like(band)
    # (first, last, width): a stroke keeps the width it enters with
    strokes = [(a, b - 1, b - a) for a, b in _true_runs(seed) if b - a <= max_width]
    for r in range(h):
        row, nxt = band[r], []
        for a, b, width in strokes:
            lo, hi = max(a - 1, 0), min(b + 2, w)
            cols = np.flatnonzero(row[lo:hi]) + lo
            if cols.size == 0:
                continue
            a2, b2 = int(cols[0]), int(cols[-1])
            if b2 - a2 >= width:
                c = round((a + b) / 2 - (width - 1) / 2)
                a2, b2 = max(a2, c), min(b2, c + width - 1)
            kept[r, a2:b2 + 1] = row[a2:b2 + 1]
            nxt.append((a2, b2, width))
        if not nxt:
            break
        strokes = sorted(set(nxt))
    return kept


def _drop_specks(mask: np.ndarray, size_px: int) -> np.ndarray:
    """Remove connected components whose bounding box is below ``size_px`` both ways."""
    labels, stats = components(mask)
    small = (stats[:, cv2.CC_STAT_WIDTH] < size_px) & (stats[:, cv2.CC_STAT_HEIGHT] < size_px)
    small[0] = False  # the background
    ids = np.flatnonzero(small)
    if ids.size > _SPECK_LOOP_MAX:  # a speckled photo: one look-up over the whole image
        return mask & ~small[labels]
    out = mask.copy()
    for i in ids:  # a few specks: clear each inside its own box
        x, y, w, h = (int(v) for v in stats[i, :4])
        out[y:y + h, x:x + w][labels[y:y + h, x:x + w] == i] = False
    return out


def _drop_grid_rules(mask: np.ndarray, min_len_px: float, max_thick_px: int) -> np.ndarray:
    """Remove horizontal grid rules dark enough to pass for ink.

    A grid printed in the ink's own hue (a blue-tinted copy, a dark grey grid)
    leaves its major lines in the mask. They are the horizontal runs of ink
    longer than ``min_len_px`` (no ECG stays on one pixel row that long) and
    at most ``max_thick_px`` thick; where a trace crosses or touches them, the
    ink is thicker and stays.
    """
    length = int(min_len_px)
    if length >= mask.shape[1]:
        return mask
    lines = open_lines(mask, length, axis=1)
    if not lines.any():
        return mask
    # the thickness test matters only in the columns the lines cross
    thick = open_lines(mask, max_thick_px + 1, axis=0, candidates=np.asarray(lines.any(axis=0)))
    return mask & ~(lines & ~thick)


def _drop_long_strokes(mask: np.ndarray, max_len_px: float) -> np.ndarray:
    """Remove vertical runs of ink longer than ``max_len_px`` (ruled lines)."""
    length = int(max_len_px) + 1
    if length >= mask.shape[0]:
        return mask
    return mask & ~open_lines(mask, length, axis=0)


def extract_trace(mask: np.ndarray, panel: Panel, *, row_pitch_px: float,
                  config: DigitizeConfig | None = None,
                  x_range_px: tuple[float, float] | None = None) -> Trace:
    """Follow the trace of one panel through an ink mask.

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool
        Ink mask of the working image (see :func:`ink_mask`).
    panel : Panel
        The panel: its ``box_px`` x-range and ``baseline_y_px`` are used.
    row_pitch_px : float
        Distance between neighbouring rows' baselines, px. The path may go
        1.25 pitches above or below the baseline; beyond half a pitch the
        baseline prior grows.
    config : DigitizeConfig, optional
        Tracking parameters (``jump_cost``, ``slope_cost``, ``prior_weight``,
        ``peak_mode``); defaults when omitted.
    x_range_px : (float, float), optional
        Columns to trace, working px (default: the panel box's x-range), e.g.
        to skip a calibration pulse.

    Returns
    -------
    Trace
        One value per pixel column.

    Examples
    --------
    >>> import numpy as np
    >>> from ecgdigitize.result import Panel
    >>> m = np.zeros((100, 50), bool)
    >>> m[48:51, :] = True
    >>> m[20:51, 25] = True           # a spike 30 px tall
    >>> p = Panel("II", (0, 20, 50, 80), 0.0, 1.0, 49.0, 0, 0)
    >>> tr = extract_trace(m, p, row_pitch_px=60)
    >>> float(np.interp(10, tr.x_px, tr.y_px)), float(tr.y_px.min()), tr.quality
    (49.0, 21.0, 1.0)
    """
    ranges = None if x_range_px is None else [x_range_px]
    return _trace_panels(mask, [panel], row_pitch_px, config or DigitizeConfig(), ranges)[0]


def extract_traces(mask: np.ndarray, panels: Sequence[Panel], *,
                   row_pitch_px: float | None = None, config: DigitizeConfig | None = None,
                   x_ranges_px: Sequence[tuple[float, float]] | None = None,
                   darkness: np.ndarray | None = None,
                   label_boxes_px: Sequence[tuple[float, float, float, float]] = ()
                   ) -> TraceSet:
    """Follow the trace of every panel (all panels tracked together, vectorised).

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool
        Ink mask of the working image (see :func:`ink_mask`).
    panels : sequence of Panel
        Panels of the layout.
    row_pitch_px : float, optional
        Distance between neighbouring rows' baselines, px; default: the
        median gap between the distinct panel baselines (or the panel height
        for a single row).
    config : DigitizeConfig, optional
        Tracking parameters.
    x_ranges_px : sequence of (float, float), optional
        Columns to trace for each panel (default: each panel box's x-range).
    darkness : ndarray of shape (H, W), uint8, optional
        :func:`ink_darkness` of the image: line centres then come from
        darkness-weighted centroids (sub-pixel) instead of run midpoints.
    label_boxes_px : sequence of (float, float, float, float), optional
        ``(left, top, right, bottom)`` boxes, px, where lead labels print (see
        :func:`label_boxes`): ink inside them counts only
        :data:`LABEL_INK_WEIGHT` for the path, so that where a glyph touches
        the trace the path keeps to the trace's stroke.

    Returns
    -------
    TraceSet
        One :class:`Trace` per panel, in the same order.

    Raises
    ------
    NoTracesFoundError
        If ``panels`` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> from ecgdigitize.result import Panel
    >>> m = np.zeros((120, 60), bool)
    >>> m[30:32, :] = True
    >>> m[90:92, :] = True
    >>> ps = [Panel("I", (0, 0, 60, 60), 0, 1, 31.0, 0, 0),
    ...       Panel("II", (0, 60, 60, 120), 0, 1, 91.0, 1, 0)]
    >>> [float(np.nanmean(t.y_px)) for t in extract_traces(m, ps)]
    [30.5, 90.5]
    """
    if len(panels) == 0:
        raise NoTracesFoundError("no panels to trace")
    pitch = _row_pitch(panels) if row_pitch_px is None else float(row_pitch_px)
    weight = None
    cfg = config or DigitizeConfig()
    level = 0
    if darkness is not None:
        level = ink_level(darkness)
        weight = np.maximum(darkness.astype(np.float32) - 0.25 * level, 0.0)
        weight /= max(0.75 * level, 1.0)   # 1 on solid ink, 0 on paper
    traces = _trace_panels(mask, list(panels), pitch, cfg, x_ranges_px, weight,
                           label_boxes_px)
    widths = [float(np.nanmedian(t.width_px)) for t in traces if np.isfinite(t.width_px).any()]
    out = TraceSet(tuple(traces), float(np.median(widths)) if widths else float("nan"))
    if darkness is not None and _fits_ink(cfg):
        out = fit_traces_to_ink(out, darkness, level=level)
    return out


def _fits_ink(cfg: DigitizeConfig) -> bool:
    """Whether the traces are fitted to the ink: ``fit_ink``, with the hybrid reading only
    (``peak_mode="midpoint"`` is the plain reading, kept as it is)."""
    return cfg.fit_ink and cfg.peak_mode == "hybrid"


def fit_traces_to_ink(traces: TraceSet, darkness: np.ndarray, *,
                      level: int | None = None) -> TraceSet:
    """Traces refined by fitting a line drawn with the sheet's pen to the ink.

    The polyline of each trace gets a vertex every 0.4 px of the time axis,
    moved until the ink coverage it predicts matches the image (private module
    ``ecgdigitize._inkfit``). The pen's half width and edge width come from
    the traces' flat stretches. Without a plausible pen (0.4-6 px half width),
    or with ink blurred beyond :data:`MAX_FIT_EDGE_PX`, the traces are returned
    as read. Called by :func:`extract_traces` unless
    ``DigitizeConfig(fit_ink=False)``.

    Parameters
    ----------
    traces : TraceSet
        Traces read column by column (:func:`extract_traces` with ``fit_ink=False``).
    darkness : ndarray of shape (H, W), uint8
        :func:`ink_darkness` of the image the traces were read on.
    level : int, optional
        :func:`ink_level` of ``darkness`` (computed when omitted).

    Returns
    -------
    TraceSet
        The same traces with fitted polylines (``x_px``, ``y_px``).

    Examples
    --------
    >>> import numpy as np
    >>> from ecgdigitize.synth.draw import ink_mask as draw
    >>> xs = np.arange(2.0, 198.0, 0.4)
    >>> cover = draw((60, 200), [(xs, 30 + 4 * np.sin(xs / 6))], 2.0)
    >>> img = np.repeat((255 * (1 - cover)).astype(np.uint8)[:, :, None], 3, axis=2)
    >>> dark = ink_darkness(img, px_per_mm=8.0)
    >>> p = Panel("I", (0, 0, 200, 60), 0.0, 1.0, 30.0, 0, 0)
    >>> read = extract_traces(ink_mask(img, px_per_mm=8.0, darkness=dark), [p],
    ...                       config=DigitizeConfig(fit_ink=False))
    >>> fitted = fit_traces_to_ink(read, dark).traces[0]
    >>> bool(np.nanmax(np.abs(np.diff(fitted.x_px))) < 0.41)   # a vertex every 0.4 px
    True
    """
    level = ink_level(darkness) if level is None else level
    coverage = Coverage(darkness, level)   # converted only where the fit reads it
    profile = pen_profile(coverage, [(t.x_px, t.y_px) for t in traces])
    if profile is None:
        return traces
    radius, edge = profile
    if not (0.4 <= radius <= 6.0 and edge <= MAX_FIT_EDGE_PX):
        return traces
    fitted = []
    for t in traces:
        x, y = fit_polyline(coverage, t.x_px, t.y_px, radius, edge)
        fitted.append(replace(t, x_px=x, y_px=y))
    return TraceSet(tuple(fitted), traces.line_width_px, fitted=True)


def extend_to_edges(traces: TraceSet, darkness: np.ndarray,
                    edges_px: Sequence[tuple[float, float]], *, level: int | None = None,
                    max_gap_px: float | None = None) -> TraceSet:
    """Traces carried on to their panel edges along the ink, where that is unambiguous.

    A panel that abuts another one is read a little short of the shared edge
    (separator marks and the neighbour's stroke sit there), and the samples
    left out would hold the last value read: a steep stroke that crosses the
    edge is cut short. Column by column from the last point to the edge, the
    vertical run of ink (darker than half the ink level) that overlaps the
    previous column's run is followed: when it reaches farther on one side
    only, the stroke heads that way (the way the last stretch of the trace
    heads, when that is steeper than :data:`EDGE_MIN_SLOPE`) and its far end
    minus the pen's half width is where the stroke got to; a short run that
    reaches no farther gives its centre (a flat stretch). One point is added
    on the edge, and the last point read (the least reliable vertex of a
    fitted polyline) is dropped, so the samples between follow a straight
    line to it. A run's end is a separator's, not the stroke's, when it ends
    as a vertical bar does (the same darkness across five columns row after
    row, where a slanted stroke drifts sideways). A side is left as it is
    (held) when nothing continues the trace, the run reaches farther both
    ways (a mark across the stroke, unless the end behind the stroke is a
    bar's) or is long with no way to tell which end is the stroke's, the
    stroke's end is a bar's, or it would lie more than
    :data:`EDGE_EXTRAPOLATE` times farther than a straight continuation of
    the last stretch.

    Parameters
    ----------
    traces : TraceSet
        Traces of the working image (e.g. :func:`fit_traces_to_ink`).
    darkness : ndarray of shape (H, W), uint8
        :func:`ink_darkness` of that image.
    edges_px : sequence of (float, float)
        For each trace, the x of its left and right edge to carry it to,
        working px; NaN leaves that side alone.
    level : int, optional
        :func:`ink_level` of ``darkness`` (computed when omitted).
    max_gap_px : float, optional
        Sides whose last point lies farther than this from the edge, px, are
        left alone (default: the line width, at least 2 px).

    Returns
    -------
    TraceSet
        The traces, each side carried on ending on its edge.

    Examples
    --------
    A stroke rising steeply (9 px per px) to the right edge (x = 20) of a
    panel read up to x = 18, where it is still 18 px short of its end:

    >>> import numpy as np
    >>> from ecgdigitize.synth.draw import ink_mask as draw
    >>> xs = np.r_[np.arange(0.0, 16.0, 0.4), 16.0, 20.0]
    >>> ys = np.r_[np.full(40, 40.0), 40.0, 4.0]
    >>> img = (255 * (1 - draw((50, 30), [(xs, ys)], 2.0))).astype(np.uint8)
    >>> dark = ink_darkness(np.repeat(img[:, :, None], 3, axis=2), px_per_mm=8.0)
    >>> p = Panel("I", (0.0, 0.0, 20.0, 50.0), 0.0, 1.0, 40.0, 0, 0)
    >>> read = np.r_[xs[:-1], 17.0, 18.0]
    >>> tr = Trace("I", read, np.interp(read, xs, ys), read, np.interp(read, xs, ys),
    ...            np.full(read.size, 2.0), 1.0, p)
    >>> out = extend_to_edges(TraceSet((tr,), 2.0), dark, [(np.nan, 20.0)]).traces[0]
    >>> float(tr.y_px[-1]), float(out.x_px[-1]), round(float(out.y_px[-1]))
    (22.0, 20.0, 4)
    """
    level = ink_level(darkness) if level is None else level
    width = traces.line_width_px if np.isfinite(traces.line_width_px) else 2.0
    reach = max(2.0, width) if max_gap_px is None else max_gap_px
    out = []
    for t, edges in zip(traces, edges_px, strict=True):
        x, y = t.x_px, t.y_px
        for side, edge in zip((-1, 1), edges, strict=True):
            if np.isfinite(edge):
                x, y = _extend_side(x, y, darkness, float(edge), side, 0.5 * level,
                                    width / 2, reach)
        out.append(t if x is t.x_px else replace(t, x_px=x, y_px=y))
    return TraceSet(tuple(out), traces.line_width_px, fitted=traces.fitted)


def _extend_side(x: np.ndarray, y: np.ndarray, darkness: np.ndarray, edge: float, side: int,
                 thr: float, radius: float, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """One side of :func:`extend_to_edges` (``side`` -1 left, +1 right)."""
    ok = np.flatnonzero(np.isfinite(y))
    if ok.size < 3:
        return x, y
    end = ok[-1] if side > 0 else ok[0]
    xb, yb = float(x[end]), float(y[end])
    c0, last = int(np.floor(xb + 0.5)), int(np.floor(edge + 0.5))
    w = darkness.shape[1]
    if not (0.25 <= (edge - xb) * side <= reach and 0 <= c0 < w and 0 <= last < w):
        return x, y
    near = ok[np.abs(x[ok] - xb) <= EDGE_STRETCH_PX]
    far = near[np.argmax(np.abs(x[near] - xb))]
    run_x = abs(xb - float(x[far]))
    slope = (yb - float(y[far])) / run_x if run_x > 0 else 0.0   # px down per px outwards
    prev = _run_near(darkness[:, c0], yb, yb, thr, radius + 1)
    yn, heading = None, 0
    for c in range(c0 + side, last + side, side):
        if prev is None:
            break
        run = _run_near(darkness[:, c], prev[0] - 1, prev[1] + 1, thr, radius + 1,
                        yb if yn is None else yn)
        if run is None:
            break
        up, down = prev[0] - run[0] > EDGE_TOL_PX, run[1] - prev[1] > EDGE_TOL_PX
        if up and down and abs(slope) >= EDGE_MIN_SLOPE:
            # farther both ways: one may be a separator the stroke runs into
            behind = -1 if slope > 0 else 1
            if _bar_end(darkness, c, run, behind):
                up, down = slope < 0, slope > 0
                run = (prev[0], run[1]) if down else (run[0], prev[1])
        if up and down:
            break                           # ink farther both ways: a mark across the stroke
        if up or down:
            if abs(slope) >= EDGE_MIN_SLOPE and (slope > 0) != down:
                break                       # not the way the trace heads
            heading = 1 if down else -1
            if _bar_end(darkness, c, run, heading):
                break
        elif run[1] - run[0] <= 2 * radius + 2:
            heading = 0
        elif heading == 0:
            break                           # a long run, no farther than the last: no telling
        step = (run[0] + run[1]) / 2 if heading == 0 else (
            run[1] - radius if heading > 0 else run[0] + radius)
        xc = edge if c == last else float(c)
        if abs(step - yb) > EDGE_EXTRAPOLATE * abs(slope) * abs(xc - xb) + radius:
            break
        yn, prev = step, run
    if yn is None:
        return x, y
    keep = ok[np.abs(x[ok] - xb) >= EDGE_DROP_PX]  # the end vertex of a fit is the least sure
    if keep.size:
        end = keep[-1] if side > 0 else keep[0]
    if side > 0:
        return np.r_[x[:end + 1], edge], np.r_[y[:end + 1], yn]
    return np.r_[edge, x[end:]], np.r_[yn, y[end:]]


def _bar_end(darkness: np.ndarray, c: int, run: tuple[float, float], heading: int) -> bool:
    """Whether a run ends (at its bottom for ``heading`` 1, top for -1) as a vertical bar
    does: over its last 12 rows the darkness of columns c-2..c+2 drifts less than
    :data:`EDGE_BAR_DRIFT` between the first and last thirds (a slanted stroke drifts)."""
    top, bot = int(np.ceil(run[0])), int(np.floor(run[1]))
    rows = np.arange(max(top, bot - 12), bot) if heading > 0 else np.arange(
        top + 1, min(bot, top + 13))
    if rows.size < 4 or c < 2 or c + 3 > darkness.shape[1]:
        return False
    prof = darkness[rows, c - 2:c + 3].astype(np.float32)
    k = rows.size // 3
    drift = np.median(prof[:k], axis=0) - np.median(prof[-k:], axis=0)
    return bool(np.max(np.abs(drift)) < EDGE_BAR_DRIFT)


def _run_near(col: np.ndarray, lo: float, hi: float, thr: float, reach: float,
              y: float | None = None) -> tuple[float, float] | None:
    """Sub-pixel ends (where the darkness crosses ``thr``) of the run of ``col > thr``
    meeting rows ``[lo - reach, hi + reach]`` nearest row ``y`` (default: mid-way), or None."""
    h = col.size
    r0 = int(np.floor(((lo + hi) / 2 if y is None else y) + 0.5))
    a, b = max(0, int(np.ceil(lo - reach))), min(h - 1, int(np.floor(hi + reach)))
    rows = np.arange(a, b + 1)
    rows = rows[col[rows] > thr]
    if rows.size == 0:
        return None
    seed = int(rows[np.argmin(np.abs(rows - r0))])
    ink = col > thr
    top = seed
    while top > 0 and ink[top - 1]:
        top -= 1
    bot = seed
    while bot < h - 1 and ink[bot + 1]:
        bot += 1
    d = col.astype(np.float32)
    t = top - 0.5 if top == 0 else top - (d[top] - thr) / (d[top] - d[top - 1])
    u = bot + 0.5 if bot == h - 1 else bot + (d[bot] - thr) / (d[bot] - d[bot + 1])
    return float(t), float(u)


def _row_pitch(panels: Sequence[Panel]) -> float:
    """Median gap between distinct baselines, px (panel height for one row)."""
    bases = np.unique(np.round([p.baseline_y_px for p in panels], 0))
    gaps = np.diff(bases)
    gaps = gaps[gaps > 2]
    if gaps.size:
        return float(np.median(gaps))
    return float(np.median([p.box_px[3] - p.box_px[1] for p in panels]))


@dataclass(frozen=True)
class _Job:
    """One chunk of one panel for the batched Viterbi."""

    panel: int
    c0: int
    c1: int
    r0: int
    r1: int


def _trace_panels(mask: np.ndarray, panels: list[Panel], pitch: float, cfg: DigitizeConfig,
                  x_ranges: Sequence[tuple[float, float]] | None,
                  weight: np.ndarray | None = None,
                  label_boxes: Sequence[tuple[float, float, float, float]] = ()
                  ) -> list[Trace]:
    """Split panels into chunks of similar width, track them in one batch, read values.

    The path is tracked on a mask max-pooled vertically by ``pool`` rows
    (about 4 rows per mm of paper, every column kept so the path can follow
    steep QRS strokes); the values are read at full resolution.
    """
    h, w = mask.shape
    pool = int(np.clip(pitch // POOL_PITCH_PX, 1, 4))
    small = _max_pool_rows(mask, pool)
    top, bot = run_bounds(mask)
    spans, jobs = [], []
    chunk = max(8, int(min(max(p.box_px[2] - p.box_px[0], 8) for p in panels)))
    for i, p in enumerate(panels):
        x0, x1 = x_ranges[i] if x_ranges is not None else (p.box_px[0], p.box_px[2])
        c0, c1 = max(0, int(np.ceil(x0))), min(w, int(np.floor(x1)))
        r0 = max(0, int(p.baseline_y_px - BAND_PITCHES * pitch))
        r1 = min(h, int(p.baseline_y_px + BAND_PITCHES * pitch) + 1)
        spans.append((c0, c1, r0, r1))
        n = max(1, int(np.ceil((c1 - c0) / chunk)))
        edges = np.linspace(c0, max(c0, c1), n + 1).round().astype(int)
        jobs += [_Job(i, int(a), int(b), r0 // pool, (r1 - 1) // pool + 1)
                 for a, b in pairwise(edges.tolist()) if b - a >= 2 and r1 > r0]
    paths = _viterbi_batch(small, jobs, [p.baseline_y_px / pool for p in panels],
                           pitch / pool, cfg, _evidence(small, label_boxes, pool))
    out = []
    for i, p in enumerate(panels):
        c0, c1, r0, r1 = spans[i]
        xs = np.arange(c0, max(c0, c1), dtype=float)
        path = np.full(xs.size, -1, dtype=np.int64)
        for j, pa in zip(jobs, paths, strict=True):
            if j.panel == i:
                path[j.c0 - c0:j.c1 - c0] = pa
        if xs.size == 0 or (path < 0).all():
            empty = np.full(xs.size, np.nan)
            out.append(Trace(p.lead, xs, empty, xs, empty.copy(), empty.copy(), 0.0, p))
            continue
        path = np.clip(path * pool + (pool - 1) // 2, r0, r1 - 1)
        band = mask[:, c0:c1]
        bounds = (top[:, c0:c1], bot[:, c0:c1])
        if label_boxes:
            path = _smooth_through_labels(band, path, c0, label_boxes, pool, bounds)
        clipped = _clip_label_ink(band, path, c0, label_boxes, pool + LABEL_KEEP_PX, bounds)
        if clipped is not None:
            # the runs change only in the columns cleared
            cols = np.flatnonzero((clipped != band).any(axis=0))
            bounds = (bounds[0].copy(), bounds[1].copy())
            bounds[0][:, cols], bounds[1][:, cols] = run_bounds(clipped[:, cols])
            band = clipped
        t, b, on_ink = read_columns(band, path, pool, bounds)
        x_rel, y = centreline(t, b, cfg.peak_mode, band,
                               None if weight is None else weight[:, c0:c1])
        out.append(Trace(p.lead, x_rel + c0, y, xs, path.astype(float), b - t + 1,
                         float(on_ink.mean()), p))
    return out


def _smooth_through_labels(band: np.ndarray, path: np.ndarray, c0: int,
                           boxes: Sequence[tuple[float, float, float, float]], pool: int,
                           bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The path re-tracked across every label box it passes (see ``_labelpath``).

    ``path`` is the first-order path's row per column of ``band`` (which
    starts at working column ``c0``); ``bounds`` are :func:`run_bounds` of
    ``band``. The pen width is the median vertical run the path holds.
    """
    h, w = band.shape
    cols = np.arange(w)
    on = band[path, cols]
    if not on.any():
        return path
    pen = float(np.median((bounds[1][path, cols] - bounds[0][path, cols] + 1)[on]))
    for left, top, right, bottom in boxes:
        if right - c0 < 0 or left - c0 >= w:
            continue
        new = smoothest_path(band, path, (left - c0, top, right - c0, bottom), pen, pool)
        if new is not None:
            path = np.clip(np.round(new), 0, h - 1).astype(path.dtype)
    return path


def _clip_label_ink(band: np.ndarray, path: np.ndarray, c0: int,
                    boxes: Sequence[tuple[float, float, float, float]], keep: int,
                    bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
    """Copy of ``band`` without the label ink beside a path that passes a label box by.

    In a column of a label box (working px; the band starts at column ``c0``)
    where the path (row per column) lies below the box's top, the box's ink
    more than ``keep`` px above the path is taken for glyphs and cleared,
    unless the ink run from the path rises out of the box (a QRS stroke); a
    path above the box's bottom clears the box's ink more than ``keep`` px below
    it likewise. Glyphs touching the trace would otherwise lengthen its run
    and read as strokes. ``bounds`` are :func:`run_bounds` of ``band``. None
    when no ink is cleared.
    """
    h, w = band.shape
    first, last = bounds
    out = None
    for left, top, right, bottom in boxes:
        j0, j1 = max(0, int(np.floor(left)) - c0), min(w, int(np.ceil(right)) + 1 - c0)
        r0, r1 = max(0, int(np.floor(top))), min(h, int(np.ceil(bottom)) + 1)
        if j1 <= j0 or r1 <= r0:
            continue
        cols = np.arange(j0, j1)
        p = path[j0:j1].astype(np.int64)
        above, below = np.maximum(p - 1, 0), np.minimum(p + 1, h - 1)
        # how far the ink run next to the path reaches up and down: a stroke leaving
        # the box on that side is kept
        reach_up = np.where((p > 0) & band[above, cols], first[above, cols], p)
        reach_down = np.where((p < h - 1) & band[below, cols], last[below, cols], p)
        rows = np.arange(r0, r1)[:, None]
        clear = (((rows < p - keep) & (reach_up >= r0 - keep))
                 | ((rows > p + keep) & (reach_down < r1 + keep))) & band[r0:r1, j0:j1]
        if clear.any():
            if out is None:
                out = band.copy()
            out[r0:r1, j0:j1][clear] = False
    return out


def _evidence(small: np.ndarray, boxes: Sequence[tuple[float, float, float, float]],
              pool: int) -> np.ndarray | None:
    """Ink of the pooled mask as evidence for the path, weaker on labels beside the trace.

    In a column of a label box that also has ink just above or below the box
    (within the box's height: the trace passing by), ink inside the box counts
    LABEL_INK_WEIGHT. Where the box holds the only ink near it, the trace runs
    through the label and its ink keeps full weight. None without boxes.
    """
    if len(boxes) == 0:
        return None
    ev = small.astype(np.float32)
    h, w = ev.shape
    for left, top, right, bottom in boxes:
        c0, c1 = max(0, int(np.floor(left))), min(w, int(np.ceil(right)) + 1)
        r0, r1 = max(0, int(np.floor(top / pool))), min(h, int(np.ceil(bottom / pool)) + 1)
        if c1 <= c0 or r1 <= r0:
            continue
        tall = r1 - r0
        near = (small[max(0, r0 - tall):r0, c0:c1].any(axis=0)
                | small[r1:r1 + tall, c0:c1].any(axis=0))
        box = ev[r0:r1, c0:c1]
        box[:, near] *= LABEL_INK_WEIGHT
    return ev


def _max_pool_rows(mask: np.ndarray, f: int) -> np.ndarray:
    """Max pooling of a boolean mask over ``f`` consecutive rows (padded with False)."""
    if f == 1:
        return mask
    h, w = mask.shape
    hp = -(-h // f) * f
    padded = np.zeros((hp, w), dtype=bool)
    padded[:h] = mask
    return np.asarray(padded.reshape(hp // f, f, w).any(axis=1))


def _viterbi_batch(mask: np.ndarray, jobs: list[_Job], baselines: list[float], pitch: float,
                   cfg: DigitizeConfig, evidence: np.ndarray | None = None
                   ) -> list[np.ndarray]:
    """Lowest-cost path (one row per column) through ``-ink + prior``, all jobs at once.

    ``evidence`` (same shape as ``mask``, default the mask) is the ink that
    rewards the path; moves are priced on ``mask``.

    The move from row ``a`` (column ``x - 1``) to row ``b`` (column ``x``)
    costs ``|M(b) - M(a)|`` with ``M`` the cumulative sum of
    ``jump_cost * (1 - ink) + slope_cost`` down the column (ink of either
    column): an L1 distance in warped coordinates, so the minimum over ``a``
    is two cumulative minima, O(H) per column. Only the costs are kept; the
    path is recovered by re-minimising one state per column on the way back.
    """
    if not jobs:
        return []
    wmax = max(j.c1 - j.c0 for j in jobs)
    hmax = max(j.r1 - j.r0 for j in jobs)
    n = len(jobs)
    ink = np.zeros((wmax, hmax, n), dtype=np.float32)
    reward = ink if evidence is None else np.zeros_like(ink)
    prior = np.full((hmax, n), 1e3, dtype=np.float32)
    for k, j in enumerate(jobs):
        ink[: j.c1 - j.c0, : j.r1 - j.r0, k] = mask[j.r0:j.r1, j.c0:j.c1].T
        if evidence is not None:
            reward[: j.c1 - j.c0, : j.r1 - j.r0, k] = evidence[j.r0:j.r1, j.c0:j.c1].T
        dist = np.abs(np.arange(j.r0, j.r1) - baselines[j.panel]) / max(pitch, 1.0)
        prior[: j.r1 - j.r0, k] = cfg.prior_weight * np.maximum(dist - 0.5, 0.0) ** 2
    either = np.maximum(ink[1:], ink[:-1])
    warp = np.cumsum(cfg.jump_cost * (1.0 - either) + cfg.slope_cost, axis=1, dtype=np.float32)
    costs = np.empty((wmax, hmax, n), dtype=np.float32)
    costs[0] = prior - reward[0]
    for x in range(1, wmax):
        m, cost = warp[x - 1], costs[x - 1]
        down = np.minimum.accumulate(cost - m, axis=0)
        down += m
        up = np.minimum.accumulate((cost + m)[::-1], axis=0)[::-1]
        up -= m
        np.minimum(down, up, out=costs[x])
        costs[x] += prior
        costs[x] -= reward[x]
    # backtrack all jobs at once; a job joins when x reaches its own last column
    widths = np.array([j.c1 - j.c0 for j in jobs])
    ks = np.arange(n)
    cur = np.argmin(costs[widths - 1, :, ks], axis=1)
    out = np.empty((wmax, n), dtype=np.int64)
    out[widths - 1, ks] = cur
    for x in range(wmax - 1, 0, -1):
        m = warp[x - 1]
        prev = np.argmin(costs[x - 1] + np.abs(m[cur, ks] - m), axis=0)
        active = widths - 1 >= x
        out[x - 1, active] = prev[active]
        cur = np.where(active, prev, cur)
    return [out[: j.c1 - j.c0, k] + j.r0 for k, j in enumerate(jobs)]
