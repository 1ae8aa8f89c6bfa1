"""Tests of :mod:`ecgdigitize.geometry`: skew, quarter turns, page outline, rectification."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ecgdigitize.errors import InputError
from ecgdigitize.geometry import (
    Rectified,
    _rotate,
    detect_page_orientation,
    estimate_rotation,
    find_page_quad,
    rectify,
    resample_sharp,
)
from ecgdigitize.grid import detect_grid
from ecgdigitize.synth import Degradation, SheetStyle, apply_homography, render_sheet


@pytest.fixture(scope="module")
def clean_sheet(sim_record):
    return render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100))


@pytest.mark.parametrize("rotation_deg", [-10.0, -4.0, 0.0, 2.5, 7.0, 10.0])
def test_rotation_from_grid_within_0_3_deg(sim_record, rotation_deg):
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100),
                         Degradation(rotation_deg=rotation_deg, blur_sigma_px=0.5))
    assert estimate_rotation(sheet.image) == pytest.approx(rotation_deg, abs=0.3)


@pytest.mark.parametrize("rotation_deg", [-6.0, 3.0])
def test_rotation_without_grid_from_trace_baselines(sim_record, rotation_deg):
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100, grid_colour="none"),
                         Degradation(rotation_deg=rotation_deg))
    assert estimate_rotation(sheet.image) == pytest.approx(rotation_deg, abs=1.0)


@pytest.mark.parametrize("layout", ["3x4+1", "6x2", "12x1"])
@pytest.mark.parametrize("quarter_turns", [0, 1, 2, 3])
def test_page_orientation(sim_record, layout, quarter_turns):
    sheet = render_sheet(sim_record, layout, SheetStyle(dpi=100))
    turned = np.ascontiguousarray(np.rot90(sheet.image, quarter_turns))  # CCW turns
    assert detect_page_orientation(turned) == 90 * quarter_turns


@pytest.mark.parametrize("quarter_turns", [0, 1, 2, 3])
def test_page_orientation_of_skewed_sheet_with_grid(sim_record, quarter_turns):
    sheet = render_sheet(sim_record, "12x1", SheetStyle(dpi=100), Degradation(rotation_deg=-7.0))
    turned = np.ascontiguousarray(np.rot90(sheet.image, quarter_turns))
    grid = detect_grid(turned)
    assert detect_page_orientation(turned, grid=grid) == 90 * quarter_turns


def test_page_orientation_takes_the_skew_of_a_sure_grid(sim_record, monkeypatch):
    # the ink-based skew search (two shrinks and 57 rotations) runs only without a sure grid
    import dataclasses

    from ecgdigitize import geometry

    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100), Degradation(rotation_deg=4.0))
    turned = np.ascontiguousarray(np.rot90(sheet.image, 2))
    grid = detect_grid(turned)
    calls = []

    def counted(img):
        calls.append(img.shape)
        return 4.0

    monkeypatch.setattr(geometry, "_rotation_from_ink", counted)
    assert detect_page_orientation(turned, grid=grid) == 180
    assert calls == []
    weak = dataclasses.replace(grid, confidence=0.1)
    assert detect_page_orientation(turned, grid=weak) == 180
    assert len(calls) == 1


def test_digitize_does_not_search_the_skew_of_a_gridded_sheet(clean_sheet, monkeypatch):
    from ecgdigitize import digitize, geometry

    def refuse(img):
        raise AssertionError("the grid gave the skew already")

    monkeypatch.setattr(geometry, "_rotation_from_ink", refuse)
    assert digitize(clean_sheet.image).layout == "3x4+1"


def test_a_forced_orientation_replaces_the_up_down_test(clean_sheet, monkeypatch):
    from ecgdigitize import DigitizeConfig, digitize, geometry
    from ecgdigitize.metrics import score_record

    def refuse(*args, **kwargs):
        raise AssertionError("the orientation was given")

    monkeypatch.setattr(geometry, "detect_page_orientation", refuse)
    turned = np.ascontiguousarray(np.rot90(clean_sheet.image, 2))
    res = digitize(turned, config=DigitizeConfig(orientation=180))
    assert res.extras["orientation_deg"] == 180
    assert score_record(clean_sheet.truth.reference, res).attrs["mean_snr_db"] > 15
    wrong = digitize(turned, config=DigitizeConfig(orientation=0))   # read as given: garbage
    assert not score_record(clean_sheet.truth.reference, wrong).attrs["mean_snr_db"] > 5


@pytest.mark.parametrize(("balance_off_skew", "want"), [(-0.6, 180), (0.0, 0), (1e9, 0)])
def test_wave_balance_turns_a_sheet_only_if_a_skew_error_would_too(
        clean_sheet, monkeypatch, balance_off_skew, want):
    # no pulse voted, the wave balance says "upside down" (-0.6) at the measured skew;
    # the sheet is turned only if it says so with the skew 0.3 deg off as well
    import dataclasses

    from ecgdigitize import geometry

    grid = dataclasses.replace(detect_grid(clean_sheet.image), rotation_deg=1.0)
    skews = []

    def orientation_ink(small, skew):
        skews.append(round(skew, 3))
        return np.full((10, 20), len(skews), np.uint8)   # tells the calls apart

    monkeypatch.setattr(geometry, "_orientation_ink", orientation_ink)
    monkeypatch.setattr(geometry, "_upright_score",
                        lambda ink: -0.6 if ink[0, 0] == 1 else balance_off_skew)
    assert detect_page_orientation(clean_sheet.image, grid=grid) == want
    assert skews[0] == 1.0 and set(skews[1:]) <= {0.7, 1.3}


def test_rectify_undoes_quarter_turn_and_skew(clean_sheet):
    img = clean_sheet.image
    turned = np.ascontiguousarray(np.rot90(img, 1))
    rect = rectify(turned, rotation_deg=0.0, orientation=90)
    assert isinstance(rect, Rectified)
    np.testing.assert_array_equal(rect.image, img)
    h, w = turned.shape[:2]
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float)
    mapped = apply_homography(rect.transform, corners)
    assert sorted(map(tuple, mapped.round().astype(int).tolist())) == sorted(
        [(0, 0), (img.shape[1] - 1, 0), (img.shape[1] - 1, img.shape[0] - 1),
         (0, img.shape[0] - 1)])


def test_rectify_transform_maps_truth_points(sim_record):
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100),
                         Degradation(rotation_deg=5.0))
    grid = detect_grid(sheet.image)
    rect = rectify(sheet.image, grid=grid)
    assert rect.rotation_deg == pytest.approx(5.0, abs=0.1)
    # a pulse corner: clean sheet -> degraded input (truth) -> working (ours)
    xs, ys = sheet.truth.pulses[0]
    clean_pts = np.stack([xs, ys], axis=1)[[1, 2]]          # pulse foot and top
    in_input = apply_homography(sheet.truth.transform, clean_pts)
    working = apply_homography(rect.transform, in_input)
    assert abs(working[0, 0] - working[1, 0]) < 1.0          # the pulse edge is vertical again
    # the working image keeps the grid scale
    assert detect_grid(rect.image).px_per_mm_x == pytest.approx(grid.px_per_mm_x, rel=0.01)


def test_find_page_quad_and_unwarp():
    img = np.full((600, 800, 3), 30, np.uint8)
    quad = np.array([[120, 80], [700, 110], [680, 520], [100, 500]], np.float64)
    cv2.fillConvexPoly(img, quad.astype(np.int32), (250, 250, 250))
    found = find_page_quad(img)
    assert found is not None
    np.testing.assert_allclose(found, quad, atol=6)
    rect = rectify(img, quad=found)
    assert rect.image.mean() > 235                      # only paper is left
    assert find_page_quad(np.full((600, 800, 3), 250, np.uint8)) is None  # a scan: no quad


def test_rectify_rejects_bad_arguments(clean_sheet):
    with pytest.raises(InputError):
        rectify(clean_sheet.image, rotation_deg=0.0, orientation=45)
    with pytest.raises(InputError):
        rectify(clean_sheet.image, quad=np.zeros((3, 2)))


def test_a_shadow_across_the_sheet_is_not_a_page_edge(sim_record):
    """Otsu splits a sheet with a dark shadow band into a lit and a shaded part; the
    lit part has sheet content beside it, so it is not taken for the page."""
    img = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100)).image.astype(np.float32)
    img[:, : img.shape[1] * 2 // 5] *= 0.5
    assert find_page_quad(img.astype(np.uint8)) is None
    photo = np.full((1000, 1300, 3), (90, 85, 80), np.uint8)      # the same sheet on a table
    photo[75:925, 100:1200] = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100)).image
    quad = find_page_quad(photo)
    assert quad is not None and np.abs(quad - [[100, 75], [1199, 75], [1199, 924],
                                               [100, 924]]).max() < 6


def test_the_sharp_copy_has_the_working_geometry_and_keeps_thin_lines_dark() -> None:
    img = np.full((400, 600, 3), 250, np.uint8)
    img[150:152, 40:560] = 0          # two thin lines, 2 px thick
    img[260, 40:560] = 0
    img = _rotate(img, 4.0, (250, 250, 250))[0]   # a 4 degree skew
    rect = rectify(img, rotation_deg=4.0)
    sharp = resample_sharp(img, rect)
    assert sharp.shape == rect.image.shape
    cols = slice(rect.image.shape[1] // 2 - 150, rect.image.shape[1] // 2 + 150)
    dark_lin = np.clip(250.0 - rect.image[:, cols, 0], 0, None)
    dark_sharp = np.clip(250.0 - sharp[:, cols, 0], 0, None)
    line = np.argmax(dark_lin, axis=0)                  # the darker (thicker) line
    near = np.abs(np.arange(dark_lin.shape[0])[:, None] - line) <= 4
    rows = np.arange(dark_lin.shape[0])[:, None]
    # the same line centres (to a tenth of a pixel) ...
    c_lin = (dark_lin * near * rows).sum(axis=0) / (dark_lin * near).sum(axis=0)
    c_sharp = (dark_sharp * near * rows).sum(axis=0) / (dark_sharp * near).sum(axis=0)
    assert np.abs(c_lin - c_sharp).max() < 0.1
    # ... and darker line cores: bilinear resampling spreads a thin line out
    assert dark_sharp.max(axis=0).mean() > dark_lin.max(axis=0).mean() + 5



def _partial_photo(sheet_image: np.ndarray, falloff: float = 0.45
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The sheet moved right on a dark table, its top and right edges out of the frame (no
    page outline to find), with a light fall-off from one corner; and the table's mask."""
    h, w = sheet_image.shape[:2]
    dy, dx = int(0.06 * h), int(0.05 * w)
    out = np.empty_like(sheet_image)
    out[:] = (95, 90, 85)
    page = sheet_image[:h - dy, :w - dx]
    out[:len(page), dx:] = page
    table = np.ones((h, w), bool)
    table[:len(page), dx:] = False
    yy, xx = np.mgrid[0:h, 0:w]
    gain = 1.0 - falloff * np.hypot(xx - w, yy - h) / np.hypot(w, h)
    return np.clip(out * gain[..., None], 0, 255).astype(np.uint8), table


