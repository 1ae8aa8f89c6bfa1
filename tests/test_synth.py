"""Tests of ecgdigitize.synth: the ground truth matches the drawn pixels."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pytest
from scipy import ndimage

from ecgdigitize.errors import ConfigurationError
from ecgdigitize.record import STANDARD_LEADS, ECGRecord
from ecgdigitize.synth import (
    LAYOUTS,
    Degradation,
    SheetStyle,
    layout_cells,
    render_sheet,
    simulate_record,
)
from ecgdigitize.synth.__main__ import main as synth_main
from ecgdigitize.synth.draw import line_profile, text_mask

FAST = SheetStyle(dpi=100)
EXPECTED_PANELS = {"3x4": 12, "3x4+1": 13, "3x4+3": 15, "6x2": 12, "12x1": 12}


def ink_fraction(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, *,
                 radius: int = 1, max_level: int = 110) -> float:
    """Fraction of points within ``radius`` px of a black-ink pixel (all channels dark)."""
    dark = image.max(axis=2) <= max_level  # red/pink/green grid lines keep one bright channel
    near = ndimage.binary_dilation(dark, iterations=radius)
    ok = np.isfinite(xs) & np.isfinite(ys)
    xi = np.clip(np.rint(xs[ok]).astype(int), 0, image.shape[1] - 1)
    yi = np.clip(np.rint(ys[ok]).astype(int), 0, image.shape[0] - 1)
    inside = (xs[ok] >= 0) & (xs[ok] < image.shape[1]) & (ys[ok] >= 0) & (ys[ok] < image.shape[0])
    return float(near[yi[inside], xi[inside]].mean())


def all_points(traces: Mapping[int, tuple[np.ndarray, np.ndarray]]
               ) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate([t[0] for t in traces.values()]),
            np.concatenate([t[1] for t in traces.values()]))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_truth_polylines_lie_on_ink(sim_record: ECGRecord, layout: str) -> None:
    sheet = render_sheet(sim_record, layout, FAST)
    xs, ys = all_points(sheet.truth.traces)
    assert ink_fraction(sheet.image, xs, ys) >= 0.95
    # and the paper away from traces is not ink: shifting the points 3 mm down misses mostly
    assert ink_fraction(sheet.image, xs, ys + 3 * FAST.px_per_mm) < 0.5


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_panels_and_windows(sim_record: ECGRecord, layout: str) -> None:
    truth = render_sheet(sim_record, layout, FAST).truth
    assert len(truth.panels) == EXPECTED_PANELS[layout]
    assert {p.lead for p in truth.panels} == set(STANDARD_LEADS)
    grid = [p for p in truth.panels if not p.is_rhythm]
    n_cols = max(p.col for p in grid) + 1
    for p in grid:
        assert p.t0_s == pytest.approx(10.0 * p.col / n_cols)
        assert p.t1_s - p.t0_s == pytest.approx(10.0 / n_cols)
        width_px = p.box_px[2] - p.box_px[0]
        assert width_px == pytest.approx((p.t1_s - p.t0_s) * 25.0 * FAST.px_per_mm)
        assert p.box_px[1] < p.baseline_y_px < p.box_px[3]
    for p in truth.panels:
        if p.is_rhythm:
            assert (p.t0_s, p.t1_s, p.col) == (0.0, 10.0, 0)


def test_3x4_columns_are_consecutive_windows(sim_record: ECGRecord) -> None:
    panels = render_sheet(sim_record, "3x4", FAST).truth.panels
    window = {p.lead: (p.t0_s, p.t1_s) for p in panels}
    assert window["I"] == window["II"] == window["III"] == (0.0, 2.5)
    assert window["aVR"] == (2.5, 5.0)
    assert window["V1"] == (5.0, 7.5)
    assert window["V6"] == (7.5, 10.0)


def test_lead_order_and_rhythm_leads_are_configurable(sim_record: ECGRecord) -> None:
    order = list(STANDARD_LEADS)[::-1]
    truth = render_sheet(sim_record, "3x4+1", FAST, lead_order=order, rhythm_leads=["V5"]).truth
    first = next(p for p in truth.panels if p.row == 0 and p.col == 0 and not p.is_rhythm)
    assert first.lead == "V6"
    assert [p.lead for p in truth.panels if p.is_rhythm] == ["V5"]
    assert [c.lead for c in layout_cells("3x4+3") if c.is_rhythm] == ["II", "V1", "V5"]
    with pytest.raises(ConfigurationError):
        layout_cells("3x4+1", rhythm_leads=["II", "V1"])


def test_trace_pixels_encode_the_signal(sim_record: ECGRecord) -> None:
    style = SheetStyle(dpi=100, gain_mm_per_mv=20.0, speed_mm_per_s=50.0)
    truth = render_sheet(sim_record, "6x2", style).truth
    px_per_mv = 20.0 * style.px_per_mm
    px_per_s = 50.0 * style.px_per_mm
    for k, p in enumerate(truth.panels):
        xs, ys = truth.traces[k]
        i0 = round(p.t0_s * sim_record.fs)
        expected = sim_record.lead(p.lead)[i0:i0 + len(ys)]
        np.testing.assert_allclose((p.baseline_y_px - ys) / px_per_mv, expected, atol=1e-9)
        np.testing.assert_allclose(np.diff(xs), px_per_s / sim_record.fs)
        assert xs[0] == pytest.approx(p.box_px[0])


def test_reference_is_nan_outside_printed_windows(sim_record: ECGRecord) -> None:
    ref = render_sheet(sim_record, "3x4+1", FAST).truth.reference
    assert ref.fs == sim_record.fs and ref.n_samples == 5000
    printed = np.isfinite(ref.signal).sum(axis=0)
    expected = [5000 if lead == "II" else 1250 for lead in ref.lead_names]
    assert printed.tolist() == expected
    v1 = ref.lead("V1")
    np.testing.assert_array_equal(v1[2500:3750], sim_record.lead("V1")[2500:3750])
    assert np.isnan(v1[:2500]).all() and np.isnan(v1[3750:]).all()


def test_longer_records_use_first_10_s() -> None:
    rec = simulate_record(duration_s=12.0, fs=250.0, seed=2)
    ref = render_sheet(rec, "12x1", FAST).truth.reference
    assert ref.n_samples == 2500
    np.testing.assert_array_equal(ref.lead("I"), rec.lead("I")[:2500])


def test_px_per_mm_and_sizes() -> None:
    rec = simulate_record(fs=250.0, seed=1)
    sheet = render_sheet(rec, "3x4+1", FAST)
    assert sheet.image.shape == (850, 1100, 3) and sheet.image.dtype == np.uint8
    assert sheet.truth.px_per_mm == pytest.approx((100 / 25.4, 100 / 25.4))
    small = render_sheet(rec, "3x4+1", FAST, Degradation(downscale=2.0))
    assert small.image.shape == (425, 550, 3)
    assert small.truth.px_per_mm == pytest.approx((50 / 25.4, 50 / 25.4), rel=1e-3)
    wide = render_sheet(rec, "12x1", FAST.replace(speed_mm_per_s=50.0))
    assert wide.image.shape[1] * 25.4 / 100 > 500  # page widened to hold 10 s at 50 mm/s


def test_grid_period_matches_px_per_mm(sim_record: ECGRecord) -> None:
    style = SheetStyle(dpi=150, grid_colour="green", lead_labels=False)
    sheet = render_sheet(sim_record, "3x4", style)
    x0, y0, x1, _ = (int(v) for v in sheet.truth.grid_box_px)
    row = sheet.image[y0 + 2: y0 + 40, x0:x1].astype(float)
    greenness = (row[..., 1] - row[..., 0]).mean(axis=0)
    spectrum = np.abs(np.fft.rfft(greenness - greenness.mean()))
    freqs = np.fft.rfftfreq(greenness.size)
    band = (freqs > 1 / 20) & (freqs < 1 / 3)
    period = 1 / freqs[band][np.argmax(spectrum[band])]
    assert period == pytest.approx(style.px_per_mm, rel=0.02)


@pytest.mark.parametrize("x", [20.0, 20.3, 20.5, 20.85])
def test_ruled_lines_are_drawn_where_they_are(x: float) -> None:
    # separators are rulers for the digitizer's time axis: their centre must be exact
    m = text_mask((40, 60), [], lines=[(x, 2.0, x, 25.0, 2.36), (5.0, x + 10, 55.0, x + 10, 2.36)])
    cols = m[10].astype(float)        # across the vertical line only
    rows = m[:, 45].astype(float)     # across the horizontal line only
    # (a box-sampled line of non-integer width has its pixel centroid within 0.05 px)
    assert (cols * np.arange(60)).sum() / cols.sum() == pytest.approx(x, abs=0.05)
    assert (rows * np.arange(40)).sum() / rows.sum() == pytest.approx(x + 10, abs=0.05)
    assert cols.sum() == pytest.approx(2.36, abs=0.01)


def test_line_profile_conserves_width() -> None:
    prof = line_profile(50, np.array([10.3, 20.0, 30.75]), 2.5)
    assert prof.sum() == pytest.approx(3 * 2.5)
    assert prof.max() == 1.0


@pytest.mark.parametrize("deg", [
    Degradation(rotation_deg=3.0),
    Degradation(rotation_deg=-2.0, perspective=0.03),
    Degradation(downscale=2.0, blur_sigma_px=0.5),
])
def test_transform_maps_traces_onto_ink(sim_record: ECGRecord, deg: Degradation) -> None:
    sheet = render_sheet(sim_record, "3x4+1", FAST.replace(trace_width_px=2.5), deg, seed=4)
    assert not np.allclose(sheet.truth.transform, np.eye(3))
    xs, ys = all_points(sheet.truth.traces_in_image())
    assert ink_fraction(sheet.image, xs, ys, max_level=150) >= 0.95
    xs0, ys0 = all_points(sheet.truth.traces)  # untransformed points no longer fit
    assert ink_fraction(sheet.image, xs0, ys0, max_level=150) < 0.5


def test_degradations_reproducible_with_seed(sim_record: ECGRecord) -> None:
    deg = Degradation.photo(salt_pepper_fraction=0.001)
    a = render_sheet(sim_record, "3x4+1", FAST, deg, seed=7)
    b = render_sheet(sim_record, "3x4+1", FAST, deg, seed=7)
    c = render_sheet(sim_record, "3x4+1", FAST, deg, seed=8)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.truth.transform, b.truth.transform)
    assert not np.array_equal(a.image, c.image)
    assert not np.allclose(a.truth.transform, c.truth.transform)


@pytest.mark.parametrize("deg", [
    Degradation(blur_sigma_px=1.5), Degradation(gaussian_noise_std=0.05),
    Degradation(salt_pepper_fraction=0.01), Degradation(jpeg_quality=20),
    Degradation(shading=0.5), Degradation(colour_cast=(1.0, 0.8, 0.6)),
])
def test_photometric_degradations_change_pixels_not_geometry(
        sim_record: ECGRecord, deg: Degradation) -> None:
    clean = render_sheet(sim_record, "3x4", FAST)
    dirty = render_sheet(sim_record, "3x4", FAST, deg, seed=1)
    assert dirty.image.shape == clean.image.shape
    np.testing.assert_array_equal(dirty.truth.transform, np.eye(3))
    diff = np.abs(dirty.image.astype(int) - clean.image.astype(int)).mean()
    assert diff > 0.5


def test_colour_cast_multipliers_are_applied(sim_record: ECGRecord) -> None:
    sheet = render_sheet(sim_record, "3x4", FAST.replace(grid_colour="none"),
                         Degradation(colour_cast=(1.0, 0.8, 0.5)))
    paper = sheet.image[5, 5].astype(int)  # top-left corner is blank paper
    assert paper.tolist() == [255, 204, 128]


def test_reference_style_matches_reference_sheets(sim_record: ECGRecord) -> None:
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle.reference())
    assert sheet.image.shape == (1572, 2213, 3)
    x0, y0, x1, y1 = sheet.truth.grid_box_px
    assert (x0, y0, x1, y1) == pytest.approx((68, 283, 2176, 1517), abs=0.6)
    px_per_mm = sheet.truth.px_per_mm[0]
    assert 7.8 < px_per_mm < 8.0
    seps = sorted({p.box_px[0] for p in sheet.truth.panels if p.col > 0})
    assert seps == pytest.approx([644, 1136, 1628], abs=3)


def test_errors(sim_record: ECGRecord) -> None:
    short = ECGRecord(np.zeros((1000, 12)), fs=500.0)
    with pytest.raises(ConfigurationError, match="10 s"):
        render_sheet(short, "3x4", FAST)
    few = ECGRecord(np.zeros((5000, 2)), fs=500.0, lead_names=("I", "II"))
    with pytest.raises(ConfigurationError, match="lacks"):
        render_sheet(few, "3x4", FAST)
    with pytest.raises(ConfigurationError):
        render_sheet(sim_record, "5x5", FAST)
    with pytest.raises(ConfigurationError):
        SheetStyle(grid_colour="purple")
    with pytest.raises(ConfigurationError):
        Degradation(downscale=0.5)


def test_truth_json_and_cli(tmp_path, sim_record: ECGRecord) -> None:
    hea = sim_record.to_wfdb(tmp_path, record_name="rec")
    out, js = tmp_path / "out.png", tmp_path / "out.json"
    rc = synth_main([str(hea), "--layout", "3x4+3", "--dpi", "100", "--rotate", "2",
                     "--jpeg", "80", "-o", str(out), "--truth", str(js)])
    assert rc == 0 and out.stat().st_size > 10_000
    data = json.loads(js.read_text())
    assert data["layout"] == "3x4+3" and len(data["panels"]) == 15
    assert np.asarray(data["transform"]).shape == (3, 3)
    assert len(data["pulses"]) == 6 and len(data["pulses"][0][0]) == 6
    assert data["px_per_mm"][0] == pytest.approx(100 / 25.4, rel=1e-3)
    assert synth_main([str(tmp_path / "missing"), "-o", str(out)]) == 2


def test_cli_gallery_renders_every_layout_and_degradation(tmp_path) -> None:
    assert synth_main(["sim:1", "--dpi", "60", "--gallery", str(tmp_path)]) == 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) == len(LAYOUTS) + 11
    assert "layout_3x4p3.png" in pngs and "degrade_photo.png" in pngs
    truth = json.loads((tmp_path / "layout_12x1.json").read_text())
    assert len(truth["panels"]) == 12


def _pink_frame(image: np.ndarray) -> tuple[int, int, int, int]:
    """Outermost rows/columns that are mostly pink (the reference sheets' grid frame)."""
    rgb = image.astype(int)
    pink = (rgb[..., 0] > 200) & (rgb[..., 0] - rgb[..., 1] > 40)
    cols = np.flatnonzero(pink.mean(axis=0) > 0.5)
    rows = np.flatnonzero(pink.mean(axis=1) > 0.5)
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


@pytest.mark.shared
def test_reference_style_frame_matches_a_real_sheet(sim_record: ECGRecord,
                                                    reference_images_dir) -> None:
    from PIL import Image

    real_path = next(iter(sorted(reference_images_dir.glob("Normal*/*.jpg"))))
    real = np.asarray(Image.open(real_path).convert("RGB"))
    synth = render_sheet(sim_record, "3x4+1", SheetStyle.reference()).image
    assert synth.shape == real.shape
    np.testing.assert_allclose(_pink_frame(synth), _pink_frame(real), atol=3)


@pytest.mark.shared
def test_real_record_renders_with_truth_on_ink(shared_records_dir) -> None:
    from ecgdigitize.synth import load_record

    rec = load_record(shared_records_dir / "E07500.hea")
    assert rec.fs == 500.0 and rec.lead_names == STANDARD_LEADS
    sheet = render_sheet(rec, "3x4+1", FAST)
    xs, ys = all_points(sheet.truth.traces)
    assert ink_fraction(sheet.image, xs, ys) >= 0.95
    np.testing.assert_array_equal(sheet.truth.reference.lead("II"), rec.lead("II")[:5000])
