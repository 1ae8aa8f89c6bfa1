"""Tests of ecgdigitize.record.ECGRecord: conversions and round trips."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from ecgdigitize.errors import ConfigurationError, UnreadableImageError
from ecgdigitize.record import STANDARD_LEADS, ECGRecord, align_leads


@pytest.fixture
def record() -> ECGRecord:
    rng = np.random.default_rng(42)
    sig = rng.normal(0.0, 0.8, size=(1000, 12))
    sig[100:250, 3] = np.nan  # a gap in aVR
    sig[:, 7] = np.nan  # V2 not recovered at all
    return ECGRecord(sig, fs=500.0, name="rt", comments=("Dx: test",))


def test_basic_properties(record: ECGRecord) -> None:
    assert (record.n_samples, record.n_leads) == (1000, 12)
    assert record.duration_s == 2.0
    assert record.time_s[-1] == pytest.approx(999 / 500)
    assert record.lead_names == STANDARD_LEADS
    assert not record.signal.flags.writeable
    np.testing.assert_array_equal(record.lead("II"), record.signal[:, 1])
    with pytest.raises(KeyError):
        record.lead("X")


def test_wfdb_round_trip_exact_to_one_microvolt(tmp_path, record: ECGRecord) -> None:
    hea = record.to_wfdb(tmp_path)
    assert hea == tmp_path / "rt.hea" and hea.exists()
    raw = wfdb.rdrecord(str(tmp_path / "rt"))
    assert raw.fs == 500 and raw.sig_name == list(STANDARD_LEADS)
    assert raw.units == ["mV"] * 12 and raw.comments == ["Dx: test"]
    finite = np.isfinite(record.signal)
    np.testing.assert_array_equal(np.isfinite(raw.p_signal), finite)
    err = np.abs(raw.p_signal[finite] - record.signal[finite])
    assert err.max() <= 0.0005 + 1e-12  # rounding to 1 µV
    np.testing.assert_array_equal(raw.p_signal[finite], np.round(record.signal[finite], 3))
    back = ECGRecord.from_wfdb(hea)
    assert back.name == "rt" and back.fs == 500.0
    np.testing.assert_array_equal(np.isnan(back.signal[:, 7]), np.ones(1000, bool))
    np.testing.assert_allclose(back.signal[finite], record.signal[finite], atol=5e-4)


def test_wfdb_missing_file_raises(tmp_path) -> None:
    with pytest.raises(UnreadableImageError) as info:
        ECGRecord.from_wfdb(tmp_path / "nothing.hea")
    assert info.value.path is not None


def test_csv_round_trip(tmp_path, record: ECGRecord) -> None:
    path = record.to_csv(tmp_path / "rt.csv")
    back = ECGRecord.from_csv(path)
    assert back.lead_names == record.lead_names
    assert back.fs == pytest.approx(500.0)
    assert back.name == "rt"
    np.testing.assert_array_equal(np.isnan(back.signal), np.isnan(record.signal))
    finite = np.isfinite(record.signal)
    np.testing.assert_allclose(back.signal[finite], record.signal[finite], atol=5e-5)


def test_to_dataframe_and_numpy(record: ECGRecord) -> None:
    df = record.to_dataframe()
    assert list(df.columns) == list(STANDARD_LEADS)
    assert df.index.name == "time_s" and df.shape == (1000, 12)
    assert df.index[1] == pytest.approx(0.002)
    assert df["aVR"].isna().sum() == 150
    arr = record.to_numpy()
    arr[0, 0] = 99.0  # a copy: the record is untouched
    assert record.signal[0, 0] != 99.0


def test_equals_and_replace(record: ECGRecord) -> None:
    same = ECGRecord(record.to_numpy(), 500.0, name="other")
    assert record.equals(same)  # NaN equal NaN, names ignored
    changed = record.replace(fs=250.0)
    assert changed.fs == 250.0 and not record.equals(changed)


def test_one_dimensional_signal_becomes_one_lead() -> None:
    rec = ECGRecord(np.zeros(100), fs=100.0, lead_names=("II",))
    assert rec.signal.shape == (100, 1)


@pytest.mark.parametrize("kwargs", [
    {"signal": np.zeros((10, 2, 2)), "fs": 500.0},
    {"signal": np.zeros((10, 3)), "fs": 500.0},  # 12 default names for 3 leads
    {"signal": np.zeros((10, 2)), "fs": 500.0, "lead_names": ("I", "I")},
    {"signal": np.zeros((10, 12)), "fs": 0.0},
    {"signal": np.zeros((10, 12)), "fs": float("nan")},
])
def test_bad_inputs_raise(kwargs: dict) -> None:
    with pytest.raises(ConfigurationError):
        ECGRecord(**kwargs)


def test_align_leads_fills_missing_with_nan(record: ECGRecord) -> None:
    two = ECGRecord(record.signal[:, :2], 500.0, ("I", "II"))
    out = align_leads([two], ["II", "V1"])[0]
    np.testing.assert_array_equal(out[:, 0], record.signal[:, 1])
    assert np.isnan(out[:, 1]).all()
