"""Tests of ecgclassify.features: known-truth synthetic beats, NaN handling, the transformer."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from scipy.special import expit

from ecgclassify import features as F
from ecgclassify.features import (
    FEATURES,
    ECGFeatureExtractor,
    extract_features,
    feature_names,
    features_table_markdown,
)
from ecgdigitize.errors import ConfigurationError
from ecgdigitize.record import STANDARD_LEADS, ECGRecord

FS = 500.0
#: Columns of a 3x4 sheet: lead -> column (2.5 s each).
COLUMN = {"I": 0, "II": 0, "III": 0, "aVR": 1, "aVL": 1, "aVF": 1,
          "V1": 2, "V2": 2, "V3": 2, "V4": 3, "V5": 3, "V6": 3}


def _gauss(t: np.ndarray, mu: float, sd: float, amp: float) -> np.ndarray:
    return amp * np.exp(-0.5 * ((t - mu) / sd) ** 2)


def gaussian_record(hr: float = 60.0, *, rr_jitter: float = 0.0, r_mv: float = 1.0,
                    q_mv: float = 0.0, s_mv: float = 0.3, t_mv: float = 0.3,
                    st_mv: float = 0.0, seed: int = 0, layout: str = "3x4+1",
                    duration_s: float = 10.0) -> ECGRecord:
    """A 12-lead record of Gaussian P-Q-R-S-T beats with known amplitudes (mV).

    Every lead is the same beat (so per-lead truth is the arguments);
    ``rr_jitter`` is the relative SD of RR intervals; ``layout="3x4+1"``
    keeps each lead only in its 2.5 s column and lead II over 10 s.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * FS)) / FS
    x = np.zeros_like(t)
    beat_t = 0.4
    while beat_t < duration_s + 0.5:
        x += _gauss(t, beat_t - 0.16, 0.02, 0.12)
        x += _gauss(t, beat_t - 0.035, 0.008, -q_mv)
        x += _gauss(t, beat_t, 0.010, r_mv)
        x += _gauss(t, beat_t + 0.03, 0.008, -s_mv)
        x += st_mv * (expit((t - beat_t - 0.06) / 0.005) - expit((t - beat_t - 0.22) / 0.02))
        x += _gauss(t, beat_t + 0.30 * np.sqrt(60 / hr), 0.045, t_mv)  # QT shortens with RR
        beat_t += 60.0 / hr * (1 + rr_jitter * rng.standard_normal())
    sig = np.tile(x[:, None], (1, 12)) + rng.normal(0, 0.005, (t.size, 12))
    if layout == "3x4+1":
        col_len = int(2.5 * FS)
        for j, lead in enumerate(STANDARD_LEADS):
            mask = np.ones(t.size, bool)
            mask[COLUMN[lead] * col_len:(COLUMN[lead] + 1) * col_len] = False
            if lead != "II":
                sig[mask, j] = np.nan
    return ECGRecord(sig, FS, STANDARD_LEADS, name=f"gauss{seed}")


def test_feature_names_match_table() -> None:
    names = feature_names()
    assert len(names) == len(set(names)) == 39 + (7 + 28) * 12
    assert all(n in FEATURES or f"{{lead}}_{n.split('_', 1)[1]}" in FEATURES for n in names)
    table = features_table_markdown()
    assert "| `hr_bpm` | 1/min |" in table and "`{lead}_st60_mv`" in table
    assert "st60_mv" in (extract_features.__doc__ or "")


@pytest.mark.parametrize("hr", [50.0, 75.0, 120.0])
def test_heart_rate_and_intervals(hr: float) -> None:
    f = extract_features(gaussian_record(hr))
    assert f["hr_bpm"] == pytest.approx(hr, rel=0.02)
    assert f["rr_mean_s"] == pytest.approx(60 / hr, rel=0.02)
    assert f["rr_irregularity"] < 0.02
    assert f["qtc_s"] == pytest.approx(f["qt_s"] / np.sqrt(f["rr_mean_s"]), rel=1e-9)
    assert 0.03 <= f["qrs_s"] <= 0.12
    assert f["n_leads_missing"] == 0


