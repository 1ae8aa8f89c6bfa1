"""The digitization pipeline: :func:`digitize` chains the stages.

load → grid → geometry → layout → traces → calibrate → clean → output. Each
stage is a pure function of its own module; this module only strings them
together, times them (``stage_times_s``) and collects warnings. A lead that
cannot be recovered is NaN with quality 0 and a warning, never a made-up
trace.

:func:`digitize_panels` runs the second half (traces → output) on a working
image whose panels and scale are already known (hand-drawn boxes, another
layout detector, a synthetic sheet's truth).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .calibrate import assemble_signal, match_rhythm_leads, snap_gain, trace_to_samples
from .clean import notch_powerline, remove_baseline_wander
from .config import FITTED_SMOOTH_PX, SMOOTH_PX, DigitizeConfig
from .errors import ConfigurationError, LayoutNotFoundError, NoGridFoundError, NoTracesFoundError
from .fusion import LIMB_LEADS, fuse_limb_leads
from .io import ImageSource, load_image
from .record import STANDARD_LEADS
from .result import Calibration, DigitizedECG, Panel
from .traces import (
    INK_CONTRAST,
    Trace,
    TraceSet,
    _fits_ink,
    drop_labels_and_boxes,
    extend_to_edges,
    extract_traces,
    fit_traces_to_ink,
    ink_darkness,
    ink_level,
    ink_mask,
)

if TYPE_CHECKING:  # pragma: no cover
    from .geometry import Rectified
    from .grid import GridSpec
    from .layout import Layout

__all__ = ["DigitizationWarning", "digitize", "digitize_panels"]

#: How much a scale source is trusted: a periodic grid, then the pulses, then the page size.
_SOURCE_RANK = {"grid": 2, "pulse": 1, "page": 0}

#: Finer working images are shrunk to about this scale before tracing, px/mm.
TRACE_PX_PER_MM = 10.0
#: Columns skipped at the start and end of a panel that borders another one,
#: mm (separator ticks and the end of the neighbour's stroke sit there). What
#: is skipped is held at the first (last) value read, which costs most when a
#: QRS falls on the column boundary: on the 51 renders 0.3 mm gave 21.46 dB
#: mean SNR clean, 0.2 mm 21.80, 0.12 mm 21.95, 0.06 mm 21.14 and 0 mm 19.80.
#: Where the ink shows the way unambiguously, the trace is then carried on to
#: the edge (:func:`~ecgdigitize.traces.extend_to_edges`).
EDGE_SKIP_MM = 0.12
#: When a third or more of the leads are lost at the usual ink contrast
#: (:data:`~ecgdigitize.traces.INK_CONTRAST` of the darkest ink), they are traced again
#: down to this contrast (a light or worn pen whose grey strokes are far lighter than the
#: labels and pulses), but never below
#: :data:`_GRID_MARGIN` times the darkness of the grid or other faint marks.
LIGHT_PEN_CONTRAST = 0.45
#: ... or when the median lead has ink under less than this fraction of its columns (a
#: fine pen whose thin QRS strokes are lighter than its flat stretches).
PATCHY_QUALITY = 0.9
_GRID_MARGIN = 1.25


class DigitizationWarning(UserWarning):
    """A lead was not recovered, or a scale came from a fallback."""


@dataclass
class _Clock:
    """Wall time per stage, s."""

    times: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - start


def digitize(image: ImageSource, *, fs: float | None = None,
             config: DigitizeConfig | None = None, name: str | None = None) -> DigitizedECG:
    """Digitize a 12-lead ECG sheet image into calibrated signals.

    Parameters
    ----------
    image : path-like, bytes, PIL.Image.Image or ndarray
        The sheet: a scan, photo or rendering (see :func:`ecgdigitize.load_image`).
    fs : float, optional
        Output sampling rate, Hz; overrides ``config.fs`` (default 500).
    config : DigitizeConfig, optional
        Every other parameter (paper speed, gain, layout, cleaning...).
    name : str, optional
        Record name (default: the file stem, or ``"ecg"``).

    Returns
    -------
    DigitizedECG
        Signal of shape ``(round(duration_s * fs), 12)`` in mV (NaN where a
        lead is not printed or not recovered), plus layout, calibration,
        panels, per-lead quality, per-stage times and warnings.

    Raises
    ------
    InputError
        Unreadable, too large or too small input.
    NoGridFoundError
        No scale could be found (no grid, pulse or page size).
    LayoutNotFoundError
        No arrangement of lead panels was found.
    NoTracesFoundError
        No ECG trace on the sheet (blank page) or no lead recovered.

    Examples
    --------
    >>> from ecgdigitize.synth import render_sheet, simulate_record, SheetStyle
    >>> sheet = render_sheet(simulate_record(seed=1), "3x4+1", SheetStyle(dpi=100))
    >>> result = digitize(sheet.image)                      # doctest: +SKIP
    >>> result.layout, result.signal.shape                  # doctest: +SKIP
    ('3x4+1', (5000, 12))
    """
    from .geometry import (
        detect_page_orientation,
        find_background,
        find_page_quad,
        paint_background,
        rectify,
        resample_sharp,
    )
    from .grid import detect_grid, grid_mask
    from .lattice import refine_by_lattice

    cfg = _config(config, fs)
    clock = _Clock()
    with clock.stage("load"):
        rgb = load_image(image, max_pixels=cfg.max_pixels)
    with clock.stage("grid"):
        grid = detect_grid(rgb, config=cfg)
    with clock.stage("geometry"):
        orientation = (cfg.orientation if cfg.orientation is not None
                       else detect_page_orientation(rgb, grid))  # the grid's skew, if sure
        quad = find_page_quad(rgb)
        # a photo of part of a page shows the table around it, which is no ink: found on
        # the input, painted out of the working image once the grid has been fitted
        background = find_background(rgb) if quad is None else None
        rect = rectify(rgb, quad=quad, orientation=orientation, grid=grid)
    # measure again on the page once it is unwarped or turned
    if quad is not None or orientation % 180:
        with clock.stage("grid"):
            try:
                regrid: GridSpec | None = detect_grid(rect.image, config=cfg)
            except NoGridFoundError:
                regrid = None
        # a faint grid found on the input can be lost in the resampled page: carry the
        # better scale through the transform rather than fall back to a worse source
        if regrid is not None and (_SOURCE_RANK.get(regrid.source, 0)
                                   >= _SOURCE_RANK.get(grid.source, 0)):
            grid = regrid
        else:
            grid = _carried_grid(grid, rect.transform, rect.image.shape)
    lattice, unwarped = None, False
    weight = None
    if grid.source == "grid":  # weighed once for the lattice fit and the layout's grid box
        with clock.stage("geometry"):
            weight = grid_mask(rect.image)
    if cfg.lattice_min_mm is not None:
        with clock.stage("geometry"):
            flat, hom, lattice = refine_by_lattice(rect.image, grid, grid_weight=weight,
                                                   min_deviation_mm=cfg.lattice_min_mm)
        if flat is not rect.image:
            rect = replace(rect, image=flat, transform=hom @ rect.transform)
            grid = replace(grid, rotation_deg=0.0)
            unwarped, weight = True, None
    table = None
    if background is not None:
        with clock.stage("geometry"):
            table = _to_working(background, rect)
            rect = replace(rect, image=paint_background(rect.image, table))
    with clock.stage("layout"):
        layout = _find_layout(rect.image, grid, cfg, weight)
    calibration = _calibration(grid, layout, cfg)
    trace_image = rect.image
    linear = np.asarray(rect.transform)[:2, :2]
    if quad is None and not unwarped and not np.allclose(linear, np.round(linear)):
        with clock.stage("geometry"):  # a deskewed scan: the traces read a sharper copy
            trace_image = paint_background(resample_sharp(rgb, rect), table)
    result = _trace_and_calibrate(trace_image, layout.panels, calibration, cfg,
                                  layout.name, name or _stem(image), clock)
    notes = list(result.warnings)
    if grid.source != "grid":
        notes.append(f"scale from the {grid.source}, not from a grid")
    _warn(notes)
    return replace(result, rotation_deg=float(rect.rotation_deg), transform=rect.transform,
                   warnings=tuple(notes), source=_source(image),
                   extras={**result.extras, "grid": grid, "orientation_deg": rect.orientation,
                           "layout_confidence": float(layout.confidence),
                           "lattice": lattice})


def digitize_panels(image: ImageSource, panels: Sequence[Panel], calibration: Calibration, *,
                    config: DigitizeConfig | None = None, layout_name: str = "unknown",
                    name: str = "ecg") -> DigitizedECG:
    """Digitize a working image whose panels and scale are known.

    Parameters
    ----------
    image : path-like, bytes, PIL.Image.Image or ndarray
        Working image (upright; panel coordinates refer to it).
    panels : sequence of Panel
        Lead segments: box (x-range traced), baseline (0 mV row), time window.
    calibration : Calibration
        Scale: px/mm in x and y, paper speed, gain.
    config : DigitizeConfig, optional
        Sampling rate, tracking and cleaning parameters.
    layout_name : str, default "unknown"
        Stored in the result.
    name : str, default "ecg"
        Record name.

    Returns
    -------
    DigitizedECG
        As :func:`digitize`, with an identity transform.

    Raises
    ------
    NoTracesFoundError
        Blank image, no panels, or no lead recovered.

    Examples
    --------
    >>> from ecgdigitize.synth import render_sheet, simulate_record, SheetStyle
    >>> sheet = render_sheet(simulate_record(seed=1), "3x4+1", SheetStyle(dpi=100))
    >>> t = sheet.truth
    >>> cal = Calibration(*t.px_per_mm, t.speed_mm_per_s, t.gain_mm_per_mv)
    >>> res = digitize_panels(sheet.image, t.panels, cal)
    >>> res.signal.shape, min(res.quality.values()) > 0.9
    ((5000, 12), True)
    """
    cfg = _config(config, None)
    result = _trace_and_calibrate(load_image(image, max_pixels=cfg.max_pixels), panels,
                                  calibration, cfg, layout_name, name, _Clock())
    _warn(result.warnings)
    return result


def _to_working(mask: np.ndarray, rect: Rectified) -> np.ndarray:
    """An input-pixel mask carried into the working image of ``rect`` (nearest pixel)."""
    h, w = rect.image.shape[:2]
    moved = cv2.warpPerspective(mask.astype(np.uint8), np.asarray(rect.transform, dtype=float),
                                (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=0)
    return moved.astype(bool)


def _carried_grid(grid: GridSpec, transform: np.ndarray, shape: tuple[int, ...]) -> GridSpec:
    """The input's grid scale seen at the centre of the working image (``transform``: input
    px to working px); the skew is taken as removed."""
    inv = np.linalg.inv(transform)
    cx, cy = shape[1] / 2.0, shape[0] / 2.0
    pts = np.array([[cx, cy, 1.0], [cx + 1.0, cy, 1.0], [cx, cy + 1.0, 1.0]]) @ inv.T
    pts = pts[:, :2] / pts[:, 2:]
    mm = [float(np.hypot((p[0] - pts[0][0]) / grid.px_per_mm_x, (p[1] - pts[0][1]) / grid.px_per_mm_y))
          for p in pts[1:]]
    return replace(grid, px_per_mm_x=1.0 / mm[0], px_per_mm_y=1.0 / mm[1], rotation_deg=0.0)


def _warn(notes: Sequence[str]) -> None:
    for note in notes:
        warnings.warn(note, DigitizationWarning, stacklevel=3)


def _trace_and_calibrate(rgb: np.ndarray, panels: Sequence[Panel], calibration: Calibration,
                         cfg: DigitizeConfig, layout_name: str, name: str,
                         clock: _Clock) -> DigitizedECG:
    """Traces -> calibrate -> clean on a working image; notes in ``warnings``, not emitted."""
    if len(panels) == 0:
        raise NoTracesFoundError("no lead panels to trace")
    with clock.stage("traces"):
        traces = _trace(rgb, panels, calibration, cfg)
    with clock.stage("calibrate"):
        checked, relabelled = match_rhythm_leads(traces.traces, calibration, fs=cfg.fs)
        panels = [t.panel for t in checked]
        smooth = _smooth_px(cfg, traces.fitted)
        signal, quality = assemble_signal(checked, calibration, fs=cfg.fs,
                                          duration_s=cfg.duration_s, max_gap_s=cfg.max_gap_s,
                                          min_quality=cfg.min_quality, smooth_px=smooth)
        if cfg.fuse_limb_leads:
            signal = _fuse_limb_leads(signal, checked, calibration, cfg, smooth)
    notes = relabelled + _lead_warnings(quality, panels, cfg.min_quality)
    if not any(q >= cfg.min_quality for q in quality.values()):
        raise NoTracesFoundError("no ECG lead could be recovered from the sheet")
    with clock.stage("clean"):
        signal = _clean(signal, cfg)
    return DigitizedECG(
        signal=signal, fs=cfg.fs, lead_names=STANDARD_LEADS, name=name,
        lead_info=_lead_info(panels, quality), layout=layout_name, calibration=calibration,
        working_shape=(int(rgb.shape[0]), int(rgb.shape[1])), panels=tuple(panels),
        quality={k: round(v, 4) for k, v in quality.items()},
        stage_times_s={k: round(v, 4) for k, v in clock.times.items()}, warnings=tuple(notes),
        extras={"line_width_px": traces.line_width_px,
                "traces": TraceSet(tuple(checked), traces.line_width_px, traces.fitted)})


def _trace(rgb: np.ndarray, panels: Sequence[Panel], calibration: Calibration,
           cfg: DigitizeConfig) -> TraceSet:
    """Ink mask and traces, on a copy shrunk to about TRACE_PX_PER_MM when finer.

    The traces come back in the coordinates of ``rgb`` (pixel centres: a
    shrunk pixel ``j`` covers ``[j f - 0.5, (j + 1) f - 0.5]``).
    """
    ppm = float(np.sqrt(calibration.px_per_mm_x * calibration.px_per_mm_y))
    f = ppm / TRACE_PX_PER_MM if ppm > 1.4 * TRACE_PX_PER_MM else 1.0
    small, work = rgb, list(panels)
    if f > 1.0:
        size = (max(1, round(rgb.shape[1] / f)), max(1, round(rgb.shape[0] / f)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        work = [replace(p, box_px=_scaled_box(p.box_px, 1.0 / f),
                        baseline_y_px=(p.baseline_y_px + 0.5) / f - 0.5) for p in panels]
    darkness = ink_darkness(small, px_per_mm=ppm / f)
    skip = EDGE_SKIP_MM * calibration.px_per_mm_x / f
    x_ranges = [_x_range(p, work, skip) for p in work]

    # the fit to the ink runs once, on the pass kept (it does not change the qualities)
    read_cfg = cfg.replace(fit_ink=False)

    def trace_at(contrast: float) -> TraceSet:
        mask = ink_mask(small, px_per_mm=ppm / f, darkness=darkness, contrast=contrast)
        boxes: list[tuple[float, float, float, float]] = []
        if cfg.drop_labels:
            mask, boxes = drop_labels_and_boxes(mask, work, px_per_mm=ppm / f)
        return extract_traces(mask, work, config=read_cfg, darkness=darkness,
                              x_ranges_px=x_ranges, label_boxes_px=boxes)

    traces = trace_at(INK_CONTRAST)
    kept = sum(t.quality >= cfg.min_quality for t in traces)
    patchy = float(np.median([t.quality for t in traces])) < PATCHY_QUALITY
    if 3 * (len(traces) - kept) >= len(traces) or patchy:
        lighter = _light_pen_contrast(darkness)
        if lighter < INK_CONTRAST:
            retry = trace_at(lighter)
            if (sum(t.quality >= cfg.min_quality for t in retry) > kept
                    or (patchy and float(np.mean([t.quality for t in retry]))
                        > float(np.mean([t.quality for t in traces])) + 0.02)):
                traces = retry
    level = ink_level(darkness)
    if _fits_ink(cfg):
        traces = fit_traces_to_ink(traces, darkness, level=level)
    # the columns skipped at a shared edge: followed along the ink where that is unambiguous
    edges = [(p.box_px[0] if lo > p.box_px[0] else np.nan,
              p.box_px[2] if hi < p.box_px[2] else np.nan) for p, (lo, hi) in zip(work, x_ranges,
                                                                                strict=True)]
    traces = extend_to_edges(traces, darkness, edges, level=level)
    if f == 1.0:
        return traces

    def back(v: np.ndarray) -> np.ndarray:
        return (v + 0.5) * f - 0.5

    return TraceSet(tuple(replace(t, x_px=back(t.x_px), y_px=back(t.y_px),
                                  column_x_px=back(t.column_x_px), path_px=back(t.path_px),
                                  width_px=t.width_px * f, panel=p)
                          for t, p in zip(traces, panels, strict=True)),
                    traces.line_width_px * f, fitted=traces.fitted)


def _fuse_limb_leads(signal: np.ndarray, traces: Sequence[Trace], calibration: Calibration,
                     cfg: DigitizeConfig, smooth_px: float) -> np.ndarray:
    """``signal`` with its limb leads replaced by the fit of every panel's reading of them
    (:func:`ecgdigitize.fusion.fuse_limb_leads`), where a lead was read at all."""
    n = signal.shape[0]
    views = []
    for tr in traces:
        if tr.lead not in LIMB_LEADS or tr.quality < cfg.min_quality:
            continue
        idx, mv = trace_to_samples(tr, calibration, cfg.fs, max_gap_s=cfg.max_gap_s,
                                   smooth_px=smooth_px)
        keep = (idx >= 0) & (idx < n)
        view = np.full(n, np.nan)
        view[idx[keep]] = mv[keep]
        views.append((tr.lead, view))
    out = signal.copy()
    for lead, fused in fuse_limb_leads(views, fs=cfg.fs).items():
        j = STANDARD_LEADS.index(lead)
        out[:, j] = np.where(np.isfinite(out[:, j]) & np.isfinite(fused), fused, out[:, j])
    return out


def _smooth_px(cfg: DigitizeConfig, fitted: bool) -> float:
    """The reconstruction low-pass, px: ``cfg.smooth_px``, or by default
    :data:`FITTED_SMOOTH_PX` for traces fitted to the ink and :data:`SMOOTH_PX` else."""
    if cfg.smooth_px is not None:
        return cfg.smooth_px
    return FITTED_SMOOTH_PX if fitted else SMOOTH_PX


def _light_pen_contrast(darkness: np.ndarray) -> float:
    """Lowest ink contrast that stays clear of the grid: :data:`LIGHT_PEN_CONTRAST`, or
    :data:`_GRID_MARGIN` x the 80th percentile darkness of the non-paper pixels (mostly
    grid lines and dots on a gridded sheet), over the darkest ink."""
    top = float(ink_level(darkness))
    sample = darkness[::2, ::2]
    marks = sample[sample > 16]
    if top <= 0 or marks.size == 0:
        return 1.0
    floor = _GRID_MARGIN * float(np.percentile(marks, 80))
    return max(LIGHT_PEN_CONTRAST, floor / top)


def _scaled_box(box: tuple[float, float, float, float], s: float
                ) -> tuple[float, float, float, float]:
    """Box in an image resized by ``s`` (pixel centres at integers)."""
    x0, y0, x1, y1 = ((v + 0.5) * s - 0.5 for v in box)
    return (x0, y0, x1, y1)


def _config(config: DigitizeConfig | None, fs: float | None) -> DigitizeConfig:
    cfg = config or DigitizeConfig()
    if config is not None and not isinstance(config, DigitizeConfig):
        raise ConfigurationError(f"config must be a DigitizeConfig; got {type(config).__name__}")
    return cfg if fs is None else cfg.replace(fs=fs)


def _find_layout(image: np.ndarray, grid: GridSpec, cfg: DigitizeConfig,
                 grid_weight: np.ndarray | None = None) -> Layout:
    """Layout; with an unknown gain, pulses of 10, 20 and 5 mm are looked for.

    The gain whose pulses are found in the most rows wins (ties in that
    order); the search stops at the first gain with a pulse in every row. A
    lone pulse-like box (a square wave, a boxed label) does not outvote the
    pulses printed at the start of each row.
    """
    from .layout import find_layout

    gains = (cfg.gain_mm_per_mv,) if cfg.gain_mm_per_mv else (10.0, 20.0, 5.0)
    best, error = None, None
    for gain in gains:
        try:
            found = find_layout(image, grid, speed_mm_per_s=cfg.speed_mm_per_s,
                                gain_mm_per_mv=gain, layout=cfg.layout,
                                grid_weight=grid_weight)
        except LayoutNotFoundError as exc:  # false pulses of this size can mislead the rows
            error = error or exc
            continue
        if best is None or len(found.pulses) > len(best.pulses):
            best = found
        if found.pulses and len(found.pulses) >= len(found.row_baselines_px):
            break
    if best is None:
        assert error is not None
        raise error
    return best


def _calibration(grid: GridSpec, layout: Layout, cfg: DigitizeConfig) -> Calibration:
    """Scale from the grid (without one, x from the printed row length); gain from the
    config, else the pulses, else 10 mm/mV; speed from the config, else the layout's."""
    gain = cfg.gain_mm_per_mv
    if gain is None and layout.pulses:
        height = float(np.median([p.height_px for p in layout.pulses]))
        gain = snap_gain(height, grid.px_per_mm_y)
    speed = cfg.speed_mm_per_s or layout.speed_mm_per_s
    ppm_x, ppm_y = grid.px_per_mm_x, grid.px_per_mm_y
    if grid.source != "grid" and layout.px_per_s > 0:
        # no grid: the time axis comes from the printed row, which the layout measured
        ppm_x = layout.px_per_s / speed
        if grid.source == "page":  # nor a pulse: the paper is taken as square
            ppm_y = ppm_x * grid.px_per_mm_y / grid.px_per_mm_x
    return Calibration(ppm_x, ppm_y, speed, gain or 10.0,
                       "pulse" if grid.source == "pulse" else grid.source)


