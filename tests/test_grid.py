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
