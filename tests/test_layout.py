"""Tests of :mod:`ecgdigitize.layout`: rows, pulses, layout names, panels, crops."""

from __future__ import annotations

import numpy as np
import pytest

from ecgdigitize._layout_rows import _even_run_with_hole, _Row, _select_rows
from ecgdigitize.errors import ConfigurationError, LayoutNotFoundError, NoTracesFoundError
from ecgdigitize.geometry import rectify
from ecgdigitize.grid import GridSpec, detect_grid
from ecgdigitize.layout import (
    LAYOUT_SHAPES,
    Layout,
    crop_panels,
    detect_speed,
    find_layout,
    panel_cells,
)
from ecgdigitize.record import ECGRecord
from ecgdigitize.result import DigitizedECG
from ecgdigitize.synth import Degradation, SheetStyle, apply_homography, render_sheet

STYLES = {
    "red-ticks": SheetStyle(dpi=100),
    "dotted-full": SheetStyle(dpi=100, grid_colour="pink", grid_pattern="dotted",
                              separators="full"),
    "grey-200dpi": SheetStyle(grid_colour="grey", label_size_mm=3.0),
}


def _match(found: Layout, truth) -> tuple[float, float]:
    """Largest x (box edges) and baseline differences between found and true panels, px."""
    true = {(p.lead, p.is_rhythm): p for p in truth.panels}
    assert {(p.lead, p.is_rhythm) for p in found.panels} == set(true)
    dx = max(max(abs(p.box_px[0] - true[p.lead, p.is_rhythm].box_px[0]),
                 abs(p.box_px[2] - true[p.lead, p.is_rhythm].box_px[2])) for p in found.panels)
    dy = max(abs(p.baseline_y_px - true[p.lead, p.is_rhythm].baseline_y_px)
             for p in found.panels)
    return dx, dy


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("layout", sorted(LAYOUT_SHAPES))
def test_layout_and_panels_match_truth(sim_record, layout, style):
    sheet = render_sheet(sim_record, layout, STYLES[style])
    found = find_layout(sheet.image, detect_grid(sheet.image))
    assert found.name == layout
    n_rows = LAYOUT_SHAPES[layout][0] + len(LAYOUT_SHAPES[layout][2])
    assert len(found.row_baselines_px) == n_rows and len(found.pulses) == n_rows
    dx, dy = _match(found, sheet.truth)
    ppm = sheet.truth.px_per_mm[0]
    assert dx < 0.4 * ppm       # box edges within 0.4 mm (10 ms)
    assert dy < 0.25 * ppm      # 0 mV line within 0.25 mm (25 uV)
    for pulse in found.pulses:
        assert pulse.height_px == pytest.approx(10 * sheet.truth.px_per_mm[1], rel=0.03)
    assert 0.4 < found.confidence <= 1.0
    assert found.px_per_s == pytest.approx(25 * sheet.truth.px_per_mm[0], rel=0.005)


@pytest.mark.parametrize("layout", ["3x4+1", "6x2", "12x1"])
def test_layout_on_rotated_degraded_sheet(sim_record, layout):
    degradation = Degradation(rotation_deg=-4.0, blur_sigma_px=0.8, gaussian_noise_std=0.02,
                              jpeg_quality=70)
    sheet = render_sheet(sim_record, layout, SheetStyle(), degradation)
    grid = detect_grid(sheet.image)
    rect = rectify(sheet.image, grid=grid)
    found = find_layout(rect.image, grid)
    assert found.name == layout
    to_working = rect.transform @ sheet.truth.transform       # clean sheet -> working px
    for p in found.panels:
        t = next(q for q in sheet.truth.panels
                 if (q.lead, q.is_rhythm) == (p.lead, p.is_rhythm))
        x0, y = apply_homography(to_working, np.array([[t.box_px[0], t.baseline_y_px]]))[0]
        assert abs(p.box_px[0] - x0) < 4 and abs(p.baseline_y_px - y) < 4


def test_no_grid_no_pulse_uses_trace_rows(sim_record):
    style = SheetStyle(dpi=100, grid_colour="none", calibration_pulse=False)
    sheet = render_sheet(sim_record, "3x4+1", style)
    spec = detect_grid(sheet.image)
    found = find_layout(sheet.image, spec)
    assert spec.source == "page" and found.name == "3x4+1" and found.pulses == ()
    dx, _ = _match(found, sheet.truth)
    assert dx < 1.0 * sheet.truth.px_per_mm[0]


