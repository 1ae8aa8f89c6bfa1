"""Tests of ecgdigitize._inkfit: the pen profile and the model-based line fit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ecgdigitize._inkfit import _edge_pixels, fit_polyline, pen_profile
from ecgdigitize.config import DigitizeConfig
from ecgdigitize.metrics import score_record
from ecgdigitize.result import Panel
from ecgdigitize.synth import SheetStyle, render_sheet
from ecgdigitize.synth.draw import ink_mask as draw_ink
from ecgdigitize.traces import extract_traces, ink_darkness, ink_mask


def _sheet_of(xs: np.ndarray, ys: np.ndarray, shape: tuple[int, int], width: float = 2.0,
              grid: bool = False) -> np.ndarray:
    """RGB image of one black anti-aliased line (over a red 1 mm grid if asked)."""
    cover = draw_ink(shape, [(xs, ys)], width)
    img = np.full((*shape, 3), 255.0)
    if grid:
        img[::8, :] = img[:, ::8] = (232.0, 150.0, 150.0)
    img *= 1.0 - cover[:, :, None]
    return img.round().astype(np.uint8)


def test_pen_profile_measures_the_drawn_pen_over_a_grid() -> None:
    # the half width is half the ink a column of the flat line holds (the renderer's
    # 2 px pen covers 2.9 px, its 4 px pen 5.1 px); the grid lines under it are not pen
    xs = np.arange(2.0, 398.0, 0.39)
    ys = 60 + 0.3 * np.sin(xs / 40)
    radii = []
    for width in (2.0, 4.0):
        held = draw_ink((120, 400), [(xs, np.full(xs.size, 60.4))], width)[:, 200].sum()
        img = _sheet_of(xs, ys, (120, 400), width=width, grid=True)
        r, a = pen_profile(ink_darkness(img, px_per_mm=8.0) / 255.0, [(xs, ys)])
        assert r == pytest.approx(held / 2, abs=0.2)     # the fit refines it further
        assert 0.5 <= a <= 1.5
        radii.append(r)
    assert radii[1] - radii[0] > 0.9


def test_pen_profile_needs_flat_stretches() -> None:
    xs = np.arange(2.0, 198.0, 0.39)
    ys = 100 + 60 * np.sin(xs / 3)                       # steep everywhere
    cov = draw_ink((200, 200), [(xs, ys)], 2.0).astype(float)
    assert pen_profile(cov, [(xs, ys)]) is None
    assert pen_profile(cov, []) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_edge_pixels_are_those_of_a_brute_force_search(seed: int) -> None:
    # every pixel against every segment: the listing by segment must find the same ramp
    # pixels, each with its nearest segment, as a search that lists nothing out
    rng = np.random.default_rng(seed)
    x0, dx, n = 3.3, 0.4, 120
    y = (25 + np.cumsum(rng.normal(0, 1.5, n)) * (1 + 3 * (seed == 2))).astype(np.float32)
    reach, a, floor = 1.9, 1.1, 0.3
    box = (2, 52, 0, 200)
    rows, cols, dist, along, dy, seg = _edge_pixels(y, x0, dx, reach, a, floor, box)
    pr, pc = np.mgrid[box[2]:box[3], box[0]:box[1] + 1]
    pr, pc = pr.ravel()[:, None].astype(float), pc.ravel()[:, None].astype(float)
    xa, ya, dy_seg = x0 + dx * np.arange(n - 1), y[:-1].astype(float), np.diff(y.astype(float))
    u = np.clip(((pc - xa) * dx + (pr - ya) * dy_seg) / (dx * dx + dy_seg ** 2), 0, 1)
    d = np.hypot(pc - xa - u * dx, pr - ya - u * dy_seg).min(axis=1)
    z = (reach - d) / a
    want = (z > floor) & (z < 1.0)
    assert rows.size == want.sum() > 100
    got = np.zeros(want.size, bool)
    got[(rows - box[2]) * (box[1] - box[0] + 1) + (cols - box[0])] = True
    assert np.array_equal(got, want)
    order = np.argsort((rows - box[2]) * (box[1] - box[0] + 1) + (cols - box[0]))
    np.testing.assert_allclose(dist[order], d[want], atol=1e-4)
    # the segment returned is a nearest one, and the point along it gives that distance
    px = x0 + dx * (seg + along)
    py = y[seg] + along * (y[seg + 1] - y[seg])
    np.testing.assert_allclose(np.hypot(cols - px, rows - py), dist, atol=1e-4)
    np.testing.assert_allclose(rows - py, dy, atol=1e-4)


def test_fit_keeps_a_sharp_spike_that_the_column_reading_got_right() -> None:
    # a 70 px R wave 9 px wide at its foot, drawn with the 2 px pen and read well
    # row by row (RMS 0.22 px): the fit cannot place a stroke this steep better in
    # time, and must not blunt the apex or zig-zag along the strokes
    xs = np.arange(4.0, 236.0, 0.39)
    ys = 100 - 70 * np.exp(-(((xs - 120) / 3.2) ** 2)) + 6 * np.exp(-(((xs - 60) / 15) ** 2))
    img = _sheet_of(xs, ys, (160, 240))
    dark = ink_darkness(img, px_per_mm=8.0)
    panel = Panel("II", (0, 10, 240, 150), 0.0, 1.0, 100.0, 0, 0)
    mask = ink_mask(img, px_per_mm=8.0, darkness=dark)
    errors = {}
    for fit in (False, True):
        tr = extract_traces(mask, [panel], row_pitch_px=140, darkness=dark,
                            config=DigitizeConfig(fit_ink=fit)).traces[0]
        sel = (xs > 10) & (xs < 230)
        est = np.interp(xs[sel], tr.x_px, tr.y_px)
        errors[fit] = float(np.sqrt(np.mean((est - ys[sel]) ** 2)))
    assert errors[False] < 0.3
    assert errors[True] < errors[False] + 0.02


def test_fit_polyline_keeps_gaps_and_sorted_x() -> None:
    xs = np.arange(5.0, 195.0, 0.5)
    ys = np.full(xs.size, 50.0)
    ys[(xs > 90) & (xs < 110)] = np.nan                  # a gap in the reading
    cov = draw_ink((100, 200), [(xs, ys)], 2.0).astype(float)
    fx, fy = fit_polyline(cov, xs, ys + 0.6, 1.4)         # start 0.6 px off
    assert np.all(np.diff(fx) >= 0)
    gap = (fx > 91) & (fx < 109)
    assert np.isnan(fy[gap]).all() and np.isnan(fy).sum() == 1
    assert np.nanmax(np.abs(fy[(fx > 10) & (fx < 85)] - 50.0)) < 0.15


def test_short_stretches_keep_their_reading() -> None:
    # a speck of a broken trace (under MIN_RUN_PX long) is not fitted, the long run is
    from ecgdigitize._inkfit import MIN_RUN_PX

    xs = np.arange(5.0, 195.0, 0.5)
    ys = np.full(xs.size, 50.6)                      # read 0.6 px off
    ys[(xs == 20.0) | (xs == 24.0)] = np.nan         # a 3.5 px speck between two gaps
    cov = draw_ink((100, 200), [(xs, np.full(xs.size, 50.0))], 2.0).astype(float)
    assert 24.0 - 20.0 < MIN_RUN_PX
    fx, fy = fit_polyline(cov, xs, ys, 1.4)
    speck = (fx > 20.2) & (fx < 23.8)
    assert speck.sum() == 7 and np.allclose(fy[speck], 50.6)   # as read
    tail = (fx > 40) & (fx < 180)
    assert np.abs(fy[tail] - 50.0).max() < 0.15                # fitted


def test_fit_polyline_leaves_a_line_it_cannot_explain() -> None:
    # no ink at all near the starting line: every vertex stays where it was read
    xs = np.arange(5.0, 95.0, 0.4)
    _, fy = fit_polyline(np.zeros((60, 100)), xs, np.full(xs.size, 30.0), 1.4)
    assert np.allclose(fy, 30.0)


def test_fit_raises_the_snr_of_a_rendered_sheet(sim_record) -> None:
    from ecgdigitize import digitize_panels
    from ecgdigitize.result import Calibration

    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(), seed=0)
    t = sheet.truth
    cal = Calibration(*t.px_per_mm, t.speed_mm_per_s, t.gain_mm_per_mv)
    snr = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fit in (False, True):
            res = digitize_panels(sheet.image, t.panels, cal, config=DigitizeConfig(fit_ink=fit))
            snr[fit] = score_record(t.reference, res).attrs["mean_snr_db"]
    assert snr[True] > snr[False] + 0.5
