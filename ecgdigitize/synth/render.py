"""Render a 12-lead record as a paper ECG sheet with exact ground truth.

:func:`render_sheet` draws the grid, calibration pulses, traces, labels and
text of one sheet, then applies optional :class:`~ecgdigitize.synth.Degradation`.
It returns the image and a :class:`SheetTruth`: every panel's box, baseline
and time window, the pixel polyline of every trace, the scale, and the
:class:`~ecgdigitize.record.ECGRecord` a perfect digitizer would return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigurationError
from ..record import ECGRecord
from ..result import Panel
from .degrade import Degradation, apply_homography, degrade, local_scale
from .draw import composite, grid_mask, ink_mask, text_mask
from .layouts import Cell, layout_cells, layout_grid
from .style import SheetStyle

__all__ = ["RenderedSheet", "SheetTruth", "render_sheet"]

_PRINTED_S = 10.0
_PULSE_FOOT_MM = 1.3
_PULSE_GAP_MM = 2.5


@dataclass(frozen=True, eq=False)
class SheetTruth:
    """Exact geometry and signal of a rendered sheet.

    Attributes
    ----------
    px_per_mm : (float, float)
        Pixels per mm along x and y in the *final* image (after degradation;
        for a warped image, the local scale at the grid centre).
    layout : str
        Layout name ("3x4+1"...).
    speed_mm_per_s, gain_mm_per_mv : float
        Paper speed and amplitude scale.
    panels : tuple of Panel
        Every printed segment, in *undegraded* sheet px.
    traces : mapping of int to (ndarray, ndarray)
        Panel index -> ``(x_px, y_px)`` polyline of its trace (one point per
        sample; NaN where the record is NaN), undegraded sheet px.
    transform : ndarray of shape (3, 3)
        Homography from undegraded sheet px to final image px.
    grid_box_px : (float, float, float, float)
        ``(x0, y0, x1, y1)`` of the grid area, undegraded sheet px.
    reference : ECGRecord
        10 s at the record's fs; each lead holds the record where it is
        printed and NaN elsewhere (time 0 = start of the first column).
    sheet_shape, image_shape : (int, int)
        ``(height, width)`` of the undegraded sheet and of the final image.
    sheet_px_per_mm : float
        Pixels per mm of the undegraded sheet.
    pulses : tuple of (ndarray, ndarray)
        Polyline of each row's calibration pulse (empty if none), sheet px.

    Examples
    --------
    >>> from ecgdigitize.synth import SheetStyle, render_sheet, simulate_record
    >>> truth = render_sheet(simulate_record(seed=1), "6x2", SheetStyle(dpi=100)).truth
    >>> truth.layout, len(truth.panels), truth.reference.signal.shape
    ('6x2', 12, (5000, 12))
    """

    px_per_mm: tuple[float, float]
    layout: str
    speed_mm_per_s: float
    gain_mm_per_mv: float
    panels: tuple[Panel, ...]
    traces: Mapping[int, tuple[np.ndarray, np.ndarray]]
    transform: np.ndarray
    grid_box_px: tuple[float, float, float, float]
    reference: ECGRecord
    sheet_shape: tuple[int, int] = (0, 0)
    image_shape: tuple[int, int] = (0, 0)
    sheet_px_per_mm: float = float("nan")
    pulses: tuple[tuple[np.ndarray, np.ndarray], ...] = field(default_factory=tuple)

    def traces_in_image(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Trace polylines mapped through :attr:`transform` into final image px."""
        out = {}
        for i, (xs, ys) in self.traces.items():
            q = apply_homography(self.transform, np.stack([xs, ys], axis=1))
            out[i] = (q[:, 0], q[:, 1])
        return out

    def to_dict(self, *, include_traces: bool = False) -> dict[str, Any]:
        """JSON-ready summary (px/mm, layout, panels, transform, pulses; traces optional)."""
        d: dict[str, Any] = {
            "layout": self.layout,
            "px_per_mm": list(self.px_per_mm),
            "sheet_px_per_mm": self.sheet_px_per_mm,
            "speed_mm_per_s": self.speed_mm_per_s,
            "gain_mm_per_mv": self.gain_mm_per_mv,
            "sheet_shape": list(self.sheet_shape),
            "image_shape": list(self.image_shape),
            "grid_box_px": list(self.grid_box_px),
            "transform": np.asarray(self.transform).tolist(),
            "fs": self.reference.fs,
            "panels": [{"lead": p.lead, "box_px": list(p.box_px), "t0_s": p.t0_s,
                        "t1_s": p.t1_s, "baseline_y_px": p.baseline_y_px, "row": p.row,
                        "col": p.col, "is_rhythm": p.is_rhythm} for p in self.panels],
            "pulses": [[xs.tolist(), ys.tolist()] for xs, ys in self.pulses],
        }
        if include_traces:
            d["traces"] = {str(i): [np.round(xs, 2).tolist(), np.round(ys, 2).tolist()]
                           for i, (xs, ys) in self.traces.items()}
        return d