@pytest.mark.parametrize("pulse", [True, False])
def test_two_profile_peaks_in_one_strip_make_one_row(pulse):
    # seed 7: a lead of the second strip runs ~8 mm above its baseline, so the
    # strip gives two profile peaks (both found its pulse); the extra row broke the
    # even spacing and the first row was dropped ("3x4" from rows 2-4)
    from ecgdigitize.synth import simulate_record

    record = simulate_record(duration_s=10.0, fs=500, heart_rate=72, seed=7)
    sheet = render_sheet(record, "3x4+1", SheetStyle(dpi=100, calibration_pulse=pulse), seed=7)
    found = find_layout(sheet.image, detect_grid(sheet.image))
    assert found.name == "3x4+1"
    assert [p.row for p in found.pulses] == ([0, 1, 2, 3] if pulse else [])
    dx, dy = _match(found, sheet.truth)
    ppm = sheet.truth.px_per_mm[0]
    assert dx < (0.4 if pulse else 1.0) * ppm
    if pulse:
        assert dy < 0.25 * ppm


def test_forced_layout_and_lead_order(sim_record):
    order = ("V1", "V2", "V3", "V4", "V5", "V6", "I", "II", "III", "aVR", "aVL", "aVF")
    sheet = render_sheet(sim_record, "3x4+3", SheetStyle(dpi=100, separators="none"),
                         lead_order=order)
    found = find_layout(sheet.image, detect_grid(sheet.image), layout="3x4+3", lead_order=order)
    assert found.name == "3x4+3"
    assert [p.lead for p in found.panels[:3]] == ["V1", "V2", "V3"]
    assert [p.lead for p in found.panels if p.is_rhythm] == ["II", "V1", "V5"]
    with pytest.raises(ConfigurationError):
        find_layout(sheet.image, detect_grid(sheet.image), layout="4x3")


def test_rhythm_label_is_read(sim_record):
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(font="serif"), rhythm_leads=("III",))
    found = find_layout(sheet.image, detect_grid(sheet.image))
    assert [p.lead for p in found.panels if p.is_rhythm] == ["III"]
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(font="serif"))
    found = find_layout(sheet.image, detect_grid(sheet.image))
    assert [p.lead for p in found.panels if p.is_rhythm] == ["II"]


def test_panel_cells_follow_the_clinical_convention():
    # panel_cells delegates to the renderer's layout table; check the values themselves
    cells = panel_cells("3x4+1")
    assert len(cells) == 13
    assert cells[0] == ("I", 0, 0, 0.0, 2.5, False)
    assert cells[5] == ("aVF", 2, 1, 2.5, 5.0, False)
    assert cells[11] == ("V6", 2, 3, 7.5, 10.0, False)
    assert cells[12] == ("II", 3, 0, 0.0, 10.0, True)
    assert [c[0] for c in panel_cells("6x2") if c[2] == 1] == ["V1", "V2", "V3", "V4", "V5", "V6"]
    assert {(c[3], c[4]) for c in panel_cells("12x1")} == {(0.0, 10.0)}
    assert [c[0] for c in panel_cells("3x4+3") if c[5]] == ["II", "V1", "V5"]
    with pytest.raises(ConfigurationError):
        panel_cells("3x4+1", rhythm_leads=("II", "V1"))
    with pytest.raises(ConfigurationError):
        panel_cells("4x3")


def test_blank_and_sparse_pages_raise():
    grid = GridSpec(4.0, 4.0, "none", None, 0.2, "page")
    with pytest.raises(NoTracesFoundError):
        find_layout(np.full((850, 1100, 3), 255, np.uint8), grid)
    two_rows = np.full((850, 1100, 3), 255, np.uint8)
    for y in (300, 600):
        two_rows[y:y + 2, 50:1050] = 0
        two_rows[y - 30:y, 100::97] = 0   # spikes
    with pytest.raises(LayoutNotFoundError):
        find_layout(two_rows, grid)


def test_crop_panels_follow_the_transform(sim_record):
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100), Degradation(rotation_deg=3.0))
    grid = detect_grid(sheet.image)
    rect = rectify(sheet.image, grid=grid)
    found = find_layout(rect.image, grid)
    result = DigitizedECG(np.zeros((10, 1)), 500.0, ("I",), transform=rect.transform,
                          working_shape=rect.image.shape[:2], panels=found.panels)
    crops = crop_panels(sheet.image, result)
    assert set(crops) == {p.lead for p in found.panels if not p.is_rhythm} | {"II_rhythm"}
    p = found.panels[0]
    x0, y0, x1, y1 = (round(v) for v in p.box_px)
    np.testing.assert_array_equal(crops[p.lead], rect.image[y0:y1, x0:x1])


