"""Tests of ecgdigitize.fusion: limb-lead fusion of simultaneous readings."""

from __future__ import annotations

import numpy as np
import pytest

from ecgdigitize.errors import ConfigurationError
from ecgdigitize.fusion import LIMB_LEADS, fuse_limb_leads

FS = 500.0
T = np.arange(2500) / FS
LEAD_I = 0.6 * np.sin(2 * np.pi * 1.1 * T) + 0.2 * np.sin(2 * np.pi * 7.0 * T)
LEAD_II = 0.9 * np.cos(2 * np.pi * 1.1 * T) - 0.3 * np.sin(2 * np.pi * 5.0 * T)


def true(lead: str) -> np.ndarray:
    a, b = LIMB_LEADS[lead]
    return a * LEAD_I + b * LEAD_II


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean(x * x)))


def test_limb_leads_hold_einthoven_and_goldberger() -> None:
    np.testing.assert_allclose(true("II"), true("I") + true("III"), atol=1e-12)
    np.testing.assert_allclose(true("aVR") + true("aVL") + true("aVF"), 0.0, atol=1e-12)


def test_four_noisy_views_average_the_reading_error_down() -> None:
    rng = np.random.default_rng(1)
    views = [(k, true(k) + rng.normal(0, 0.02, T.size)) for k in ("I", "II", "III")]
    views.append(("II", true("II") + rng.normal(0, 0.02, T.size)))       # a rhythm strip
    fused = fuse_limb_leads(views, fs=FS, robust_mv=np.inf)
    # least squares on (I, II): var(I) = 3/5 and var(III) = 3/5 of one reading's
    for k in ("I", "III"):
        ratio = rms(fused[k] - true(k)) / 0.02
        assert ratio == pytest.approx(np.sqrt(0.6), abs=0.05)
    np.testing.assert_allclose(fused["II"], fused["I"] + fused["III"], atol=1e-12)
    assert set(fused) == {"I", "II", "III"}         # leads never read are not made up


def test_a_view_that_followed_the_wrong_ink_is_pulled_back_and_stays_local() -> None:
    rng = np.random.default_rng(2)
    views = {k: true(k) + rng.normal(0, 0.01, T.size) for k in ("aVR", "aVL", "aVF")}
    rhythm = true("II") + rng.normal(0, 0.01, T.size)
    bad = views["aVL"].copy()
    bad[1000:1040] += 1.5                          # 80 ms on a neighbour's QRS stroke
    items = [("aVR", views["aVR"]), ("aVL", bad), ("aVF", views["aVF"]), ("II", rhythm)]
    fused = fuse_limb_leads(items, fs=FS)
    seg, rest = slice(1000, 1040), np.r_[0:990, 1050:T.size]
    # the bad view's error shrinks by its leverage (1/3 here); the rest take a share
    assert rms((fused["aVL"] - true("aVL"))[seg]) < 0.75 * rms((bad - true("aVL"))[seg])
    for k in ("aVR", "aVL", "aVF", "II"):
        assert rms((fused[k] - true(k))[rest]) < 0.012      # nothing spreads in time


def test_only_instants_read_three_times_or_more_are_fused() -> None:
    n = T.size
    i_view = np.where(np.arange(n) < 1250, true("I"), np.nan)
    ii_view = true("II") + 0.002 * np.sin(T * 40)    # rhythm strip
    iii_view = np.where(np.arange(n) < 1250, true("III"), np.nan)
    fused = fuse_limb_leads([("I", i_view), ("II", ii_view), ("III", iii_view)], fs=FS)
    for k in ("I", "II", "III"):
        assert np.isnan(fused[k][1250:]).all() and np.isfinite(fused[k][:1250]).all()
    np.testing.assert_allclose(fused["II"][:1250], fused["I"][:1250] + fused["III"][:1250])


def test_leads_printed_inverted_are_not_fused() -> None:
    rng = np.random.default_rng(3)
    views = [("aVR", -true("aVR") + rng.normal(0, 0.01, T.size)),      # Cabrera's -aVR
             ("aVL", true("aVL")), ("aVF", true("aVF"))]
    fused = fuse_limb_leads(views, fs=FS)
    assert all(np.isnan(fused[k]).all() for k, _ in views)


def test_a_strip_printed_at_another_time_is_left_out_of_the_column() -> None:
    rng = np.random.default_rng(4)
    views = [(k, true(k) + rng.normal(0, 0.01, T.size)) for k in ("aVR", "aVL", "aVF")]
    strip = np.roll(true("II"), 700)                 # the strip shows another 5 s
    fused = fuse_limb_leads([*views, ("II", strip)], fs=FS)
    assert np.isnan(fused["II"]).all()               # the strip's lead is not overwritten
    for k, x in views:                                # Goldberger's aVR + aVL + aVF = 0 alone
        assert rms(fused[k] - true(k)) < 0.9 * rms(x - true(k))
    np.testing.assert_allclose(fused["aVR"] + fused["aVL"] + fused["aVF"], 0.0, atol=1e-9)


def test_edges_of_a_view_weigh_less_than_a_strip_running_through() -> None:
    # III is wrong in its last 8 samples (a held end); the rhythm strip runs on
    n, first = T.size, np.arange(T.size) < 1250
    iii = np.where(first, true("III"), np.nan)
    iii[1242:1250] = iii[1241]
    views = [("I", np.where(first, true("I"), np.nan)),
             ("II", np.where(first, true("II"), np.nan)), ("III", iii), ("II", true("II"))]
    fused = fuse_limb_leads(views, fs=FS, robust_mv=np.inf)
    end = slice(1242, 1250)
    held_err = np.abs(iii[end] - true("III")[end]).max()
    assert held_err > 0.05
    assert np.abs(fused["II"][end] - true("II")[end]).max() < 0.1 * held_err
    assert fused["II"].size == n


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        fuse_limb_leads([("I", np.zeros(10)), ("II", np.zeros(11))])
    with pytest.raises(ConfigurationError):
        fuse_limb_leads([("I", np.zeros(10))], min_views=2)
    assert fuse_limb_leads([("V1", np.zeros(10))]) == {}