@dataclass(frozen=True, eq=False)
class RenderedSheet:
    """A rendered sheet: ``image`` (H, W, 3) uint8 RGB and its ``truth``.

    Attributes
    ----------
    image : ndarray of shape (H, W, 3), uint8
        The sheet as RGB pixels (after any degradation).
    truth : SheetTruth
        Exact geometry and signal of what was drawn.
    style : SheetStyle
        How it was drawn.
    degradation : Degradation
        Defects applied after drawing.

    Examples
    --------
    >>> from ecgdigitize.synth import SheetStyle, render_sheet, simulate_record
    >>> sheet = render_sheet(simulate_record(seed=1), "3x4+1", SheetStyle(dpi=100))
    >>> sheet.image.dtype, sheet.image.shape[2], sheet.truth.layout
    (dtype('uint8'), 3, '3x4+1')
    """

    image: np.ndarray
    truth: SheetTruth
    style: SheetStyle
    degradation: Degradation


@dataclass(frozen=True)
class _Geometry:
    shape: tuple[int, int]
    px_per_mm: float
    grid_box_px: tuple[float, float, float, float]
    x_start_px: float
    row_pitch_px: float


def render_sheet(record: ECGRecord, layout: str = "3x4+1", style: SheetStyle | None = None,
                 degradation: Degradation | None = None, seed: int | None = 0, *,
                 lead_order: Sequence[str] | None = None,
                 rhythm_leads: Sequence[str] | None = None) -> RenderedSheet:
    """Draw ``record`` as a paper ECG sheet and return the image with its truth.

    Parameters
    ----------
    record : ECGRecord
        At least 10 s holding every lead of the layout; only the first 10 s
        are printed.
    layout : str, default "3x4+1"
        "3x4", "3x4+1", "3x4+3", "6x2" or "12x1" (see
        :func:`~ecgdigitize.synth.layouts.layout_cells`).
    style : SheetStyle, optional
        Look of the sheet (default ``SheetStyle()``: red grid, 200 dpi).
    degradation : Degradation, optional
        Defects applied after drawing (default: none).
    seed : int or None, default 0
        Seed of every random choice (degradation only).
    lead_order, rhythm_leads : sequence of str, optional
        Lead placement, see :func:`~ecgdigitize.synth.layouts.layout_cells`.

    Returns
    -------
    RenderedSheet
        ``image`` (H, W, 3) uint8 RGB and ``truth`` (:class:`SheetTruth`).

    Raises
    ------
    ConfigurationError
        If the record is shorter than 10 s or lacks a lead of the layout, or
        the layout is invalid.

    Examples
    --------
    >>> from ecgdigitize.synth import simulate_record
    >>> sheet = render_sheet(simulate_record(seed=1), "3x4+1", SheetStyle(dpi=100))
    >>> sheet.image.shape, len(sheet.truth.panels)
    ((850, 1100, 3), 13)
    """
    style = style or SheetStyle()
    degradation = degradation or Degradation()
    cells = layout_cells(layout, lead_order=lead_order, rhythm_leads=rhythm_leads,
                         duration_s=_PRINTED_S)
    signal = _printed_signal(record, cells)
    n_rows = layout_grid(layout)[0] + layout_grid(layout)[2]
    geo = _geometry(style, n_rows)
    panels, traces = _place(cells, signal, record.fs, style, geo)
    pulses = _pulses(panels, style, geo) if style.calibration_pulse else ()
    image = _draw(style, geo, panels, traces, pulses, layout)
    reference = _reference(record, cells, signal)
    rng = np.random.default_rng(seed)
    transform = np.eye(3)
    if not degradation.is_identity:
        image, transform = degrade(image, degradation, rng)
    box = geo.grid_box_px
    sx, sy = local_scale(transform, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
    truth = SheetTruth(
        px_per_mm=(geo.px_per_mm * sx, geo.px_per_mm * sy), layout=layout,
        speed_mm_per_s=style.speed_mm_per_s, gain_mm_per_mv=style.gain_mm_per_mv,
        panels=panels, traces=traces, transform=transform, grid_box_px=box,
        reference=reference, sheet_shape=geo.shape, image_shape=image.shape[:2],
        sheet_px_per_mm=geo.px_per_mm, pulses=pulses)
    return RenderedSheet(image=image, truth=truth, style=style, degradation=degradation)


def _printed_signal(record: ECGRecord, cells: Sequence[Cell]) -> dict[str, np.ndarray]:
    n = round(_PRINTED_S * record.fs)
    if record.n_samples < n:
        raise ConfigurationError(
            f"record {record.name!r} lasts {record.duration_s:g} s; a sheet needs 10 s")
    missing = sorted({c.lead for c in cells} - set(record.lead_names))
    if missing:
        raise ConfigurationError(f"record {record.name!r} lacks lead(s) {missing}")
    return {c.lead: record.lead(c.lead)[:n] for c in cells}


def _geometry(style: SheetStyle, n_rows: int) -> _Geometry:
    ppm = style.px_per_mm
    ml, mt, mr, mb = style.margins_mm
    content_mm = style.lead_in_mm + _PRINTED_S * style.speed_mm_per_s
    page_w = max(style.page_mm[0], ml + content_mm + 5.0 + mr)  # widen for 50 mm/s
    grid_w = page_w - ml - mr
    grid_h = style.page_mm[1] - mt - mb
    pitch = grid_h / n_rows
    if style.row_pitch_mm is not None:
        pitch = min(pitch, style.row_pitch_mm)
    shape = (round(style.page_mm[1] * ppm), round(page_w * ppm))
    box = (ml * ppm, mt * ppm, (ml + grid_w) * ppm, (mt + grid_h) * ppm)
    return _Geometry(shape, ppm, box, (ml + style.lead_in_mm) * ppm, pitch * ppm)


def _place(cells: Sequence[Cell], signal: Mapping[str, np.ndarray], fs: float, style: SheetStyle,
           geo: _Geometry) -> tuple[tuple[Panel, ...], dict[int, tuple[np.ndarray, np.ndarray]]]:
    px_per_s = style.speed_mm_per_s * geo.px_per_mm
    px_per_mv = style.gain_mm_per_mv * geo.px_per_mm
    panels, traces = [], {}
    top = geo.grid_box_px[1]
    for k, c in enumerate(cells):
        x0 = geo.x_start_px + c.t0_s * px_per_s
        x1 = geo.x_start_px + c.t1_s * px_per_s
        y0 = top + c.row * geo.row_pitch_px
        base = y0 + style.baseline_frac * geo.row_pitch_px
        panels.append(Panel(c.lead, (x0, y0, x1, y0 + geo.row_pitch_px), c.t0_s, c.t1_s,
                            base, c.row, c.col, c.is_rhythm))
        i0, i1 = int(np.ceil(c.t0_s * fs - 1e-9)), int(np.ceil(c.t1_s * fs - 1e-9))
        v = signal[c.lead][i0:i1]
        idx = np.arange(i0, i0 + len(v))
        traces[k] = (x0 + (idx / fs - c.t0_s) * px_per_s, base - v * px_per_mv)
    return tuple(panels), traces


def _pulses(panels: Sequence[Panel], style: SheetStyle,
            geo: _Geometry) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    ppm = geo.px_per_mm
    top_w = style.pulse_width_s * style.speed_mm_per_s * ppm
    foot, gap = _PULSE_FOOT_MM * ppm, _PULSE_GAP_MM * ppm
    h = style.gain_mm_per_mv * ppm
    xd = geo.x_start_px - gap
    xc, xb = xd - foot, xd - foot - top_w
    xa = xb - foot
    out = []
    for base in sorted({p.baseline_y_px for p in panels if p.col == 0}):
        xs = np.array([xa, xb, xb, xc, xc, xd])
        ys = np.array([base, base, base - h, base - h, base, base])
        out.append((xs, ys))
    return tuple(out)


def _reference(record: ECGRecord, cells: Sequence[Cell],
               signal: Mapping[str, np.ndarray]) -> ECGRecord:
    n = round(_PRINTED_S * record.fs)
    out = np.full((n, record.n_leads), np.nan)
    for c in cells:
        i0, i1 = int(np.ceil(c.t0_s * record.fs - 1e-9)), int(np.ceil(c.t1_s * record.fs - 1e-9))
        col = record.lead_names.index(c.lead)
        out[i0:i1, col] = signal[c.lead][i0:i1]
    info = {c.lead: {"t0_s": c.t0_s, "t1_s": c.t1_s} for c in cells if not c.is_rhythm}
    info.update({c.lead: {"t0_s": c.t0_s, "t1_s": c.t1_s} for c in cells if c.is_rhythm})
    return ECGRecord(out, record.fs, record.lead_names, name=record.name, lead_info=info,
                     comments=record.comments)


def _draw(style: SheetStyle, geo: _Geometry, panels: Sequence[Panel],
          traces: Mapping[int, tuple[np.ndarray, np.ndarray]],
          pulses: Sequence[tuple[np.ndarray, np.ndarray]], layout: str) -> np.ndarray:
    paper = np.empty((3, *geo.shape), dtype=np.float32)  # planar: contiguous channels
    paper[...] = np.asarray(style.background, dtype=np.float32)[:, None, None]
    grid_rgb = style.grid_rgb
    if grid_rgb is not None:
        mask = grid_mask(geo.shape, geo.grid_box_px, geo.px_per_mm,
                         pattern=style.grid_pattern, minor_px=style.minor_line_px,
                         major_px=style.major_line_px, minor_alpha=style.minor_alpha,
                         frame_px=style.frame_px if style.grid_frame else 0.0,
                         dot_spacing_mm=style.dot_spacing_mm)
        composite(paper, mask, grid_rgb)
    items, lines = _annotations(style, geo, panels, layout)
    composite(paper, text_mask(geo.shape, items, family=style.font, lines=lines),
              style.text_colour)
    ink = ink_mask(geo.shape, [*traces.values(), *pulses], style.trace_px,
                   supersample=style.supersample)
    composite(paper, ink, style.trace_colour)
    np.rint(paper, out=paper)
    np.clip(paper, 0, 255, out=paper)
    planes = paper.astype(np.uint8)
    return cv2.merge([planes[0], planes[1], planes[2]])


def _annotations(style: SheetStyle, geo: _Geometry, panels: Sequence[Panel], layout: str,
                 ) -> tuple[list[tuple[str, float, float, float, str]],
                            list[tuple[float, float, float, float, float]]]:
    ppm = geo.px_per_mm
    items: list[tuple[str, float, float, float, str]] = []
    lines: list[tuple[float, float, float, float, float]] = []
    if style.lead_labels:
        size = style.label_size_mm * ppm
        items += [(p.lead, p.box_px[0] + 0.6 * ppm, p.baseline_y_px - 0.8 * ppm, size, "ls")
                  for p in panels]
    grid_cells = [p for p in panels if not p.is_rhythm]
    edges = sorted({p.box_px[0] for p in grid_cells if p.col > 0})
    width = max(1.0, 0.3 * ppm)
    if style.separators == "tick":
        for p in grid_cells:
            if p.col > 0:
                x = p.box_px[0]
                lines.append((x, p.baseline_y_px - 3 * ppm, x, p.baseline_y_px + 3 * ppm, width))
    elif style.separators == "full" and grid_cells:
        top = min(p.baseline_y_px for p in grid_cells) - 5.5 * ppm
        bottom = max(p.baseline_y_px for p in grid_cells) + 4.5 * ppm
        lines += [(x, top, x, bottom, width) for x in edges]
    x0, _y0, x1, y1 = geo.grid_box_px
    header = style.header_text.split("\n") if style.header_text else []
    if header:
        items.append((header[0], (x0 + x1) / 2, 4.0 * ppm, 4.5 * ppm, "mt"))
        items += [(t, x0, (9.4 + 4.2 * k) * ppm, 3.2 * ppm, "lt") for k, t in enumerate(header[1:])]
        rule_y = (9.4 + 4.2 * len(header[1:]) + 0.8) * ppm
        lines += [(x0, rule_y, x1, rule_y, 0.4 * ppm),
                  (x0, rule_y + 0.8 * ppm, x1, rule_y + 0.8 * ppm, 0.4 * ppm)]
    footer = style.footer_text
    if footer is None:
        footer = f"{style.speed_mm_per_s:g}mm/s  {style.gain_mm_per_mv:g}mm/mV  {layout}"
    items.append((footer, x0, y1 + 2.2 * ppm, 2.8 * ppm, "lt"))
    items.append((style.footer_right_text, x1 - 15 * ppm, y1 + 2.2 * ppm, 2.8 * ppm, "rt"))
    return items, lines