def _x_range(panel: Panel, panels: Sequence[Panel], skip_px: float) -> tuple[float, float]:
    """Panel x-range, minus ``skip_px`` where another panel of the row abuts it."""
    x0, _, x1, _ = panel.box_px
    same_row = [q for q in panels if q.row == panel.row and q is not panel]
    left = any(abs(q.box_px[2] - x0) < 2 * skip_px + 1 for q in same_row)
    right = any(abs(q.box_px[0] - x1) < 2 * skip_px + 1 for q in same_row)
    return (x0 + skip_px if left else x0, x1 - skip_px if right else x1)


def _lead_warnings(quality: dict[str, float], panels: Sequence[Panel],
                   min_quality: float) -> list[str]:
    printed = {p.lead for p in panels}
    notes = [f"lead {lead} not found on the sheet" for lead in STANDARD_LEADS
             if lead not in printed]
    notes += [f"lead {lead} not recovered (quality {q:.2f} < {min_quality:g}); left NaN"
              for lead, q in quality.items() if lead in printed and q < min_quality]
    return notes


def _lead_info(panels: Sequence[Panel], quality: dict[str, float]) -> dict[str, dict]:
    info: dict[str, dict] = {}
    for p in sorted(panels, key=lambda q: q.is_rhythm):
        info[p.lead] = {"t0_s": p.t0_s, "t1_s": p.t1_s, "rhythm": p.is_rhythm,
                        "quality": round(quality.get(p.lead, 0.0), 4)}
    return info


def _clean(signal: np.ndarray, cfg: DigitizeConfig) -> np.ndarray:
    if cfg.remove_baseline:
        signal = remove_baseline_wander(signal, cfg.fs, cfg.baseline_cutoff_hz)
    if cfg.notch_hz is not None:
        signal = notch_powerline(signal, cfg.fs, cfg.notch_hz)
    return signal


def _stem(image: ImageSource) -> str:
    if isinstance(image, str | os.PathLike):
        return os.path.splitext(os.path.basename(os.fspath(image)))[0] or "ecg"
    return "ecg"


def _source(image: ImageSource) -> str | None:
    return os.fspath(image) if isinstance(image, str | os.PathLike) else None
