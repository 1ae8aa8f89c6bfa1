"""Tests of ecgclassify.templates: a known beat sampled on the template grid."""

from __future__ import annotations

import numpy as np
import pytest

from ecgclassify.templates import TEMPLATE_FEATURES, TEMPLATE_OFFSETS_S, beat_template

FS = 500.0


def test_grid_and_names() -> None:
    assert len(TEMPLATE_OFFSETS_S) == len(TEMPLATE_FEATURES) == 28
    assert TEMPLATE_OFFSETS_S[0] == -0.08 and TEMPLATE_OFFSETS_S[-1] == 0.46
    assert np.allclose(np.diff(TEMPLATE_OFFSETS_S), 0.02)
    names = [s for s, _, _ in TEMPLATE_FEATURES]
    assert names[0] == "beat_-80ms" and names[4] == "beat_+0ms" and names[-1] == "beat_+460ms"


def test_samples_follow_the_onset_and_remove_the_baseline() -> None:
    t = np.arange(round(0.7 * FS) + 1) / FS
    beat = 0.2 + np.exp(-0.5 * ((t - 0.25) / 0.01) ** 2) + 0.4 * np.exp(
        -0.5 * ((t - 0.55) / 0.04) ** 2)
    on = round(0.23 * FS)  # R peak 20 ms after onset, T peak 320 ms after onset
    tpl = beat_template(beat, FS, on, base=0.2)
    assert tpl["beat_-80ms"] == pytest.approx(0.0, abs=1e-3)
    assert tpl["beat_+20ms"] == pytest.approx(0.83, abs=0.02)  # 20 ms mean of the R peak
    assert tpl["beat_+320ms"] == pytest.approx(0.4, abs=0.01)
    shifted = beat_template(beat, FS, on + 10, base=0.2)  # a later onset shifts every sample
    assert shifted["beat_+0ms"] == pytest.approx(tpl["beat_+20ms"], abs=1e-9)


def test_outside_or_nan_gives_nan() -> None:
    beat = np.zeros(351)
    beat[:60] = np.nan
    tpl = beat_template(beat, FS, 60, 0.0)
    assert np.isnan(tpl["beat_-80ms"]) and tpl["beat_+0ms"] == 0.0
    late = beat_template(np.zeros(351), FS, 200, 0.0)  # onset + 460 ms is past the beat
    assert np.isnan(late["beat_+460ms"]) and late["beat_+100ms"] == 0.0
