"""Tests of ecgdigitize.calibrate: px -> mV and s, resampling, assembly, rhythm check."""

from __future__ import annotations

import numpy as np
import pytest

from ecgdigitize.calibrate import (
    assemble_signal,
    match_rhythm_leads,
    snap_gain,
    snap_speed,
    trace_to_samples,
)
from ecgdigitize.errors import ConfigurationError
from ecgdigitize.result import Calibration, Panel
from ecgdigitize.traces import Trace

CAL = Calibration(px_per_mm_x=8.0, px_per_mm_y=8.0, speed_mm_per_s=25.0, gain_mm_per_mv=10.0)
FS = 500.0


def make_trace(lead: str, t0: float, t1: float, mv: np.ndarray | None = None, *,
               base: float = 400.0, x0: float = 100.0, quality: float = 1.0,
               rhythm: bool = False, func=None) -> Trace:
    """A trace drawn exactly from ``func(t)`` (mV) over [t0, t1), one point per px column."""
    width = (t1 - t0) * CAL.px_per_s
    panel = Panel(lead, (x0, base - 100, x0 + width, base + 100), t0, t1, base, 0, 0, rhythm)
    xs = np.arange(np.ceil(x0), np.floor(x0 + width) + 1)
    t = t0 + (xs - x0) / CAL.px_per_s
    values = func(t) if func is not None else np.zeros_like(t)
    ys = base - values * CAL.px_per_mv
    return Trace(lead, xs, ys, xs, ys.copy(), np.full(xs.size, 3.0), quality, panel)


def sine(t: np.ndarray) -> np.ndarray:
    return 0.8 * np.sin(2 * np.pi * 1.3 * t)


def test_snap_gain_and_speed() -> None:
    assert snap_gain(80.0, 8.0) == 10.0
    assert snap_gain(40.0, 8.0) == 5.0
    assert snap_gain(160.0, 8.0) == 20.0
    assert snap_gain(60.0, 8.0) is None
    assert snap_gain(0.0, 8.0) is None
    assert snap_speed(2000.0, 8.0) == 25.0
    assert snap_speed(4000.0, 8.0) == 50.0
    assert snap_speed(3000.0, 8.0) is None


def test_samples_cover_the_window_and_match_the_drawn_signal() -> None:
    tr = make_trace("II", 2.5, 5.0, func=sine)
    idx, mv = trace_to_samples(tr, CAL, FS)
    assert idx[0] == 1250 and idx[-1] == 2499 and idx.size == 1250
    truth = sine(idx / FS)
    assert np.nanmax(np.abs(mv - truth)) < 0.01
    assert np.isfinite(mv).all()


def test_reconstruction_low_pass_removes_jitter_and_keeps_the_signal() -> None:
    # on steep strokes the points read from the ink come closer than a sample apart and
    # zig-zag by a fraction of a pixel: resampled to fs, that is sample-to-sample jitter
    tr = make_trace("II", 0.0, 2.5, func=lambda t: 0.8 * np.sin(2 * np.pi * 10 * t))
    xs = np.arange(tr.x_px[0], tr.x_px[-1], 0.4)            # 0.4 px: one point per sample
    t = (xs - tr.panel.box_px[0]) / CAL.px_per_s
    ys = tr.panel.baseline_y_px - 0.8 * np.sin(2 * np.pi * 10 * t) * CAL.px_per_mv
    ys += np.where(np.arange(xs.size) % 2, 0.5, -0.5)         # +-0.5 px zig-zag
    noisy = Trace(tr.lead, xs, ys, tr.column_x_px, tr.path_px, tr.width_px, tr.quality,
                  tr.panel)
    idx, raw = trace_to_samples(noisy, CAL, FS, smooth_px=0.0)
    _, smooth = trace_to_samples(noisy, CAL, FS)
    truth = 0.8 * np.sin(2 * np.pi * 10 * idx / FS)
    inner = slice(10, -10)
    assert np.std((smooth - truth)[inner]) < 0.5 * np.std((raw - truth)[inner])
    # a clean 10 Hz wave loses under 1 % of its amplitude
    _, clean = trace_to_samples(tr, CAL, FS)
    _, unsmoothed = trace_to_samples(tr, CAL, FS, smooth_px=0.0)
    ratio = np.nanmax(np.abs(clean[50:-50])) / np.nanmax(np.abs(unsmoothed[50:-50]))
    assert 0.99 < ratio <= 1.0


def test_gain_and_speed_scale_the_output() -> None:
    tr = make_trace("I", 0.0, 2.5, func=lambda t: np.full_like(t, 1.0))
    _, mv = trace_to_samples(tr, CAL, FS)
    np.testing.assert_allclose(mv, 1.0)
    _, mv5 = trace_to_samples(tr, Calibration(8.0, 8.0, 25.0, 5.0), FS)
    np.testing.assert_allclose(mv5, 2.0)
    # the same pixels read at 50 mm/s last half as long
    idx50, _ = trace_to_samples(tr, Calibration(8.0, 8.0, 50.0, 10.0), FS)
    assert idx50.size == 1250  # the window is the panel's, samples past the ink are NaN
    _, mv50 = trace_to_samples(tr, Calibration(8.0, 8.0, 50.0, 10.0), FS)
    assert np.isfinite(mv50[:600]).all() and np.isnan(mv50[700:]).all()