@pytest.mark.slow
def test_reference_sheets_layout(reference_images_dir):
    from ecgdigitize.io import load_image

    for path in sorted(reference_images_dir.glob("*/*.jpg"))[:4]:
        img = load_image(path)
        found = find_layout(img, detect_grid(img))
        assert found.name == "3x4+1" and len(found.panels) == 13 and len(found.pulses) == 4
        # column separators printed at x = 644, 1136, 1628 (README)
        starts = sorted({round(p.box_px[0]) for p in found.panels if not p.is_rhythm})
        assert np.allclose(starts[1:], [644, 1136, 1628], atol=3)
        # the printed time axis: 492 px per 2.5 s column, not 25 mm/s x grid px/mm
        assert found.px_per_s == pytest.approx(196.8, rel=0.003)
        assert all(abs(b - e) < 8 for b, e in zip(found.row_baselines_px,
                                                   [465, 765, 1066, 1366], strict=True))


@pytest.mark.parametrize(("layout", "speed"), [("3x4+1", 50.0), ("6x2", 50.0), ("12x1", 25.0)])
def test_paper_speed_is_detected_from_the_row_length(sim_record, layout, speed):
    sheet = render_sheet(sim_record, layout, SheetStyle(dpi=100, speed_mm_per_s=speed))
    found = find_layout(sheet.image, detect_grid(sheet.image))
    assert found.name == layout and found.speed_mm_per_s == speed
    ppm = sheet.truth.px_per_mm[0]
    assert found.px_per_s == pytest.approx(speed * ppm, rel=0.01)
    dx, _ = _match(found, sheet.truth)
    assert dx < 0.5 * ppm


def test_detect_speed_splits_at_the_geometric_mean():
    assert [detect_speed(mm) for mm in (200.0, 350.0, 360.0, 520.0)] == [25.0, 25.0, 50.0, 50.0]
    assert detect_speed(250.0, duration_s=5.0) == 50.0


def test_forced_speed_is_kept(sim_record):
    sheet = render_sheet(sim_record, "3x4", SheetStyle(dpi=100))
    found = find_layout(sheet.image, detect_grid(sheet.image), speed_mm_per_s=25.0)
    assert found.speed_mm_per_s == 25.0 and found.name == "3x4"


@pytest.mark.parametrize("dpi", [100, 200])
def test_3x4_plus_3_without_separators_is_told_from_6x2(sim_record, dpi):
    style = SheetStyle(dpi=dpi, separators="none")
    for layout in ("3x4+3", "6x2"):
        sheet = render_sheet(sim_record, layout, style)
        assert find_layout(sheet.image, detect_grid(sheet.image)).name == layout


def test_a_missing_row_of_twelve_is_filled_midway():
    ys = [100.0 + 80.0 * i for i in range(12) if i != 7]   # row 7 (y = 660) gave no peak
    rows = [_Row(y, 10.0, 0.9) for y in ys]
    filled = _even_run_with_hole(rows, 12)
    assert filled is not None and len(filled) == 12
    assert filled[7].y == pytest.approx(660.0) and filled[7].strength == 0.0
    assert [r.y for r in _select_rows(rows, None)] == [100.0 + 80.0 * i for i in range(12)]
    # two holes, or a hole at an edge, are not filled
    assert _even_run_with_hole([r for r in rows if r.y != 260.0], 12) is None
    assert _even_run_with_hole([*rows[:-1], _Row(100.0 + 80 * 13, 10.0, 0.9)], 12) is None


def test_rhythm_pairs_follow_the_rhythm_leads():
    from ecgdigitize.layout import _rhythm_pairs

    assert _rhythm_pairs(None, None) == [(3, 0, 1), (4, 2, 0), (5, 3, 1)]   # II, V1, V5
    assert _rhythm_pairs(None, ("V2", "V3", "V4")) == [(3, 2, 1), (4, 2, 2), (5, 3, 0)]
    assert _rhythm_pairs(None, ("II",)) == []     # not a 3x4+3 set: no pair compared


def test_start_is_read_from_the_separators_to_a_tenth_of_a_pixel(sim_record):
    # 200 dpi: 1 px is 5 ms; a start off by a third of a pixel cost 0.5 dB of SNR
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle())
    found = find_layout(sheet.image, detect_grid(sheet.image))
    dx = [p.box_px[0] - next(q for q in sheet.truth.panels
                             if (q.lead, q.is_rhythm) == (p.lead, p.is_rhythm)).box_px[0]
          for p in found.panels]
    assert np.abs(dx).max() < 0.1


def _spikes_after_every_column_start() -> ECGRecord:
    """QRS complexes 50 ms after 0, 2.5, 5 and 7.5 s (RR 1.25 s), every lead.

    Each falls to -0.8 mV in 20 ms, rises to +1.2 mV in 4 ms (one straight
    stroke across the baseline, as thin as a tick and longer) and returns in 40 ms.
    """
    t = np.arange(5000) / 500.0
    sig = np.zeros_like(t)
    for beat in np.arange(0.05, 10.0, 1.25):
        sig += np.interp(t - beat, [-0.02, 0.0, 0.004, 0.044], [0.0, -0.8, 1.2, 0.0],
                         left=0.0, right=0.0)
        sig += 0.25 * np.exp(-0.5 * ((t - beat - 0.3) / 0.05) ** 2)
    return ECGRecord(np.tile(sig[:, None], (1, 12)) * np.linspace(0.6, 1.0, 12), fs=500.0)