def test_irregular_rhythm_scores_higher() -> None:
    regular = extract_features(gaussian_record(70, rr_jitter=0.0))
    irregular = extract_features(gaussian_record(70, rr_jitter=0.2, seed=3))
    assert irregular["rr_irregularity"] > 0.1 > regular["rr_irregularity"]
    assert irregular["rr_cv"] > 5 * regular["rr_cv"]


def test_lead_amplitudes_are_recovered_in_every_lead() -> None:
    f = extract_features(gaussian_record(60, r_mv=1.2, s_mv=0.4, t_mv=0.35))
    for lead in STANDARD_LEADS:
        assert f[f"{lead}_r_amp_mv"] == pytest.approx(1.2, abs=0.08), lead
        assert f[f"{lead}_s_amp_mv"] == pytest.approx(-0.4, abs=0.08), lead
        assert f[f"{lead}_t_amp_mv"] == pytest.approx(0.35, abs=0.06), lead
        assert f[f"{lead}_qrs_net_mv"] == pytest.approx(0.8, abs=0.12), lead
        assert abs(f[f"{lead}_st60_mv"]) < 0.05, lead
    assert f["n_q_waves"] == 0 and f["n_st_elevated"] == 0 and f["n_t_inverted"] == 0
    assert f["p_amp_mv"] == pytest.approx(0.12, abs=0.03)
    assert f["ectopic_fraction"] == 0 and f["beat_corr_min"] > 0.95
    assert f["axis_deg"] == pytest.approx(45.0, abs=3.0)  # equal net QRS in I and aVF


def test_q_waves_st_elevation_and_t_inversion_are_detected() -> None:
    f = extract_features(gaussian_record(60, q_mv=0.5, st_mv=0.25, t_mv=-0.4))
    assert f["V2_q_depth_mv"] == pytest.approx(0.5, abs=0.1)
    assert 0.02 <= f["V2_q_width_s"] <= 0.05
    assert f["n_q_waves"] == 11  # every lead but aVR
    assert f["V2_st60_mv"] == pytest.approx(0.25, abs=0.07)
    assert f["n_st_elevated"] == 12
    assert f["V2_t_amp_mv"] < -0.15
    assert f["n_t_inverted"] == 11
    assert f["st_anterior_mv"] == pytest.approx(0.25, abs=0.07)
    assert f["q_inferior_mv"] == pytest.approx(0.5, abs=0.1)
    assert f["st_elev_sum_mv"] == pytest.approx(11 * f["st_lateral_mv"], rel=0.2)
    assert f["t_neg_sum_mv"] == pytest.approx(-11 * f["t_lateral_mv"], rel=0.2)


def test_median_beat_templates_of_every_lead() -> None:
    f = extract_features(gaussian_record(60, r_mv=1.2, s_mv=0.4, t_mv=0.35))
    # the template is the beat itself, from QRS onset: R peak within 40 ms, T near +300 ms
    for lead in STANDARD_LEADS:
        tpl = np.array([f[f"{lead}_beat_{t:+d}ms"] for t in range(-80, 461, 20)])
        assert 0.7 <= np.max(tpl[4:7]) <= 1.25, lead  # R peak 0-40 ms after onset
        assert np.max(tpl[14:]) == pytest.approx(0.35, abs=0.06), lead  # the T wave
        assert abs(tpl[0]) < 0.05, lead  # PR segment at the baseline


def test_missing_leads_give_nan_not_errors() -> None:
    rec = gaussian_record(70)
    sig = rec.to_numpy()
    sig[:, STANDARD_LEADS.index("V4")] = np.nan
    f = extract_features(rec.replace(signal=sig))
    assert f["n_leads_missing"] == 1
    assert np.isnan(f["V4_r_amp_mv"]) and np.isfinite(f["V5_r_amp_mv"])
    assert np.isnan(f["V4_beat_+0ms"]) and np.isfinite(f["V5_beat_+0ms"])
    only_two = ECGRecord(sig[:, :2], FS, ("I", "II"))
    f2 = extract_features(only_two)
    assert f2["n_leads_missing"] == 10 and np.isnan(f2["V1_t_amp_mv"])
    assert f2["hr_bpm"] == pytest.approx(70, rel=0.02)


