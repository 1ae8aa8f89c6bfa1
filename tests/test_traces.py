"""Tests of ecgdigitize.traces: ink mask, trace following, accuracy on rendered sheets."""

from __future__ import annotations

import numpy as np
import pytest

from ecgdigitize.config import DigitizeConfig
from ecgdigitize.errors import NoTracesFoundError
from ecgdigitize.result import Panel
from ecgdigitize.synth import SheetStyle, render_sheet
from ecgdigitize.traces import (
    drop_labels,
    drop_labels_and_boxes,
    extract_trace,
    extract_traces,
    ink_mask,
    label_boxes,
)


@pytest.fixture(scope="module")
def sheet(sim_record):
    return render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100))


def test_ink_mask_keeps_trace_drops_grid_dots_and_rules() -> None:
    img = np.full((500, 400, 3), 255, np.uint8)
    img[::8, :] = (232, 90, 90)                  # red grid lines
    img[:, ::8] = (232, 90, 90)
    img[4::8, 4::8] = (70, 70, 70)               # dark grid dots (as on the reference sheets)
    img[250:253, 20:380] = 0                     # a trace
    img[20:480, 200] = 0                         # a column separator (57 mm > 45 mm)
    m = ink_mask(img, px_per_mm=8.0)
    assert m[250:253, 20:380].mean() > 0.95
    assert m[0:240:8, 30:190].sum() == 0         # grid rows away from the trace
    assert not m[4::8, 4::8][:10, :10].any()     # dots
    assert m[20:240, 200].sum() == 0             # the rule is gone
    assert m[:240].sum() == 0 and m[260:].sum() == 0


def test_ink_mask_grey_grid_is_not_ink() -> None:
    img = np.full((200, 300, 3), 255, np.uint8)
    img[::8, :] = 150
    img[:, ::8] = 150
    img[100:103, 10:290] = 0
    m = ink_mask(img, px_per_mm=8.0)
    assert m[100:103, 10:290].mean() > 0.95
    assert m[:90].sum() == 0


def test_ink_mask_drops_grid_rules_in_the_ink_hue() -> None:
    # a blue-tinted copy: 5 mm rules nearly as dark as the trace, same hue
    img = np.full((400, 600, 3), 255, np.uint8)
    img[::40, :] = (95, 100, 160)                # major rules, darkness ~125
    img[:, ::40] = (95, 100, 160)
    img[219:222, 20:580] = (20, 40, 150)         # a flat trace stretch, darkness ~160
    img[120:300, 300:303] = (20, 40, 150)        # a QRS stroke crossing the rules at 160, 240
    m = ink_mask(img, px_per_mm=8.0)
    assert m[::40][:, 10:290].sum() == 0         # the rules are not ink
    assert m[160, 300:303].all() and m[240, 300:303].all()  # the stroke keeps its crossing
    assert m[219:222, 20:580].mean() > 0.95
    assert m[130:190, 300:303].all()


def test_blank_page_raises() -> None:
    with pytest.raises(NoTracesFoundError):
        ink_mask(np.full((200, 300, 3), 250, np.uint8), px_per_mm=8.0)


def test_extract_trace_follows_a_spike_to_its_apex() -> None:
    m = np.zeros((200, 100), bool)
    m[99:102, :] = True                          # baseline at y = 100
    m[30:101, 49:51] = True                      # 70 px spike
    p = Panel("II", (0, 40, 100, 160), 0.0, 1.0, 100.0, 0, 0)
    tr = extract_trace(m, p, row_pitch_px=120)
    assert np.nanmin(tr.y_px) < 33              # apex kept (not clipped to the midpoint)
    assert abs(np.interp(20, tr.x_px, tr.y_px) - 100) < 0.6
    assert tr.quality == 1.0


def test_trace_stays_on_its_row_when_a_neighbour_crosses() -> None:
    m = np.zeros((300, 200), bool)
    m[99:102, :] = True                          # own trace, baseline 100
    m[199:202, :] = True                         # neighbour, baseline 200
    m[105:201, 120:123] = True                   # neighbour's tall R wave reaching up to 105
    p = Panel("I", (0, 50, 200, 150), 0.0, 1.0, 100.0, 0, 0)
    tr = extract_trace(m, p, row_pitch_px=100)
    assert np.nanmax(np.abs(tr.y_px - 100)) < 1.0


