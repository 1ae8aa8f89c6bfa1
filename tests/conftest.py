"""Shared fixtures: small simulated records and the optional shared data folders.

Fixtures
--------
sim_record
    A 10 s, 500 Hz, 12-lead :class:`~ecgdigitize.record.ECGRecord` simulated
    by NeuroKit2 (seed 0), built once per session.
shared_records_dir
    ``../shared/data/ecg-records`` (51 WFDB records); the test is skipped when absent.
reference_images_dir
    ``data/ecg-images`` (the unpacked reference sheets); skipped when absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ecgdigitize.record import ECGRecord

_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sim_record() -> ECGRecord:
    from ecgdigitize.synth import simulate_record

    return simulate_record(duration_s=10.0, fs=500.0, heart_rate=70.0, seed=0)


@pytest.fixture(scope="session")
def shared_records_dir() -> Path:
    path = _ROOT.parent / "shared" / "data" / "ecg-records"
    if not (path / "E07500.hea").exists():
        pytest.skip("shared ECG records not available")
    return path


@pytest.fixture(scope="session")
def reference_images_dir() -> Path:
    path = _ROOT / "data" / "ecg-images"
    if not path.is_dir() or not any(path.glob("*/*.jpg")):
        pytest.skip("reference sheet images not unpacked in data/ecg-images")
    return path