def test_blank_and_flat_records_warn_once_and_return_nan(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setattr(F, "_warned", False)
    blank = ECGRecord(np.full((5000, 12), np.nan), FS)
    flat = ECGRecord(np.zeros((5000, 12)), FS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fb = extract_features(blank)
        ff = extract_features(flat)
        extract_features(blank)
    assert sum(issubclass(w.category, F.FeatureWarning) for w in caught) == 1
    assert fb["n_leads_missing"] == 12 and np.isnan(fb["hr_bpm"])
    assert np.isnan(ff["hr_bpm"]) and ff["n_beats"] == 0


def test_rhythm_lead_choice_and_error() -> None:
    rec = gaussian_record(70)
    assert F._choose_rhythm_lead(rec, None) == "II"
    with pytest.raises(ConfigurationError, match="rhythm_lead"):
        extract_features(rec, rhythm_lead="X")


def test_without_rhythm_strip_each_lead_finds_its_peaks() -> None:
    rec = gaussian_record(80, layout="3x4+1")
    sig = rec.to_numpy()
    ii = STANDARD_LEADS.index("II")
    sig[int(2.5 * FS):, ii] = np.nan  # a plain 3x4 sheet: II only in column 1
    f = extract_features(rec.replace(signal=sig))
    assert f["hr_bpm"] == pytest.approx(80, rel=0.05)
    assert f["V6_r_amp_mv"] == pytest.approx(1.0, abs=0.1)


def test_real_records_are_fast_and_finite(shared_records_dir) -> None:
    times = []
    for name in ("E07500", "HR06000", "JS00001"):
        rec = ECGRecord.from_wfdb(shared_records_dir / name)
        t0 = time.perf_counter()
        f = extract_features(rec)
        times.append(time.perf_counter() - t0)
        assert 30 < f["hr_bpm"] < 180
        assert sum(np.isfinite(v) for v in f.values()) >= 100
    assert np.median(times) < 1.0  # target 0.3 s; bound loose for a busy CI machine


def test_transformer_shapes_and_names() -> None:
    recs = [gaussian_record(60), gaussian_record(90)]
    ext = ECGFeatureExtractor().fit(recs)
    out = ext.transform(recs)
    assert out.shape == (2, 459)
    names = list(ext.get_feature_names_out())
    assert out[1, names.index("hr_bpm")] == pytest.approx(90, rel=0.02)
    sub = ECGFeatureExtractor(lead_names=("II", "V2")).fit_transform(recs)
    assert sub.shape == (2, 39 + 2 * 35)
    with pytest.raises(ConfigurationError):
        ext.transform(np.zeros((2, 3)))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ext.transform(recs[0])  # type: ignore[arg-type]


@pytest.mark.parametrize("check", [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_repr",
    "check_estimator_cloneable",
    "check_mixin_order",
])
def test_applicable_sklearn_checks(check: str) -> None:
    from sklearn.utils import estimator_checks

    getattr(estimator_checks, check)("ECGFeatureExtractor", ECGFeatureExtractor())


def test_an_ectopic_beat_lowers_beat_correlation() -> None:
    rec = gaussian_record(60)
    sig = rec.to_numpy()
    t = rec.time_s
    sig[:, STANDARD_LEADS.index("II")] += _gauss(t, 4.42, 0.03, -1.5)  # one wide, odd QRS
    f = extract_features(rec.replace(signal=sig))
    base = extract_features(rec)
    assert f["beat_corr_min"] < 0.8 < base["beat_corr_min"]
    assert 0 < f["ectopic_fraction"] <= 0.2 and base["ectopic_fraction"] == 0
    assert f["beat_residual_mv"] > 3 * base["beat_residual_mv"]