def test_blank_panel_has_low_quality() -> None:
    m = np.zeros((300, 200), bool)
    m[199:202, :] = True                         # only the neighbour row has ink
    p = Panel("I", (0, 50, 200, 150), 0.0, 1.0, 100.0, 0, 0)
    assert extract_trace(m, p, row_pitch_px=100).quality < 0.1


@pytest.mark.parametrize("colour, pattern", [("red", "solid"), ("grey", "solid"),
                                             ("pink", "dotted")])
def test_traces_match_the_truth_polylines(sim_record, colour: str, pattern: str) -> None:
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100, grid_colour=colour,
                                                         grid_pattern=pattern))
    truth = sheet.truth
    mask = ink_mask(sheet.image, px_per_mm=truth.px_per_mm[0])
    traces = extract_traces(mask, truth.panels)
    assert len(traces) == len(truth.panels)
    errors = []
    for k, tr in enumerate(traces):
        xs, ys = truth.traces[k]
        est = np.interp(xs, tr.x_px, tr.y_px)
        inner = (xs > xs[0] + 8) & np.isfinite(est)  # skip the label at the panel start
        errors.append(np.median(np.abs(est[inner] - ys[inner])))
        assert tr.quality > 0.9
    assert np.median(errors) < 0.7                  # px, at 3.9 px/mm
    assert max(errors) < 1.5
    assert 2.0 <= traces.line_width_px <= 5.0


def test_extract_traces_is_deterministic(sheet) -> None:
    mask = ink_mask(sheet.image, px_per_mm=sheet.truth.px_per_mm[0])
    a = extract_traces(mask, sheet.truth.panels)
    b = extract_traces(mask.copy(), sheet.truth.panels)
    for ta, tb in zip(a, b, strict=True):
        assert np.array_equal(ta.y_px, tb.y_px, equal_nan=True)


def test_peak_modes_all_run(sheet) -> None:
    mask = ink_mask(sheet.image, px_per_mm=sheet.truth.px_per_mm[0])
    panel = sheet.truth.panels[0]
    for mode in ("hybrid", "midpoint"):
        tr = extract_trace(mask, panel, row_pitch_px=panel.box_px[3] - panel.box_px[1],
                           config=DigitizeConfig(peak_mode=mode))
        assert np.isfinite(tr.y_px).mean() > 0.9


def test_no_panels_raises() -> None:
    with pytest.raises(NoTracesFoundError):
        extract_traces(np.zeros((10, 10), bool), [])


def test_drop_labels_removes_free_standing_text_only() -> None:
    m = np.zeros((200, 300), bool)
    m[120:123, :] = True                          # trace through the label zone
    m[90:110, 30:33] = True                       # "I" above the trace, not touching it
    m[100:121, 60:62] = True                      # a stroke touching the trace: kept
    p = Panel("I", (20, 60, 300, 180), 0.0, 1.0, 121.0, 0, 0)
    out = drop_labels(m, [p], px_per_mm=4.0)
    assert not out[90:110, 30:33].any()
    assert out[100:121, 60:62].all()
    assert out[120:123, :].all()
    assert m[90:110, 30:33].all()                 # the input is not modified


def test_drop_labels_cuts_glyphs_from_a_qrs_stroke_that_crosses_them() -> None:
    # two panels in a row at 4 px/mm; the first label ("II") stands free and tells
    # where the text line is; the second ("I") is crossed by a QRS stroke, with a
    # bar of a glyph joined to the stroke
    m = np.zeros((160, 420), bool)
    m[100:102, :] = True                          # trace
    m[80:95, 14:17] = m[80:95, 19:22] = True      # free "II" of panel A
    m[80:95, 214:217] = True                      # "I" of panel B ...
    m[86:88, 216:225] = True                      # ... and a bar through the stroke
    m[30:101, 220:222] = True                     # QRS stroke from far above
    panels = [Panel("II", (10, 40, 210, 160), 0.0, 1.0, 100.0, 0, 0),
              Panel("I", (210, 40, 410, 160), 1.0, 2.0, 100.0, 0, 1)]
    out = drop_labels(m, panels, px_per_mm=4.0)
    assert not out[80:95, 14:22].any()            # the free label
    assert not out[80:95, 214:217].any()          # the crossed glyph ...
    assert not out[86:88, 216:220].any() and not out[86:88, 222:225].any()   # ... its bar
    assert out[30:101, 220:222].all()             # the stroke stays whole
    assert out[100:102, :].all()


