"""Tests of ecgdigitize.metrics with known values."""

from __future__ import annotations

import numpy as np
import pytest

from ecgdigitize.errors import ConfigurationError
from ecgdigitize.metrics import SNR_CAP_DB, align, mean_snr_db, score_record, snr_db
from ecgdigitize.record import ECGRecord

FS = 500.0


def zero_mean_wave(n: int = 5000, fs: float = FS) -> np.ndarray:
    """1.2 Hz sine plus a 7.2 Hz harmonic over whole periods: mean exactly ~0."""
    t = np.arange(n) / fs
    return np.sin(2 * np.pi * 1.2 * t) + 0.3 * np.sin(2 * np.pi * 7.2 * t)


def windowed(sig: np.ndarray, i0: int, i1: int) -> np.ndarray:
    out = np.full_like(sig, np.nan)
    out[i0:i1] = sig[i0:i1]
    return out


def test_identical_signals_are_infinite() -> None:
    ref = zero_mean_wave()
    assert snr_db(ref, ref, FS) == np.inf
    assert mean_snr_db([np.inf, 10.0]) == pytest.approx((SNR_CAP_DB + 10.0) / 2)


def test_scaled_signal_gives_exact_snr() -> None:
    ref = zero_mean_wave()
    assert snr_db(ref, 0.9 * ref, FS) == pytest.approx(20.0, abs=1e-6)
    assert snr_db(ref, 0.5 * ref, FS) == pytest.approx(10 * np.log10(1 / 0.25), abs=1e-6)


def test_offset_within_limit_is_removed_beyond_is_not() -> None:
    ref = zero_mean_wave()
    assert snr_db(ref, ref + 0.7, FS) == np.inf
    al = align(ref, ref - 0.4, FS)
    assert al.offset_mv == pytest.approx(0.4)
    # 1.5 mV offset: only 1 mV removed, 0.5 mV left over every sample
    power = np.sum(ref ** 2)
    expected = 10 * np.log10(power / (ref.size * 0.5 ** 2))
    assert snr_db(ref, ref + 1.5, FS) == pytest.approx(expected, abs=1e-6)
    # offset alignment off: the official 2024 value
    assert snr_db(ref, ref + 0.7, FS, max_offset_mv=0.0) == pytest.approx(
        10 * np.log10(power / (ref.size * 0.49)), abs=1e-6)


@pytest.mark.parametrize("shift", [-200, -37, 1, 120, 250])
def test_time_shift_within_limit_is_perfect(shift: int) -> None:
    full = zero_mean_wave()
    ref = windowed(full, 1250, 2500)  # a 3x4 panel: printed 2.5-5 s only
    est = np.roll(full, shift)  # estimate late by `shift` samples
    al = align(ref, est, FS)
    assert al.shift_samples == shift
    assert al.shift_s == pytest.approx(shift / FS)
    assert al.snr_db == np.inf and al.coverage == 1.0


def test_shift_beyond_limit_is_penalised() -> None:
    rng = np.random.default_rng(0)  # aperiodic, so no other shift fits
    full = np.convolve(rng.normal(size=5000), np.hanning(25), mode="same")
    ref = windowed(full, 1250, 2500)
    est = np.roll(full, 300)  # 0.6 s > 0.5 s
    assert snr_db(ref, est, FS) < 10.0
    assert snr_db(ref, est, FS, max_shift_s=0.7) == np.inf


def test_half_coverage_halves_the_snr() -> None:
    ref = zero_mean_wave()
    est = np.where(np.arange(ref.size) < 2500, 0.9 * ref, np.nan)
    al = align(ref, est, FS)
    assert al.coverage == pytest.approx(0.5)
    # missing samples count as 0 mV, then the SNR is weighted by coverage
    err = np.sum((0.1 * ref[:2500]) ** 2) + np.sum(ref[2500:] ** 2)
    raw = 10 * np.log10(np.sum(ref ** 2) / err)
    assert al.raw_snr_db == pytest.approx(raw, abs=1e-6)
    assert al.snr_db == pytest.approx(raw / 2, abs=1e-6)


def test_all_nan_estimate_is_zero_db_and_empty_reference_is_nan() -> None:
    ref = zero_mean_wave()
    assert snr_db(ref, np.full(ref.size, np.nan), FS) == 0.0
    assert np.isnan(snr_db(np.full(100, np.nan), np.zeros(100), FS))
    assert np.isnan(snr_db(np.zeros(100), np.ones(100), FS))


def test_negative_snr_is_not_weighted_by_coverage() -> None:
    ref = zero_mean_wave()
    est = np.where(np.arange(ref.size) < 2500, -3.0 * ref, np.nan)
    al = align(ref, est, FS, max_shift_s=0.0)
    assert al.raw_snr_db < 0 and al.snr_db == al.raw_snr_db


def test_estimate_length_is_trimmed_or_padded() -> None:
    ref = zero_mean_wave()
    assert snr_db(ref, np.r_[ref, np.ones(100)], FS) == np.inf
    al = align(ref, ref[:4000], FS, max_shift_s=0.0)
    assert al.coverage == pytest.approx(0.8)


def test_score_record_table(sim_record: ECGRecord) -> None:
    ref = sim_record.replace(signal=np.where(np.arange(5000)[:, None] < 2500,
                                             sim_record.signal, np.nan))
    est_sig = sim_record.to_numpy()
    est_sig[:, 1] *= 0.9  # lead II scaled
    est_sig[:, 2] = np.nan  # lead III missing
    est = ECGRecord(est_sig, FS, sim_record.lead_names)
    df = score_record(ref, est, max_offset_mv=0.0, max_shift_s=0.0)
    assert list(df.index) == list(sim_record.lead_names)
    assert {"snr_db", "pearson_r", "rmse_mv", "coverage", "shift_s", "offset_mv"} <= set(df)
    assert df.loc["I", "snr_db"] == np.inf
    assert df.loc["II", "snr_db"] == pytest.approx(20.0, abs=1e-6)
    assert df.loc["II", "pearson_r"] == pytest.approx(1.0)
    assert df.loc["III", "snr_db"] == 0.0 and df.loc["III", "coverage"] == 0.0
    expected_mean = (10 * SNR_CAP_DB + 20.0 + 0.0) / 12
    assert df.attrs["mean_snr_db"] == pytest.approx(expected_mean)
    assert mean_snr_db(df["snr_db"]) == pytest.approx(expected_mean)


def test_score_record_resamples_estimate(sim_record: ECGRecord) -> None:
    t = np.arange(5000) / FS
    sig = np.sin(2 * np.pi * 1.0 * t)[:, None].repeat(12, axis=1)
    ref = ECGRecord(sig, FS, sim_record.lead_names)
    est = ECGRecord(sig[::2], FS / 2, sim_record.lead_names)  # 250 Hz
    df = score_record(ref, est)
    assert df.loc["V3", "snr_db"] > 40.0
    assert df.loc["V3", "coverage"] > 0.99


def test_align_rejects_bad_input() -> None:
    with pytest.raises(ConfigurationError):
        align(np.zeros((10, 2)), np.zeros(10), FS)
    with pytest.raises(ConfigurationError):
        align(np.zeros(10), np.zeros(10), FS, max_shift_s=-1.0)
