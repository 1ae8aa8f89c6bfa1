"""Tests of :mod:`ecgdigitize.grid`: grid/ink masks, scale from periodicity, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from ecgdigitize.errors import NoGridFoundError
from ecgdigitize.grid import (
    GridSpec,
    detect_grid,
    find_pulse_boxes,
    find_pulse_scale,
    grid_mask,
    ink_mask,
)
from ecgdigitize.synth import Degradation, SheetStyle, render_sheet

DEGRADED = dict(gaussian_noise_std=0.02, blur_sigma_px=0.7, jpeg_quality=70)


@pytest.mark.parametrize(
    ("colour", "pattern", "dpi", "rotation_deg"),
    [
        ("red", "solid", 200, 0.0),
        ("pink", "dotted", 200, 4.0),
        ("green", "solid", 100, -7.5),
        ("grey", "solid", 150, 10.0),
        ("grey", "dotted", 200, -2.0),
        ("red", "dotted", 300, 1.5),
    ],
)
def test_scale_and_skew_from_renders(sim_record, colour, pattern, dpi, rotation_deg):
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=dpi, grid_colour=colour,
                                                         grid_pattern=pattern),
                         Degradation(rotation_deg=rotation_deg, **DEGRADED))
    spec = detect_grid(sheet.image)
    true_x, true_y = sheet.truth.px_per_mm
    assert spec.source == "grid"
    assert spec.px_per_mm_x == pytest.approx(true_x, rel=0.01)
    assert spec.px_per_mm_y == pytest.approx(true_y, rel=0.01)
    assert spec.rotation_deg == pytest.approx(rotation_deg, abs=0.3)
    assert 0.5 < spec.confidence <= 1.0


@pytest.mark.parametrize(
    ("dpi", "colour", "seed"),
    [
        (150, "red", 101),   # was 2x: a 10 mm pixel-rounding beat of the 1 mm lines (59.06 px)
        (300, "red", 100),   # was 2x, same beat (118.1 px)
        (100, "grey", 100),  # was 5/3x: the comb locked onto the 3rd harmonic of 5 mm
        (120, "red", 100),   # was 5/3x
    ],
)
def test_scale_has_no_octave_error_on_clean_renders(dpi, colour, seed):
    from ecgdigitize.synth import simulate_record

    record = simulate_record(duration_s=10.0, fs=500.0, heart_rate=70.0, seed=seed)
    sheet = render_sheet(record, "3x4+1", SheetStyle(dpi=dpi, grid_colour=colour), seed=seed)
    spec = detect_grid(sheet.image)
    assert spec.source == "grid"
    assert spec.px_per_mm_x == pytest.approx(dpi / 25.4, rel=0.01)
    assert spec.px_per_mm_y == pytest.approx(dpi / 25.4, rel=0.01)


@pytest.mark.parametrize(("pattern", "colour"), [("solid", "red"), ("dotted", "pink"),
                                                 ("solid", "grey"), ("dotted", "green")])
def test_kind_and_colour_on_clean_sheets(sim_record, pattern, colour):
    sheet = render_sheet(sim_record, "6x2", SheetStyle(grid_colour=colour, grid_pattern=pattern))
    spec = detect_grid(sheet.image)
    assert spec.kind == pattern
    rgb = np.array(spec.colour_rgb, dtype=float)
    if colour in ("red", "pink"):
        assert rgb[0] > rgb[1] + 20
    elif colour == "green":
        assert rgb[1] > rgb[0] + 20
    else:
        assert np.ptp(rgb) < 15


def test_grid_mask_separates_grid_from_ink_and_paper():
    img = np.full((40, 40, 3), 255, np.uint8)
    img[:, 10] = (232, 90, 90)      # red grid line
    img[:, 20] = (200, 200, 200)    # light grey grid line
    img[25, :] = (0, 0, 0)          # trace
    mask = grid_mask(img)
    assert mask[5, 10] > 0.9 and mask[5, 20] > 0.3
    assert mask[5, 30] == 0.0 and mask[25, 30] == 0.0
    ink = ink_mask(img)
    assert ink[25, 30] and not ink[5, 10] and not ink[5, 20]


def test_ink_mask_drops_isolated_dark_dots():
    img = np.full((30, 30, 3), 255, np.uint8)
    img[::8, ::8] = 60              # dark single-pixel grid dots
    img[12, 3:27] = 0              # a trace row away from the dots
    assert ink_mask(img).sum() == 24


def test_pulse_boxes_and_pulse_fallback():
    img = np.full((850, 1100, 3), 255, np.uint8)
    ppm = 4.0
    for base in (200, 420, 640):
        img[base - 40:base + 1, 30:32] = 0
        img[base - 40:base + 1, 50:52] = 0
        img[base - 40:base - 38, 30:52] = 0
        img[base:base + 2, 60:1000] = 0  # flat trace
    boxes = find_pulse_boxes(ink_mask(img), min_height_px=20)
    assert len(boxes) == 3 and all(b[4] for b in boxes)
    assert find_pulse_scale(img) == pytest.approx(ppm, rel=0.03)
    spec = detect_grid(img)
    assert spec.source == "pulse" and spec.kind == "none"
    assert spec.px_per_mm_x == pytest.approx(ppm, rel=0.03)


def test_page_fallback_without_grid_or_pulse(sim_record):
    style = SheetStyle(dpi=100, grid_colour="none", calibration_pulse=False)
    sheet = render_sheet(sim_record, "3x4", style)
    spec = detect_grid(sheet.image)
    assert spec.source == "page"
    assert spec.px_per_mm_x == pytest.approx(sheet.truth.px_per_mm[0], rel=0.02)
    assert spec.confidence < 0.5


def test_blank_square_image_raises():
    with pytest.raises(NoGridFoundError):
        detect_grid(np.full((500, 500, 3), 255, np.uint8))


def test_gridspec_is_frozen():
    spec = GridSpec(8.0, 8.0, "solid", (255, 0, 0), 0.9, "grid")
    with pytest.raises(AttributeError):
        spec.px_per_mm_x = 1.0  # type: ignore[misc]


@pytest.mark.slow
def test_reference_sheets_scale(reference_images_dir):
    from ecgdigitize.io import load_image

    for path in sorted(reference_images_dir.glob("*/*.jpg"))[:3]:
        spec = detect_grid(load_image(path))
        # the dotted 5 mm lines of these sheets are 39.7 px apart (measured by hand)
        assert spec.px_per_mm_x == pytest.approx(7.944, rel=0.005)
        assert spec.px_per_mm_y == pytest.approx(7.944, rel=0.005)
        assert spec.kind == "dotted" and abs(spec.rotation_deg) < 0.1


def test_dark_blue_ink_is_ink_and_not_grid():
    img = np.full((40, 60, 3), 255, np.uint8)
    img[10, 5:55] = (20, 40, 150)      # dark blue trace: its blue channel stays bright
    img[30, 5:55] = (232, 90, 90)      # red grid line
    ink = ink_mask(img)
    assert ink[10, 5:55].all() and not ink[30].any()
    m = grid_mask(img)
    assert m[10, 30] == 0.0 and m[30, 30] > 0.5


def test_blue_trace_sheet_without_grid_is_not_read_as_a_grid(sim_record):
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=150, grid_colour="none",
                                                         trace_colour=(20, 40, 150)))
    spec = detect_grid(sheet.image)
    assert spec.source == "pulse"
    assert spec.px_per_mm_x == pytest.approx(sheet.truth.px_per_mm[0], rel=0.03)


@pytest.mark.parametrize("dpi", [100, 200])
def test_no_grid_sheet_falls_back_from_trace_edge_combs(sim_record, dpi):
    """Anti-aliased trace edges can form a weak comb; a scale that makes the page
    narrower than 150 mm is refused and the pulses give the scale."""
    sheet = render_sheet(sim_record, "6x2", SheetStyle(dpi=dpi, grid_colour="none"),
                         Degradation(blur_sigma_px=0.6, jpeg_quality=75))
    spec = detect_grid(sheet.image)
    assert sheet.image.shape[1] / spec.px_per_mm_x > 150
    assert spec.px_per_mm_x == pytest.approx(sheet.truth.px_per_mm[0], rel=0.03)


def test_pulse_fallback_finds_50_mm_per_s_pulses(sim_record):
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100, grid_colour="none",
                                                         speed_mm_per_s=50.0))
    spec = detect_grid(sheet.image)
    assert spec.source == "pulse"
    assert spec.px_per_mm_x == pytest.approx(sheet.truth.px_per_mm[0], rel=0.03)


@pytest.mark.parametrize("gain", [5.0, 20.0])
def test_pulse_fallback_reads_the_gain_against_the_page_height(sim_record, gain):
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=150, grid_colour="none",
                                                         gain_mm_per_mv=gain))
    spec = detect_grid(sheet.image)
    assert spec.source == "pulse"
    assert spec.px_per_mm_x == pytest.approx(sheet.truth.px_per_mm[0], rel=0.03)

    class Forced:
        speed_mm_per_s, gain_mm_per_mv = None, 10.0   # a wrong gain, forced: kept

    forced = detect_grid(sheet.image, config=Forced())
    assert forced.px_per_mm_x == pytest.approx(sheet.truth.px_per_mm[0] * gain / 10, rel=0.03)


def test_pulse_fallback_finds_a_wide_low_gain_pulse_at_50_mm_per_s(sim_record):
    # 5 mm/mV at 50 mm/s: the pulse is twice as wide as tall, a shape the 10 mm/mV
    # search rejects; and the render (10 s rows at 50 mm/s) is wider than any page,
    # so the page size cannot stand in
    sheet = render_sheet(sim_record, "3x4", SheetStyle(dpi=150, grid_colour="none",
                                                       gain_mm_per_mv=5.0, speed_mm_per_s=50.0))
    spec = detect_grid(sheet.image)
    assert spec.source == "pulse"
    assert spec.px_per_mm_x == pytest.approx(sheet.truth.px_per_mm[0], rel=0.03)


def test_a_thumbnail_without_a_usable_grid_is_refused():
    """A 240x180 px letter-shaped image would be 0.86 px/mm: far too coarse to trace."""
    img = np.full((180, 240, 3), 255, np.uint8)
    img[40:140:6, 20:220:2] = (240, 150, 160)
    img[90, 20:220] = 0
    with pytest.raises(NoGridFoundError, match="too coarse"):
        detect_grid(img)


def test_flat_field_evens_out_shading_and_keeps_lines():
    from ecgdigitize.grid import _flat_field

    h, w = 400, 600
    img = np.full((h, w, 3), 255, np.float32)
    img[:, ::8] = (240, 180, 180)                            # faint red lines every 8 px
    gain = 1.0 - 0.5 * np.arange(w, dtype=np.float32)[None, :] / w   # light falls to 50 %
    shaded = np.clip(img * gain[..., None], 0, 255).astype(np.uint8)
    flat = _flat_field(shaded)
    paper = flat[:, 4::8].max(axis=2)                        # columns between the lines
    assert paper[:, 5:-5].min() >= 245                       # paper is white again, both sides
    line = flat[:, 8 * 70, 1]                                # a line on the dark side
    assert 150 < np.median(line) < 200                       # still about 180/255 of the paper


@pytest.mark.parametrize("seed", range(5))
def test_vertical_strokes_equal_the_whole_image_search(seed):
    """Strokes are searched only in the columns that can hold one; the result must
    equal eroding, dilating and labelling the whole image."""
    import cv2

    from ecgdigitize.grid import _vertical_strokes
    rng = np.random.default_rng(seed)
    ink = rng.random((120, 160)) < 0.05
    for _ in range(10):  # strokes 1-4 px wide, some side by side or diagonal neighbours
        x, y, n, w = (int(v) for v in rng.integers((0, 0, 10, 1), (156, 100, 60, 5)))
        ink[y:y + n, x:x + w] = True
    ink[10:50, 20] = ink[50:90, 21] = True  # diagonal neighbours: one component
    ink[100:, 150:152] = True               # ends at the bottom border
    min_len = 15
    kernel = np.ones((min_len, 1), np.uint8)
    tall = cv2.erode(ink.astype(np.uint8), kernel, anchor=(0, min_len - 1),
                     borderType=cv2.BORDER_CONSTANT, borderValue=0)
    _, _, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(tall, kernel, anchor=(0, 0)),
                                                      connectivity=8)
    expected = sorted((int(x), int(x + w), int(h), int(y + h - 1))
                      for x, y, w, h, _ in stats[1:] if w <= max(6, h // 6))
    assert len(expected) >= 3
    assert _vertical_strokes(ink, min_len) == expected
    assert _vertical_strokes(np.zeros((50, 50), bool), 10) == []
