"""Tests of ecgdigitize.pipeline (digitize, digitize_panels), config and overlay."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

import ecgdigitize
from ecgdigitize.config import DigitizeConfig
from ecgdigitize.errors import ConfigurationError, DigitizationError, NoTracesFoundError
from ecgdigitize.metrics import score_record
from ecgdigitize.overlay import trace_polylines
from ecgdigitize.pipeline import DigitizationWarning, digitize_panels
from ecgdigitize.record import ECGRecord
from ecgdigitize.result import Calibration, DigitizedECG
from ecgdigitize.synth import Degradation, SheetStyle, render_sheet

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def sheet(sim_record):
    return render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100))


@pytest.fixture(scope="module")
def result(sheet) -> DigitizedECG:
    return ecgdigitize.digitize(sheet.image)


def truth_calibration(truth) -> Calibration:
    return Calibration(*truth.px_per_mm, truth.speed_mm_per_s, truth.gain_mm_per_mv)


def test_digitize_recovers_layout_scale_and_signal(sheet, result) -> None:
    assert isinstance(result, DigitizedECG)
    assert result.layout == "3x4+1"
    assert result.signal.shape == (5000, 12) and result.fs == 500.0
    ppx, ppy = result.px_per_mm
    assert ppx == pytest.approx(sheet.truth.px_per_mm[0], rel=0.01)
    assert ppy == pytest.approx(sheet.truth.px_per_mm[1], rel=0.01)
    scores = score_record(sheet.truth.reference, result)
    assert scores.attrs["mean_snr_db"] > 12.0
    assert (scores["snr_db"].iloc[:-1] > 3.0).all()
    assert min(result.quality.values()) > 0.9


def test_leads_are_nan_outside_their_windows(result) -> None:
    v1 = result.lead("V1")          # column 3: 5.0-7.5 s
    assert np.isnan(v1[:2400]).all() and np.isnan(v1[3800:]).all()
    assert np.isfinite(v1[2550:3700]).mean() > 0.98
    assert np.isfinite(result.lead("II")).mean() > 0.98   # rhythm strip: full 10 s


def test_stage_times_and_metadata(result) -> None:
    for stage in ("load", "grid", "geometry", "layout", "traces", "calibrate", "clean"):
        assert result.stage_times_s[stage] >= 0.0
    assert len(result.panels) == 13
    assert result.lead_info["V1"]["t0_s"] == 5.0
    assert result.transform.shape == (3, 3)


def test_a_path_names_the_record_and_its_source(sheet, tmp_path) -> None:
    # the lattice step once reused the name of the input argument for its image
    from PIL import Image

    path = tmp_path / "ward3_bed12.png"
    Image.fromarray(np.asarray(sheet.image)).save(path)
    res = ecgdigitize.digitize(path)
    assert res.name == "ward3_bed12" and res.source == str(path)


def test_digitize_is_deterministic(sheet, result) -> None:
    again = ecgdigitize.digitize(sheet.image)
    assert np.array_equal(result.signal, again.signal, equal_nan=True)


def test_fs_keyword_sets_the_output_rate(sheet) -> None:
    res = ecgdigitize.digitize(sheet.image, fs=250)
    assert res.fs == 250.0 and res.signal.shape == (2500, 12)


def test_blanked_panel_gives_nan_low_quality_and_a_warning(sheet) -> None:
    image = sheet.image.copy()
    panel = next(p for p in sheet.truth.panels if p.lead == "V2")
    x0, _, x1, _ = (round(v) for v in panel.box_px)
    top, bottom = int(panel.baseline_y_px - 60), int(panel.baseline_y_px + 60)
    image[top:bottom, x0 + 2:x1 - 2] = 255
    with pytest.warns(DigitizationWarning, match="V2"):
        res = digitize_panels(image, sheet.truth.panels, truth_calibration(sheet.truth))
    assert np.isnan(res.lead("V2")).all()
    assert res.quality["V2"] < 0.35
    assert any("V2" in w for w in res.warnings)
    assert np.isfinite(res.lead("V1")).sum() > 1000


def test_blank_page_raises_a_typed_error() -> None:
    blank = np.full((850, 1100, 3), 255, np.uint8)
    with pytest.raises(DigitizationError):
        ecgdigitize.digitize(blank)
    with pytest.raises(NoTracesFoundError):
        digitize_panels(blank, [], Calibration(4.0, 4.0))


def test_cleaning_flags_are_applied(sheet) -> None:
    cal = truth_calibration(sheet.truth)
    raw = digitize_panels(sheet.image, sheet.truth.panels, cal)
    cfg = DigitizeConfig(remove_baseline=True, notch_hz=50)
    clean = digitize_panels(sheet.image, sheet.truth.panels, cal, config=cfg)
    ii_raw, ii_clean = raw.lead("II"), clean.lead("II")
    assert np.isnan(ii_clean).sum() == np.isnan(ii_raw).sum()
    assert abs(np.nanmean(ii_clean)) < abs(np.nanmean(ii_raw)) + 1e-9
    assert not np.allclose(ii_raw, ii_clean, equal_nan=True)


def test_overlay_maps_traces_back_to_input_pixels(sheet, result) -> None:
    lines = trace_polylines(result)
    assert len(lines) == 13
    k = next(i for i, p in enumerate(sheet.truth.panels) if p.lead == "V4")
    xs, ys = sheet.truth.traces[k]
    _, x, y = next(item for item in lines if item[0] == "V4")
    err = np.nanmedian(np.abs(np.interp(xs, x, y) - ys))
    assert err < 1.5
    ax = result.plot_overlay(sheet.image)
    assert len(ax.lines) == 13


@pytest.mark.parametrize("changes", [{"fs": 0}, {"layout": "5x5"}, {"notch_hz": 400.0},
                                     {"peak_mode": "magic"}, {"min_quality": 2.0},
                                     {"gain_mm_per_mv": -1.0}, {"jump_cost": -0.1},
                                     {"orientation": 45}, {"orientation": -90}])
def test_config_rejects_bad_values(changes) -> None:
    with pytest.raises(ConfigurationError):
        DigitizeConfig(**changes)


def test_config_is_frozen_and_exported() -> None:
    cfg = ecgdigitize.DigitizeConfig()
    with pytest.raises(AttributeError):
        cfg.fs = 100  # type: ignore[misc]
    assert cfg.replace(fs=100).fs == 100.0
    assert ecgdigitize.digitize is not None and ecgdigitize.DigitizedECG is DigitizedECG


def test_fine_images_are_traced_on_a_shrunk_copy(sheet, monkeypatch) -> None:
    """A 4x upscaled sheet (15.7 px/mm) is shrunk for tracing; results stay in its coordinates."""
    from dataclasses import replace

    import cv2

    import ecgdigitize.pipeline as pipeline

    f = 4.0
    big = cv2.resize(sheet.image, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
    panels = [replace(p, box_px=tuple((v + 0.5) * f - 0.5 for v in p.box_px),
                      baseline_y_px=(p.baseline_y_px + 0.5) * f - 0.5)
              for p in sheet.truth.panels]
    t = sheet.truth
    cal = Calibration(t.px_per_mm[0] * f, t.px_per_mm[1] * f, 25.0, 10.0)
    shrunk = digitize_panels(big, panels, cal)
    monkeypatch.setattr(pipeline, "TRACE_PX_PER_MM", 1000.0)     # no shrinking
    full = digitize_panels(big, panels, cal)
    assert shrunk.working_shape == full.working_shape == big.shape[:2]
    snr_shrunk = score_record(t.reference, shrunk).attrs["mean_snr_db"]
    snr_full = score_record(t.reference, full).attrs["mean_snr_db"]
    assert snr_shrunk > snr_full - 1.0
    a, b = shrunk.extras["traces"].traces[0], full.extras["traces"].traces[0]
    assert a.panel == panels[0]
    assert abs(np.nanmedian(a.y_px) - np.nanmedian(b.y_px)) < 2.0   # same (big) px, 0.13 mm


@pytest.mark.parametrize("gain", [5.0, 20.0])
def test_gain_is_read_from_the_calibration_pulse(sim_record, gain: float) -> None:
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100, gain_mm_per_mv=gain))
    res = ecgdigitize.digitize(sheet.image)
    assert res.calibration is not None and res.calibration.gain_mm_per_mv == gain
    assert score_record(sheet.truth.reference, res).attrs["mean_snr_db"] > 10.0
    forced = ecgdigitize.digitize(sheet.image, config=DigitizeConfig(gain_mm_per_mv=10.0))
    assert forced.calibration.gain_mm_per_mv == 10.0


def test_faint_pulses_of_a_blue_pen_give_the_gain(sim_record) -> None:
    # a half-resolution scan of a dark-blue pen: the pulses' thin side strokes break
    # up at the usual ink threshold (the traces still hold together), so the pulse
    # search alone looks again more loosely; the gain was read as the 10 mm/mV default
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=150, gain_mm_per_mv=20.0),
                         Degradation.scan(), seed=1)
    img = sheet.image.astype(np.float32)
    alpha = (1 - img.max(axis=2) / 255.0)[..., None]
    img = np.clip(img * (1 - alpha) + alpha * np.array([20, 40, 150]), 0, 255).astype(np.uint8)
    res = ecgdigitize.digitize(img)
    assert res.calibration.gain_mm_per_mv == 20.0
    assert score_record(sheet.truth.reference, res).attrs["mean_snr_db"] > 15.0


def test_a_fine_pen_with_faint_qrs_strokes_is_traced_again_more_lightly(sim_record) -> None:
    # a half-resolution scan of a fine pen, strokes lightened to grey: flat stretches
    # stay above the usual ink contrast but the thin QRS strokes fall below it, so
    # every lead is found yet patchy (ink under ~70 % of its columns)
    import cv2

    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=200), Degradation.scan(), seed=1)
    light = cv2.erode(255 - sheet.image.min(axis=2), np.ones((2, 2), np.uint8))
    img = sheet.image.copy()
    ink = sheet.image.max(axis=2) < 90
    img[ink] = np.clip(255 - light[ink], 0, 255)[:, None]
    res = ecgdigitize.digitize(img)
    assert np.median(list(res.quality.values())) > 0.9
    assert score_record(sheet.truth.reference, res).attrs["mean_snr_db"] > 12.0


def test_a_sheet_half_in_shadow_is_traced_in_the_shadow_too(sheet) -> None:
    # light falling off to 35 % towards the left edge: ink and paper dim alike, so
    # ink darkness is measured relative to the paper (absolute darkness lost leads
    # in the shadow: quality down to 0.76 and 12.8 dB)
    w = sheet.image.shape[1]
    light = np.clip(0.35 + 0.975 * np.arange(w) / w, 0.35, 1.0)
    res = ecgdigitize.digitize((sheet.image * light[None, :, None]).astype(np.uint8))
    assert min(res.quality.values()) > 0.9
    assert score_record(sheet.truth.reference, res).attrs["mean_snr_db"] > 14.0


def test_the_gain_with_pulses_in_the_most_rows_wins(monkeypatch) -> None:
    # a lone pulse-like box of the 10 mm size must not outvote 20 mm pulses printed
    # at the start of every row; a size whose false pulses break the rows is skipped
    from types import SimpleNamespace

    import ecgdigitize.layout as layout_module
    from ecgdigitize.errors import LayoutNotFoundError
    from ecgdigitize.pipeline import _find_layout

    def fake(image, grid, *, gain_mm_per_mv, **kwargs):
        if gain_mm_per_mv == 5.0:
            raise LayoutNotFoundError("rows broken by false pulses")
        n = {10.0: 1, 20.0: 4}[gain_mm_per_mv]
        return SimpleNamespace(gain=gain_mm_per_mv, pulses=(None,) * n,
                               row_baselines_px=(1.0, 2.0, 3.0, 4.0))

    monkeypatch.setattr(layout_module, "find_layout", fake)
    assert _find_layout(None, None, DigitizeConfig()).gain == 20.0
    monkeypatch.setattr(layout_module, "find_layout",
                        lambda *a, **k: (_ for _ in ()).throw(LayoutNotFoundError("none")))
    with pytest.raises(LayoutNotFoundError, match="none"):
        _find_layout(None, None, DigitizeConfig())


def test_digitize_detects_50_mm_per_s(sim_record) -> None:
    sheet = render_sheet(sim_record, "6x2", SheetStyle(dpi=100, speed_mm_per_s=50.0))
    res = ecgdigitize.digitize(sheet.image)
    assert res.calibration.speed_mm_per_s == 50.0 and res.layout == "6x2"
    assert res.lead_info["V1"]["t0_s"] == 5.0
    assert score_record(sheet.truth.reference, res).attrs["mean_snr_db"] > 10.0
    forced = ecgdigitize.digitize(sheet.image, config=DigitizeConfig(speed_mm_per_s=25.0))
    assert forced.calibration.speed_mm_per_s == 25.0


def test_given_speed_reads_a_sheet_that_prints_5_s_per_row(sim_record) -> None:
    # A 50 mm/s sheet on letter paper shows 5 s per row. Geometrically it is a 25 mm/s
    # render read at 50 mm/s: each 3x4 lead holds 1.25 s and the rhythm strip 5 s of
    # the truth played twice as fast.
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100))
    res = ecgdigitize.digitize(sheet.image, config=DigitizeConfig(speed_mm_per_s=50.0))
    assert res.layout == "3x4+1" and res.calibration.speed_mm_per_s == 50.0
    assert (res.lead_info["aVR"]["t0_s"], res.lead_info["V6"]["t1_s"]) == (1.25, 5.0)
    assert min(res.quality.values()) > 0.9
    read = res.signal[:, 1]
    assert np.isfinite(read[:2400]).all() and np.isnan(read[2600:]).all()
    truth = sheet.truth.reference.signal[::2, 1][:2400]
    assert np.corrcoef(read[:2400], truth)[0, 1] > 0.98


@pytest.mark.parametrize("layout", ["3x4+1", "6x2"])
def test_gridless_sheet_takes_its_time_axis_from_the_printed_row(sim_record, layout) -> None:
    # no grid: the pulse gives the scale to about 1 %, the printed 10 s row to about 0.2 %
    sheet = render_sheet(sim_record, layout, SheetStyle(dpi=150, grid_colour="none"))
    with pytest.warns(DigitizationWarning, match="not from a grid"):
        res = ecgdigitize.digitize(sheet.image)
    true_ppm = sheet.truth.px_per_mm[0]
    assert res.calibration.source != "grid"
    assert res.calibration.px_per_mm_x == pytest.approx(true_ppm, rel=0.004)
    assert score_record(sheet.truth.reference, res).attrs["mean_snr_db"] > 15.0


def test_carried_grid_follows_the_transform() -> None:
    from ecgdigitize.grid import GridSpec
    from ecgdigitize.pipeline import _carried_grid

    grid = GridSpec(8.0, 6.0, "solid", None, 0.9, "grid", rotation_deg=2.0)
    half = np.diag([0.5, 0.5, 1.0])                       # the page shrunk to half size
    g = _carried_grid(grid, half, (500, 700, 3))
    assert (g.px_per_mm_x, g.px_per_mm_y, g.rotation_deg) == pytest.approx((4.0, 3.0, 0.0))
    turn = np.array([[0.0, -1.0, 999.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # a quarter turn
    g = _carried_grid(grid, turn, (1000, 800, 3))
    assert (g.px_per_mm_x, g.px_per_mm_y) == pytest.approx((6.0, 8.0))


@pytest.mark.parametrize("grey", [120, 140])
@pytest.mark.parametrize("logo", [False, True])
def test_light_grey_pen_is_read(sim_record, grey: int, logo: bool) -> None:
    # A worn or light pen: its strokes are lighter than half the paper level, so the
    # layout and orientation look again with a looser ink threshold; with a black logo
    # on the sheet the darkest ink is not the pen's, and the traces are looked for again
    # at a lower contrast.
    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100, trace_colour=(grey,) * 3))
    img = sheet.image.copy()
    if logo:
        img[20:60, 850:1050] = 0
    res = ecgdigitize.digitize(img)
    assert res.layout == "3x4+1" and res.extras["orientation_deg"] == 0
    assert min(res.quality.values()) > 0.8
    assert score_record(sheet.truth.reference, res).attrs["mean_snr_db"] > 15.0


def test_a_qrs_on_a_column_boundary_is_read_from_its_first_millisecond() -> None:
    # 1 mV upstrokes 40 ms long starting exactly where columns 2-4 start; the first
    # columns of a panel that abuts another are skipped and held, so the skip must
    # stay near the neighbour's pen (0.3 mm held 12 ms and missed by 0.25 mV)
    t = np.arange(5000) / 500.0
    sig = np.zeros_like(t)
    for b in (2.5, 5.0, 7.5):
        sig += np.interp(t - b, [0.0, 0.04, 0.1, 0.2], [0.0, 1.0, 1.0, 0.0], left=0.0, right=0.0)
    record = ECGRecord(np.tile(sig[:, None], (1, 12)), fs=500.0)
    sheet = render_sheet(record, "3x4", SheetStyle(lead_labels=False))
    res = ecgdigitize.digitize(sheet.image)
    for lead in ("aVR", "aVL", "V1", "V2", "V4", "V5"):
        i0 = int(np.flatnonzero(np.isfinite(sheet.truth.reference.lead(lead)))[0])
        assert np.abs(res.lead(lead)[i0:i0 + 10] - sig[i0:i0 + 10]).max() < 0.15


def test_reconstruction_low_pass_follows_the_reading_unless_set(sheet, result) -> None:
    from ecgdigitize.config import FITTED_SMOOTH_PX, SMOOTH_PX
    from ecgdigitize.pipeline import _smooth_px

    assert DigitizeConfig().smooth_px is None
    assert _smooth_px(DigitizeConfig(), fitted=True) == FITTED_SMOOTH_PX < SMOOTH_PX
    assert _smooth_px(DigitizeConfig(), fitted=False) == SMOOTH_PX
    assert _smooth_px(DigitizeConfig(smooth_px=0.0), fitted=True) == 0.0
    with pytest.raises(ConfigurationError, match="smooth_px"):
        DigitizeConfig(smooth_px=-0.1)
    # the sheet's traces were fitted to the ink, and the result says so
    assert result.extras["traces"].fitted
    unfitted = ecgdigitize.digitize(sheet.image, config=DigitizeConfig(fit_ink=False))
    assert not unfitted.extras["traces"].fitted
    # an explicit low-pass is used as given: 0 px leaves the fitted samples rougher
    raw = ecgdigitize.digitize(sheet.image, config=DigitizeConfig(smooth_px=0.0))
    rough = np.nanmean(np.abs(np.diff(raw.signal, 2, axis=0)))
    assert rough > np.nanmean(np.abs(np.diff(result.signal, 2, axis=0)))


def einthoven(record: ECGRecord) -> ECGRecord:
    """``record`` with III and the augmented leads made from I and II, as on a real ECG."""
    from ecgdigitize.fusion import LIMB_LEADS

    sig = record.signal.copy()
    i, ii = sig[:, 0], sig[:, 1]
    for j, lead in enumerate(record.lead_names):
        if lead in LIMB_LEADS:
            a, b = LIMB_LEADS[lead]
            sig[:, j] = a * i + b * ii
    return ECGRecord(sig, record.fs, record.lead_names, name=record.name)


def test_limb_leads_are_fused_from_every_simultaneous_reading(sim_record) -> None:
    sheet = render_sheet(einthoven(sim_record), "3x4+1", SheetStyle(dpi=100))
    result = ecgdigitize.digitize(sheet.image)
    raw = ecgdigitize.digitize(sheet.image, config=DigitizeConfig(fuse_limb_leads=False))
    col1 = slice(20, 1230)                      # I, II, III and the strip, inside the panels
    lead = {k: result.lead(k)[col1] for k in ("I", "II", "III")}
    # fused: Einthoven's law holds exactly; as read from the panels it holds only roughly
    np.testing.assert_allclose(lead["II"], lead["I"] + lead["III"], atol=1e-9)
    gap = raw.lead("II")[col1] - raw.lead("I")[col1] - raw.lead("III")[col1]
    assert np.nanstd(gap) > 1e-3
    # the precordial leads are left as read; the limb leads come closer to the truth
    np.testing.assert_array_equal(result.lead("V3"), raw.lead("V3"))
    limb = ["I", "II", "III", "aVR", "aVL", "aVF"]
    fused = score_record(sheet.truth.reference, result)["snr_db"][limb]
    plain = score_record(sheet.truth.reference, raw)["snr_db"][limb]
    assert fused.mean() > plain.mean() + 1.0
    # leads are NaN where they were not printed, fused or not
    assert np.isnan(result.lead("I")[1300:]).all() and np.isnan(result.lead("aVF")[:1200]).all()


def test_limb_leads_that_break_einthoven_are_left_out_of_the_fit(sheet, result) -> None:
    # NeuroKit2's simulated limb leads do not obey Einthoven's law (III is 9 dB off I and
    # II; aVR does not match I and II at all): III is left out of column 1's fit, which
    # then only averages the two readings of II (panel and strip); column 2 is left alone
    raw = ecgdigitize.digitize(sheet.image, config=DigitizeConfig(fuse_limb_leads=False))
    changed = [lead for j, lead in enumerate(result.lead_names)
               if not np.allclose(result.signal[:, j], raw.signal[:, j], atol=1e-12,
                                  equal_nan=True)]
    assert changed == ["II"]
    ii = result.lead("II")
    assert np.allclose(ii[1250:], raw.lead("II")[1250:], equal_nan=True)
    panel = next(t for t in result.extras["traces"] if t.lead == "II" and not t.panel.is_rhythm)
    from ecgdigitize.calibrate import trace_to_samples

    idx, read = trace_to_samples(panel, result.calibration, result.fs, smooth_px=0.2)
    strip = raw.lead("II")[idx]
    lo, hi = np.minimum(read, strip), np.maximum(read, strip)
    inside = (ii[idx] >= lo - 1e-9) & (ii[idx] <= hi + 1e-9)
    assert inside[np.isfinite(read)].mean() > 0.95     # between its two readings
