"""The near-duplicate search of the reference data set (``benchmarks.near_duplicates``)."""

from __future__ import annotations

import numpy as np

from benchmarks.near_duplicates import lead_matrix, similarity_matrix
from ecgdigitize.synth import simulate_record


def _printed_3x4(signal: np.ndarray, fs: float) -> np.ndarray:
    """NaN outside each lead's 2.5 s window of a 3x4 sheet, lead II kept whole (the strip)."""
    out = np.full_like(signal, np.nan)
    n = int(2.5 * fs)
    for lead in range(12):
        col = lead // 3
        out[col * n:(col + 1) * n, lead] = signal[col * n:(col + 1) * n, lead]
    out[:, 1] = signal[:, 1]
    return out


def test_the_same_recording_read_twice_is_found_and_another_is_not() -> None:
    fs = 500.0
    a = simulate_record(seed=1, heart_rate=72).signal
    b = simulate_record(seed=2, heart_rate=58).signal  # another recording
    rng = np.random.default_rng(0)
    # a second reading of a: 60 ms later, with a gain error, an offset, wander and noise
    t = np.arange(a.shape[0]) / fs
    again = (1.07 * np.roll(a, 30, axis=0) + 0.2 + 0.15 * np.sin(2 * np.pi * 0.3 * t)[:, None]
             + rng.normal(0, 0.03, a.shape))
    mats = np.stack([lead_matrix(_printed_3x4(s, fs), fs) for s in (a, again, b)])
    sim, lag = similarity_matrix(mats, max_lag=30)
    assert sim[0, 1] > 0.9 and lag[0, 1] == 6          # 30 samples at 500 Hz = 6 at 100 Hz
    assert abs(sim[0, 2]) < 0.5 and abs(sim[1, 2]) < 0.5
    np.testing.assert_allclose(sim, sim.T, atol=1e-9)  # the best shift either way is mirrored
    np.testing.assert_array_equal(lag, -lag.T)


def test_lead_matrix_ignores_unprinted_leads_and_rejects_odd_rates() -> None:
    sig = simulate_record(seed=3).signal
    printed = _printed_3x4(sig, 500.0)
    m = lead_matrix(printed, 500.0)
    assert m.shape == (12, 1000)
    assert not m[0, 250:].any() and m[0, :250].any()   # lead I only in its 2.5 s window
    assert abs(np.linalg.norm(m) - 1) < 1e-12
    try:
        lead_matrix(printed, 500.0, fs_out=300.0)
    except ValueError as exc:
        assert "multiple" in str(exc)
    else:
        raise AssertionError("a rate that does not divide fs must be refused")
