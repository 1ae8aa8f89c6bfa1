"""Tests of ecgdigitize.clean: filter responses on synthetic sines, NaN handling."""

from __future__ import annotations

import numpy as np
import pytest

from ecgdigitize.clean import notch_powerline, remove_baseline_wander
from ecgdigitize.errors import ConfigurationError

FS = 500.0
T = np.arange(int(60 * FS)) / FS  # 60 s: long enough for 0.2 Hz


def gain_db(filtered: np.ndarray, original: np.ndarray) -> float:
    """Output/input RMS ratio in dB over the middle half (no edge effects)."""
    n = original.size
    mid = slice(n // 4, 3 * n // 4)
    return 20 * np.log10(np.std(filtered[mid]) / np.std(original[mid]))


def sine(freq_hz: float) -> np.ndarray:
    return np.sin(2 * np.pi * freq_hz * T)


def test_baseline_removal_attenuates_0p2_hz_by_more_than_20_db() -> None:
    x = sine(0.2)
    assert gain_db(remove_baseline_wander(x, FS), x) < -20.0


def test_baseline_removal_passes_10_hz_within_half_a_db() -> None:
    x = sine(10.0)
    assert abs(gain_db(remove_baseline_wander(x, FS), x)) < 0.5


def test_baseline_removal_keeps_ecg_and_removes_drift(sim_record) -> None:
    ecg = sim_record.lead("II")
    drift = 0.8 * np.sin(2 * np.pi * 0.15 * np.arange(ecg.size) / sim_record.fs)
    out = remove_baseline_wander(ecg + drift, sim_record.fs)
    ref = remove_baseline_wander(ecg, sim_record.fs)
    mid = slice(1000, 4000)
    assert np.std(out[mid] - ref[mid]) < 0.1 * np.std(drift[mid])


def test_notch_removes_50_hz_by_more_than_30_db() -> None:
    x = sine(50.0)
    assert gain_db(notch_powerline(x, FS, 50), x) < -30.0


def test_notch_60_hz_and_passes_10_hz() -> None:
    assert gain_db(notch_powerline(sine(60.0), FS, 60), sine(60.0)) < -30.0
    assert abs(gain_db(notch_powerline(sine(10.0), FS, 60), sine(10.0))) < 0.5


def test_nan_runs_stay_nan_and_each_run_is_filtered() -> None:
    x = np.stack([sine(10.0) + 3.0, sine(10.0)], axis=1)
    x[10000:12000, 0] = np.nan
    y = remove_baseline_wander(x, FS)
    assert y.shape == x.shape
    assert np.isnan(y[10000:12000, 0]).all()
    assert np.isfinite(y[:10000, 0]).all() and np.isfinite(y[12000:, 0]).all()
    # the +3 mV offset is removed on both sides of the gap
    assert abs(np.mean(y[2000:8000, 0])) < 0.05
    assert abs(np.mean(y[14000:20000, 0])) < 0.05


def test_short_runs_are_detrended_not_dropped() -> None:
    x = np.full(100, np.nan)
    x[10:15] = [1.0, 2.0, 3.0, 4.0, 5.0]  # too short for the filter: linear trend removed
    y = remove_baseline_wander(x, FS)
    np.testing.assert_allclose(y[10:15], 0.0, atol=1e-12)
    assert np.isnan(y[:10]).all() and np.isnan(y[15:]).all()


def test_one_dimensional_input_keeps_its_shape() -> None:
    assert notch_powerline(sine(5.0)[:1000], FS).shape == (1000,)


@pytest.mark.parametrize(("fs", "freq"), [(100.0, 50.0), (500.0, 0.0), (0.0, 50.0),
                                          (500.0, float("nan"))])
def test_bad_frequencies_raise_configuration_error(fs: float, freq: float) -> None:
    with pytest.raises(ConfigurationError):
        notch_powerline(sine(5.0)[:1000], fs, freq)
    with pytest.raises(ConfigurationError):
        remove_baseline_wander(sine(5.0)[:1000], fs, freq)


def test_three_dimensional_input_raises() -> None:
    with pytest.raises(ConfigurationError):
        remove_baseline_wander(np.zeros((10, 2, 2)), FS)