def test_the_table_around_a_partly_photographed_page_is_background(sim_record):
    from ecgdigitize.geometry import find_background, paint_background

    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100))
    img, table = _partial_photo(sheet.image)
    bg = find_background(img)
    assert bg is not None
    assert bg[table].mean() > 0.95          # the table, up to its blurred edge
    assert bg[~table].mean() < 0.01         # the page, dark corner of the fall-off included
    painted = paint_background(img, bg)
    assert painted[table].min() > 150 and np.array_equal(painted[~bg], img[~bg])


@pytest.mark.parametrize("degradation", [None, Degradation.scan(), Degradation(rotation_deg=4.0)])
def test_no_background_on_renders_scans_and_rotated_sheets(sim_record, degradation):
    from ecgdigitize.geometry import find_background

    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100), degradation)
    assert find_background(sheet.image) is None
    shaded, table = _partial_photo(sheet.image)
    rows, cols = np.flatnonzero(~table.all(axis=1)), np.flatnonzero(~table.all(axis=0))
    page = shaded[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    assert find_background(page) is None    # the fall-off alone, no table in the frame


def test_a_photo_with_the_table_in_frame_keeps_its_rows(monkeypatch):
    """A phone photo of a 3x4+1 sheet (gain 20 mm/mV) with a light fall-off: without the
    background search the page edge became a trace row and a true row was dropped (3x4 was
    read, 5.5 dB); with it the layout and the signal are right."""
    import ecgdigitize.geometry as geometry
    from ecgdigitize import digitize
    from ecgdigitize.metrics import score_record
    from ecgdigitize.synth import simulate_record

    rng = np.random.default_rng(1)
    record = simulate_record(seed=1, heart_rate=float(rng.uniform(50, 110)))
    style = SheetStyle(dpi=150, gain_mm_per_mv=20.0, separators="tick", grid_colour="pink",
                       grid_pattern="dotted")
    sheet = render_sheet(record, "3x4+1", style, Degradation.photo(rotation_deg=-2.244), seed=1)
    h, w = sheet.image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)   # a fall-off and a shadow band
    gain = 1.0 - 0.45 * np.hypot(xx - cx, yy - cy) / np.hypot(w, h)
    gain *= 1.0 - 0.2 * np.exp(-((xx - rng.uniform(0.2, 0.8) * w) / (0.08 * w)) ** 2)
    img = np.clip(sheet.image * gain[..., None], 0, 255).astype(np.uint8)
    assert geometry.find_page_quad(img) is None and geometry.find_background(img) is not None
    res = digitize(img)
    assert res.layout == "3x4+1"
    assert score_record(sheet.truth.reference, res).attrs["mean_snr_db"] > 20
    monkeypatch.setattr(geometry, "find_background", lambda rgb: None)
    assert digitize(img).layout != "3x4+1"  # the failure this guards against