def test_merged_strokes_below_a_sharp_apex_are_both_read() -> None:
    # an anti-aliased 80 px R wave only 8 px wide at its foot: near the apex the
    # up- and down-strokes merge into one horizontal run, which must still give
    # a point on each stroke in (nearly) every row
    from ecgdigitize.synth.draw import ink_mask as draw_ink
    from ecgdigitize.traces import ink_darkness

    xs = np.array([0.0, 46.3, 50.1, 54.2, 120.0])
    ys = np.array([100.0, 100.0, 20.0, 100.0, 100.0])
    cover = draw_ink((160, 120), [(xs, ys)], 2.0)
    img = np.repeat((255 * (1 - cover)).astype(np.uint8)[:, :, None], 3, axis=2)
    dark = ink_darkness(img, px_per_mm=8.0)
    p = Panel("II", (0, 30, 120, 150), 0.0, 1.0, 100.0, 0, 0)
    # the column reading itself (the fit to the ink replaces its points by evenly spaced ones)
    tr = extract_traces(ink_mask(img, px_per_mm=8.0, darkness=dark), [p], row_pitch_px=100,
                        darkness=dark, config=DigitizeConfig(fit_ink=False)).traces[0]
    sel = (tr.y_px > 30) & (tr.y_px < 70)
    x, y = tr.x_px[sel], tr.y_px[sel]
    up = x < 50.1
    err_up = np.abs(x[up] - (46.3 + (100 - y[up]) / 80 * 3.8))
    err_down = np.abs(x[~up] - (54.2 - (100 - y[~up]) / 80 * 4.1))
    assert (err_up < 0.4).sum() >= 18 and (err_down < 0.4).sum() >= 30   # of 40 rows
    assert np.median(err_up) < 0.1 and np.median(err_down) < 0.15


def test_line_width_comes_from_flat_columns() -> None:
    from ecgdigitize._centreline import line_width

    x = np.arange(200.0)
    mid = np.where(x < 150, 50 + 4.0 * (x % 30), 50.0)      # steep saw, then flat
    t, b = mid - 1 - 2.0 * (x < 150), mid + 1 + 2.0 * (x < 150)
    assert line_width(t, b) == 3.0                          # not the 7 px sloped runs
    assert line_width(t[:150], b[:150]) == 7.0              # no flat column: every run
    assert np.isnan(line_width(np.full(5, np.nan), np.full(5, np.nan)))


def test_a_trace_steep_almost_everywhere_is_read_at_its_crests() -> None:
    # a 2 Hz wave 118 px high at 197 px/s: sloped in nearly every column, so
    # most runs are longer than the line is thick. Taking the thickness from
    # every run made the crests read as thick flat runs (errors up to 5 px).
    from ecgdigitize.synth.draw import ink_mask as draw_ink
    from ecgdigitize.traces import ink_darkness

    xs = np.arange(5.0, 395.0, 0.39)
    ys = 150 - 118 * np.sin(2 * np.pi * xs / 98.4)
    cover = draw_ink((300, 400), [(xs, ys)], 2.0)
    img = np.repeat((255 * (1 - cover)).astype(np.uint8)[:, :, None], 3, axis=2)
    dark = ink_darkness(img, px_per_mm=7.87)
    p = Panel("II", (0, 0, 400, 300), 0.0, 2.0, 150.0, 0, 0)
    tr = extract_traces(ink_mask(img, px_per_mm=7.87, darkness=dark), [p],
                        row_pitch_px=300, darkness=dark).traces[0]
    cols = np.arange(10.0, 390.0)
    err = np.interp(cols, tr.x_px, tr.y_px) - np.interp(cols, xs, ys)
    crest = np.abs(np.interp(cols, xs, ys) - 150) > 110
    assert np.abs(err[crest]).max() < 1.5
    assert np.sqrt(np.mean(err**2)) < 0.8