def test_long_gaps_are_nan_short_gaps_are_interpolated() -> None:
    tr = make_trace("I", 0.0, 2.5, func=sine)
    y = tr.y_px.copy()
    y[100:104] = np.nan    # 4 px = 20 ms: bridged
    y[300:340] = np.nan    # 40 px = 0.2 s: left NaN
    tr = Trace("I", tr.x_px, y, tr.column_x_px, tr.path_px, tr.width_px, 1.0, tr.panel)
    idx, mv = trace_to_samples(tr, CAL, FS, max_gap_s=0.08)
    t = idx / FS
    short = (t > 0.505) & (t < 0.515)
    long_ = (t > 1.51) & (t < 1.69)
    assert np.isfinite(mv[short]).all()
    assert np.isnan(mv[long_]).all()


def test_bad_fs_raises() -> None:
    with pytest.raises(ConfigurationError):
        trace_to_samples(make_trace("I", 0, 2.5), CAL, 0.0)


def test_assemble_places_leads_in_their_windows_rhythm_first() -> None:
    grid_ii = make_trace("II", 0.0, 2.5, func=lambda t: np.full_like(t, 0.5))
    rhythm_ii = make_trace("II", 0.0, 10.0, func=sine, base=800, rhythm=True)
    avl = make_trace("aVL", 2.5, 5.0, func=sine, x0=600)
    signal, quality = assemble_signal([grid_ii, avl, rhythm_ii], CAL, fs=FS)
    assert signal.shape == (5000, 12)
    ii, avl_col = signal[:, 1], signal[:, 4]
    assert np.isfinite(ii).all()
    assert np.max(np.abs(ii - sine(np.arange(5000) / FS))) < 0.01  # the strip wins
    assert np.isnan(avl_col[:1250]).all() and np.isnan(avl_col[2500:]).all()
    assert np.isfinite(avl_col[1250:2500]).all()
    assert np.isnan(signal[:, 0]).all() and quality["I"] == 0.0 and quality["aVL"] == 1.0


def test_low_quality_panels_are_left_nan() -> None:
    tr = make_trace("V1", 5.0, 7.5, func=sine, quality=0.2)
    signal, quality = assemble_signal([tr], CAL, fs=FS, min_quality=0.35)
    assert np.isnan(signal).all()
    assert quality["V1"] == pytest.approx(0.2)


def test_rhythm_strip_is_relabelled_when_it_matches_another_lead() -> None:
    def lead_ii(t):
        return sine(t) + 0.3 * np.sin(2 * np.pi * 7 * t)

    def lead_iii(t):
        return -0.5 * np.cos(2 * np.pi * 0.9 * t)

    panels = [make_trace("II", 0.0, 2.5, func=lead_ii),
              make_trace("III", 0.0, 2.5, func=lead_iii, base=600),
              make_trace("III", 0.0, 10.0, func=lead_ii, base=800, rhythm=True)]
    out, notes = match_rhythm_leads(panels, CAL, fs=FS)
    assert [t.lead for t in out] == ["II", "III", "II"]
    assert out[2].panel.lead == "II" and out[2].panel.is_rhythm
    assert len(notes) == 1 and "relabelled II" in notes[0]
    # a correctly labelled strip is left alone
    panels[2] = make_trace("II", 0.0, 10.0, func=lead_ii, base=800, rhythm=True)
    out, notes = match_rhythm_leads(panels, CAL, fs=FS)
    assert out[2].lead == "II" and notes == []


def test_rhythm_strip_is_not_relabelled_by_beat_timing_alone() -> None:
    # Two leads whose beats fall at the same times correlate highly over a panel
    # (r = 1 here), but a rhythm strip of II is not a drawing of a lead twice as tall.
    def lead_ii(t):
        return sine(t)

    def lead_v3(t):
        return 2.0 * sine(t)

    panels = [make_trace("II", 0.0, 2.5, func=lambda t: -0.4 * np.cos(2 * np.pi * 0.7 * t)),
              make_trace("V3", 5.0, 7.5, func=lead_v3, base=600),
              make_trace("II", 0.0, 10.0, func=lead_ii, base=800, rhythm=True)]
    out, notes = match_rhythm_leads(panels, CAL, fs=FS)
    assert out[2].lead == "II" and notes == []
    # the same strip drawn at V3's amplitude is V3's
    panels[2] = make_trace("II", 0.0, 10.0, func=lead_v3, base=800, rhythm=True)
    out, notes = match_rhythm_leads(panels, CAL, fs=FS)
    assert out[2].lead == "V3" and len(notes) == 1



def test_makima_interpolation_follows_curvature_between_columns() -> None:
    # a slow wave sampled once per px column: the spline tracks it between columns,
    # straight lines cut its corners; an unknown method is refused
    tr = make_trace("II", 0.0, 1.0, func=lambda t: 0.8 * np.sin(2 * np.pi * 3.0 * t))
    truth = 0.8 * np.sin(2 * np.pi * 3.0 * np.arange(500) / FS)
    err = {}
    for method in ("linear", "makima"):
        idx, mv = trace_to_samples(tr, CAL, FS, smooth_px=0.0, interpolation=method)
        ok = np.isfinite(mv)
        err[method] = float(np.sqrt(np.mean((mv[ok] - truth[idx][ok]) ** 2)))
    assert err["makima"] < 0.2 * err["linear"]
    with pytest.raises(ConfigurationError, match="interpolation"):
        trace_to_samples(tr, CAL, FS, interpolation="cubic")