def test_qrs_strokes_at_every_column_start_do_not_move_the_start():
    # the QRS of all three rows of a column fall at one x, 1.25 mm after the tick:
    # a median of one vote per window followed them
    sheet = render_sheet(_spikes_after_every_column_start(), "3x4+1", SheetStyle())
    found = find_layout(sheet.image, detect_grid(sheet.image))
    true_start = sheet.truth.panels[0].box_px[0]
    assert found.panels[0].box_px[0] == pytest.approx(true_start, abs=0.2)


def test_a_scanned_thin_pen_is_laid_out_with_the_loosest_threshold(sim_record) -> None:
    # a half-resolution scan of a fine pen, its strokes lightened to grey: at the
    # usual thresholds one or two rows lack ink along their baseline
    import cv2

    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=200, gain_mm_per_mv=20.0),
                         Degradation.scan(), seed=1)
    gray = sheet.image.min(axis=2)
    light = cv2.erode(255 - gray, np.ones((2, 2), np.uint8))
    img = sheet.image.copy()
    ink = sheet.image.max(axis=2) < 90
    img[ink] = np.clip(255 - light[ink], 0, 255)[:, None]
    rect = rectify(img)
    lay = find_layout(rect.image, detect_grid(rect.image), gain_mm_per_mv=20.0)
    assert lay.name == "3x4+1" and len(lay.pulses) >= 3
    truth_y = sorted({round(p.baseline_y_px) for p in sheet.truth.panels})
    got = np.asarray(lay.row_baselines_px)
    expected = apply_homography(rect.transform @ sheet.truth.transform,
                                np.c_[np.full(4, 500.0), truth_y])[:, 1]
    with_pulse = [p.row for p in lay.pulses]
    assert np.abs(got - expected)[with_pulse].max() < 1.0          # px, the pulse's foot
    assert np.abs(got - expected).max() < 2 * 3.94                 # 2 mm: the ink profile


def test_a_row_whose_pulse_was_missed_starts_after_the_others_pulses() -> None:
    # three rows, each printing a pulse (x 10-30) then its trace from x 40; only
    # the first row's pulse was recognised. The others must not start at their
    # pulse's left stroke (that moved time 0 of every lead 7.5 mm early)
    from ecgdigitize._layout_columns import _trace_start
    from ecgdigitize._layout_rows import _Pulse

    ink = np.zeros((300, 400), bool)
    rows = []
    for y in (50, 150, 250):
        ink[y - 30:y + 1, 10:12] = ink[y - 30:y + 1, 29:31] = True   # sides
        ink[y - 30:y - 28, 10:31] = True                               # top
        ink[y - 1:y + 1, 0:11] = ink[y - 1:y + 1, 30:36] = True        # feet
        ink[y - 1:y + 1, 40:390] = True                                # trace
        rows.append(_Row(float(y), 1.0, 0.9))
    pulses = [_Pulse((10, 20, 30, 50), 30.0, 50.0, 2), None, None]
    start = _trace_start(ink, rows, pulses, (0.0, 0.0, 400.0, 300.0), ppm_x=4.0)
    assert abs(start - 40.5) < 0.01
    assert _trace_start(ink, rows, [None] * 3, (0.0, 0.0, 400.0, 300.0), ppm_x=4.0) < 2


def test_longest_runs_match_a_row_by_row_count():
    from ecgdigitize._layout_columns import _longest_runs
    rng = np.random.default_rng(0)
    for shape, p in (((40, 30), 0.5), ((7, 50), 0.9), ((0, 5), 0.5), ((25, 1), 0.7)):
        win = rng.random(shape) < p
        best, run = np.zeros(shape[1]), np.zeros(shape[1])
        for row in win:
            run = np.where(row, run + 1, 0)
            best = np.maximum(best, run)
        np.testing.assert_array_equal(_longest_runs(win), best)


def test_a_precomputed_grid_weight_gives_the_same_layout_and_is_checked(sim_record):
    from ecgdigitize.grid import grid_mask
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100))
    grid = detect_grid(sheet.image)
    own = find_layout(sheet.image, grid)
    given = find_layout(sheet.image, grid, grid_weight=grid_mask(sheet.image))
    assert given.panels == own.panels and given.name == own.name
    with pytest.raises(ConfigurationError, match="grid_weight"):
        find_layout(sheet.image, grid, grid_weight=np.ones((10, 10), np.float32))