def test_stroke_points_are_ordered_along_the_stroke() -> None:
    # a near-vertical upstroke whose row points have noisy sub-pixel x: sorted
    # by x they zig-zag in y; ordered along the stroke y falls monotonically
    from ecgdigitize._centreline import _monotone_strokes

    rng = np.random.default_rng(0)
    rows = np.arange(60.0, 20.0, -1.0)                       # from the foot up to the top
    xs_stroke = 50.0 + 0.02 * (60 - rows) + rng.normal(0, 0.1, rows.size)
    xs = np.r_[48.0, 49.0, xs_stroke, 52.0]
    ys = np.r_[61.0, 61.0, rows, 19.0]
    stroke = np.r_[False, False, np.ones(rows.size, bool), False]
    order = np.argsort(xs, kind="stable")
    xs, ys, stroke = xs[order], ys[order], stroke[order]
    assert (np.diff(ys) > 0).sum() > 5                       # zig-zag before
    _monotone_strokes(xs, ys, stroke)
    assert (np.diff(ys) <= 0).all()                          # one way up after
    assert (np.diff(xs) >= 0).all()
    assert abs(np.interp(40.5, ys[::-1], xs[::-1]) - 50.4) < 0.15


def test_real_record_render_snr_with_true_panels(shared_records_dir) -> None:
    # A0689 at 200 dpi, red grid, the render's own panels: mean SNR measured
    # 24.95 dB (21.3 before merged strokes and sub-pixel apexes, 24.34 with the
    # 0.3 mm edge skip). Its QRS starts on the 7.5 s column boundary: the 0.12 mm
    # skip reads V4 and V5 from their first millisecond (17.3 -> 23.4 and 16.3 ->
    # 22.7 dB), but V6 starts on the end of V3's stroke (19.1 -> 12.8 dB)
    import warnings

    from ecgdigitize import digitize_panels
    from ecgdigitize.metrics import score_record
    from ecgdigitize.result import Calibration
    from ecgdigitize.synth import load_record

    sheet = render_sheet(load_record(shared_records_dir / "A0689"), "3x4+1", SheetStyle(),
                         seed=0)
    t = sheet.truth
    cal = Calibration(*t.px_per_mm, t.speed_mm_per_s, t.gain_mm_per_mv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = digitize_panels(sheet.image, t.panels, cal)
    scores = score_record(t.reference, res)
    assert scores.attrs["mean_snr_db"] > 24.5
    assert scores["snr_db"].min() > 12.0


def test_an_end_column_on_a_steep_stroke_is_read_at_its_middle() -> None:
    # the first column of a panel cut from a falling stroke: with no column
    # before it, it used to count as a nadir (read at its run's bottom, 89)
    from ecgdigitize._centreline import centreline

    t = np.array([50.0, 30.0, 10.0, 10.0, 10.0, 10.0])
    b = np.array([90.0, 70.0, 50.0, 12.0, 12.0, 12.0])
    _, y = centreline(t, b, "hybrid")
    assert y[0] == 70.0
    assert y[1] == 50.0 and y[2] == 11.0   # mid-stroke, then the crest (top + half width)


def test_a_speck_in_the_first_column_gives_way_to_the_stroke() -> None:
    # the path enters the panel on a 1 px speck just above a steep stroke (a
    # grid line thinned the ink between them): the first column is bridged to
    # the stroke as a column inside the panel would be (it read the speck, 19-19)
    from ecgdigitize._centreline import read_columns, run_bounds

    band = np.zeros((120, 6), bool)
    band[19, 0] = band[23:92, 0] = True
    band[0:68, 1] = True
    band[0:40, 2] = True
    band[0:20, 3:] = True
    t, b, on_ink = read_columns(band, np.full(6, 18), 3, run_bounds(band))
    assert (t[0], b[0]) == (23.0, 91.0)
    assert on_ink.all() and (t[1], b[1]) == (0.0, 67.0)


def _hump_sheet() -> tuple[np.ndarray, list[Panel]]:
    """Two panels at 4 px/mm: a free three-glyph label on the first, and on the
    second a wave that rises through the text line and comes back below it."""
    m = np.zeros((160, 420), bool)
    m[100:102, :] = True                          # trace (baseline)
    for x in (14, 26, 38, 50):                    # free label of panel A: four glyphs
        m[80:95, x:x + 3] = True
    xs = np.arange(214, 255)
    ys = np.round(100 - 12 * np.sin(np.pi * (xs - 214) / 40)).astype(int)
    m[100:102, 215:254] = False
    for x, y in zip(xs, ys, strict=True):
        m[y:y + 3, x] = True                      # the hump, 3 px thick
    panels = [Panel("aVR", (10, 40, 210, 160), 0.0, 1.0, 100.0, 0, 0),
              Panel("I", (210, 40, 410, 160), 1.0, 2.0, 100.0, 0, 1)]
    return m, panels


def test_drop_labels_keeps_a_wave_that_rises_through_the_text_line() -> None:
    # the hump leaves the text line and comes back farther on than the line is
    # tall: a wave, not a glyph standing on the trace (its top used to be
    # dropped: 22 of its 83 pixels inside the line were kept)
    m, panels = _hump_sheet()
    out = drop_labels(m, panels, px_per_mm=4.0)
    assert not out[80:95, 14:53].any()            # the free label goes
    line = np.s_[78:96, 212:250]
    assert out[line].sum() == m[line].sum() == 83


def test_one_label_search_gives_what_drop_labels_and_label_boxes_give() -> None:
    m, panels = _hump_sheet()
    out, boxes = drop_labels_and_boxes(m, panels, px_per_mm=4.0)
    np.testing.assert_array_equal(out, drop_labels(m, panels, px_per_mm=4.0))
    assert boxes == label_boxes(m, panels, px_per_mm=4.0)
    assert len(boxes) == len(panels) and boxes[0][2] - boxes[0][0] >= 44  # to the 12 mm end
    blank = np.zeros_like(m)
    assert drop_labels_and_boxes(blank, panels, px_per_mm=4.0)[1] == []


def test_ink_in_a_label_box_beside_the_trace_is_weaker_evidence() -> None:
    # an "R"-like glyph joined to the trace (stem and leg on the baseline, bow on
    # top) over a QRS that dives 40 px: without the label's box the path takes the
    # glyph's bow (cheaper than the dive); with it, the dive
    m = np.zeros((160, 120), bool)
    m[100:102, :] = True                          # trace
    m[100:102, 52:66] = False
    m[100:142, 52:54] = m[100:142, 64:66] = True  # QRS down- and up-stroke
    m[140:142, 52:66] = True
    m[78:80, 48:70] = True                        # glyph: bow ...
    m[78:100, 48:50] = m[78:100, 68:70] = True    # ... stem and leg on the trace
    p = Panel("aVR", (0, 20, 120, 160), 0.0, 1.0, 100.0, 0, 0)
    cfg = DigitizeConfig(fit_ink=False)
    plain = extract_traces(m, [p], row_pitch_px=120, config=cfg).traces[0]
    boxed = extract_traces(m, [p], row_pitch_px=120, config=cfg,
                           label_boxes_px=[(40.0, 76.0, 72.0, 96.0)]).traces[0]
    assert plain.path_px[58] < 80 and plain.path_px[58] > 77
    assert boxed.path_px[58] > 139


def test_label_glyph_touching_a_trace_that_passes_by_is_not_read_as_a_stroke() -> None:
    # a flat trace along the bottom of a label box, with a "1"-like glyph standing on it,
    # and a QRS stroke that rises out of the box: the glyph stops lengthening the
    # trace's run (it read as a 20 px stroke), the QRS keeps its full height
    m = np.zeros((160, 140), bool)
    m[99:102, :] = True                           # trace, rows 99-101
    m[78:99, 40:43] = True                        # glyph stem on the trace
    m[50:99, 90:92] = True                        # QRS up- and down-stroke leaving the box
    p = Panel("V1", (0, 20, 140, 160), 0.0, 1.0, 100.0, 0, 0)
    cfg = DigitizeConfig(fit_ink=False)           # the default reading (apexes at their tips)
    box = (30.0, 76.0, 110.0, 100.0)
    plain = extract_traces(m, [p], row_pitch_px=120, config=cfg).traces[0]
    boxed = extract_traces(m, [p], row_pitch_px=120, config=cfg,
                           label_boxes_px=[box]).traces[0]

    def at(tr, col):
        return tr.y_px[np.argmin(np.abs(tr.x_px - col))]

    assert at(plain, 41) < 95                     # the stem pulled the reading up
    assert abs(at(boxed, 41) - 100.0) <= 1.0      # the trace's own row
    assert at(boxed, 90) < 80 and at(plain, 90) == pytest.approx(at(boxed, 90))


def _edge_sheet() -> tuple[np.ndarray, list[Panel]]:
    """Two rows of two panels at 8 px/mm, a separator tick (2.4 px wide, baseline
    +- 3 mm) on each shared edge (x = 200). Row 1: a stroke rising 15 px per px
    ends on the edge 60 px (0.75 mV) above the baseline. Row 2: the first panel
    runs flat 10 px below its baseline, across the tick."""
    from ecgdigitize.synth.draw import ink_mask as draw

    xs = np.arange(5.0, 200.01, 0.25)
    rise = np.where(xs < 196, 100.0, 100.0 - 15 * (xs - 196))
    lines = [(xs, rise), (xs + 200, np.full(xs.size, 100.0)),
             (xs, np.full(xs.size, 230.0)), (xs + 200, np.full(xs.size, 220.0))]
    cover = draw((300, 410), lines, 3.0)
    for base in (100, 220):
        cover[base - 24:base + 25, 199:202] = np.maximum(cover[base - 24:base + 25, 199:202],
                                                        [[0.7, 1.0, 0.7]])
    img = np.repeat((255 * (1 - cover)).astype(np.uint8)[:, :, None], 3, axis=2)
    panels = [Panel("I", (0.0, 40.0, 200.0, 160.0), 0.0, 1.0, 100.0, 0, 0),
              Panel("aVR", (200.0, 40.0, 400.0, 160.0), 1.0, 2.0, 100.0, 0, 1),
              Panel("II", (0.0, 160.0, 200.0, 280.0), 0.0, 1.0, 220.0, 1, 0),
              Panel("aVL", (200.0, 160.0, 400.0, 280.0), 1.0, 2.0, 220.0, 1, 1)]
    return img, panels


def test_a_stroke_across_a_shared_edge_is_followed_to_the_edge() -> None:
    # the last ~1 px before a shared edge is not read (the tick and the
    # neighbour's stroke sit there); it used to hold the last value read
    # (0.605 mV; the stroke reaches 0.675 mV at the last sample, 0.75 on the edge),
    # the tick it runs into notwithstanding
    import warnings

    from ecgdigitize.pipeline import digitize_panels
    from ecgdigitize.result import Calibration

    img, panels = _edge_sheet()
    cfg = DigitizeConfig(remove_baseline=False, notch_hz=None, duration_s=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = digitize_panels(img, panels, Calibration(8.0, 8.0, 25.0, 10.0), config=cfg)
    lead_i, lead_ii = res.lead("I"), res.lead("II")
    x = np.arange(490, 500) * 0.4                  # 200 px per s: the stroke's samples
    truth = 15 * (x - 196) / 80
    assert abs(lead_i[499] - truth[-1]) < 0.03     # 0.675 mV; it held 0.605
    assert np.max(np.abs(lead_i[490:500] - truth)) < 0.12   # it was 0.21 ahead
    assert abs(lead_i[480]) < 0.02                 # before the stroke: flat
    # a flat trace through the tick keeps its level (not the tick's end, -0.3 mV)
    assert np.nanmax(np.abs(lead_ii[470:500] + 0.125)) < 0.02


def test_drop_labels_keeps_a_wave_crest_that_glyphs_stand_on() -> None:
    # a slow wave rises into the text line along a glyph's stroke, runs along its
    # crest under a second glyph and comes back down: the rise is followed up the
    # glyph's stroke, so the crest used to be cut away as text (the trace broke,
    # and the path climbed the glyph); without the crest the trace no longer joins
    # the label's two sides, so it stays
    m, panels = _hump_sheet()
    m[78:102, 212:270] = False
    m[100:102, 200:270] = True
    m[100:102, 222:251] = False

    def seg(x0: int, y0: int, x1: int, y1: int) -> None:
        for x in range(x0, x1 + 1):
            m[round(y0 + (y1 - y0) * (x - x0) / (x1 - x0)) + np.arange(3), x] = True

    seg(222, 99, 230, 91)                         # the wave rises slowly ...
    seg(230, 91, 242, 91)                         # ... runs along its crest ...
    seg(242, 91, 250, 99)                         # ... and comes back down
    seg(230, 91, 236, 80)                         # a glyph's stroke going on up
    m[80:92, 244:247] = True                      # a glyph standing on the crest
    out = drop_labels(m, panels, px_per_mm=4.0)
    assert out[91:94, 231:242].all()              # the crest
    assert out[100:102, 200:222].all() and out[100:102, 251:270].all()


def test_a_wave_crossing_a_glyph_is_followed_straight_through() -> None:
    # a T-like hump crosses both strokes of a "V" printed over it: the first-order
    # path may turn down the V at the crossing and come back up its other stroke; the
    # path re-tracked through the label box goes straight on (least change of slope)
    from ecgdigitize.synth.draw import ink_mask as draw

    xs = np.arange(0.0, 240.0, 0.25)
    trace = 100.0 - 26.0 * np.exp(-(((xs - 90.0) / 11.0) ** 2))
    v_left = (np.linspace(72.0, 86.0, 60), np.linspace(72.0, 96.0, 60))
    v_right = (np.linspace(86.0, 100.0, 60), np.linspace(96.0, 72.0, 60))
    m = draw((170, 240), [(xs, trace), v_left, v_right], 3.0) > 0.5
    p = Panel("V5", (0, 40, 240, 160), 0.0, 1.0, 100.0, 0, 0)
    cfg = DigitizeConfig(fit_ink=False, peak_mode="midpoint")
    box = (68.0, 70.0, 104.0, 97.0)
    tr = extract_traces(m, [p], row_pitch_px=120, config=cfg, label_boxes_px=[box]).traces[0]
    cols = (tr.x_px >= 70) & (tr.x_px <= 104)
    truth = np.interp(tr.x_px[cols], xs, trace)
    assert np.abs(tr.y_px[cols] - truth).max() <= 3.0  # it was 16.6 px (down the V)


def _opened(mask: np.ndarray, kernel_shape: tuple[int, int]) -> np.ndarray:
    import cv2
    return cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_OPEN,
                            np.ones(kernel_shape, np.uint8)) > 0


@pytest.mark.parametrize("seed", range(6))
def test_rule_and_stroke_removal_equal_the_whole_image_openings(seed: int) -> None:
    """The cleaners open only the rows/columns that can hold a long run; the result
    must equal opening the whole image (runs touching the border included)."""
    from ecgdigitize.traces import _drop_grid_rules, _drop_long_strokes
    rng = np.random.default_rng(seed)
    mask = rng.random((90, 130)) < 0.04
    for _ in range(12):  # long runs, some touching the border, some thick
        r, c = int(rng.integers(0, 90)), int(rng.integers(-20, 130))
        n, t = int(rng.integers(15, 90)), int(rng.integers(1, 4))
        if rng.random() < 0.5:
            mask[r:r + t, max(c, 0):c + n] = True
        else:
            mask[max(c % 90 - n // 2, 0):c % 90 + n // 2, c % 130:c % 130 + t] = True
    mask[5, 30:90] = mask[50, :25] = True      # thin rules, one ending at the border
    mask[40:76, 100] = mask[-18:, 7] = True    # tall strokes, one ending at the border
    length, thick = 40, 2
    lines, solid = _opened(mask, (1, length)), _opened(mask, (thick + 1, 1))
    expected = mask & ~(lines & ~solid)
    assert lines.any() and (expected != mask).any()
    np.testing.assert_array_equal(_drop_grid_rules(mask, length, thick), expected)
    expected = mask & ~_opened(mask, (31, 1))
    assert (expected != mask).any()
    np.testing.assert_array_equal(_drop_long_strokes(mask, 30), expected)


@pytest.mark.parametrize("density", [0.002, 0.08])  # a few specks; more than the box loop takes
def test_drop_specks_removes_exactly_the_small_components(density: float) -> None:
    import cv2

    from ecgdigitize import traces
    rng = np.random.default_rng(3)
    mask = rng.random((200, 260)) < density
    mask[50:53, 10:250] = True                   # a trace
    mask[98:106, 98:106] = mask[148:158, 28:34] = False
    mask[100:104, 100:104] = True                # a 4 px blob: a speck at size 5
    mask[150:156, 30:32] = True                  # 6 px tall: kept
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    small = (stats[:, 2] < 5) & (stats[:, 3] < 5)
    small[0] = True
    expected = ~small[labels]
    n_specks = int(small[1:].sum())
    assert (n_specks > traces._SPECK_LOOP_MAX) == (density > 0.01)
    out = traces._drop_specks(mask, 5)
    np.testing.assert_array_equal(out, expected)
    assert not out[100:104, 100:104].any() and out[150:156, 30:32].all()
