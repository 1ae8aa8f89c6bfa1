"""The transforms and the report of ``benchmarks.signal_cnn_variants``, on made-up data."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.signal_cnn_variants import N_SPLITS, compact_layout, lead_dropout, report


def test_compact_layout_puts_each_lead_column_side_by_side() -> None:
    x = np.zeros((2, 8, 12), np.float32)  # 4 quarters of 2 samples
    cols = (0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3)
    for j, c in enumerate(cols):
        x[:, 2 * c:2 * c + 2, j] = j + 1
    x[0, :, 1] = np.arange(10, 18)  # sheet 0: lead II is the 10 s rhythm lead
    x[1, :, 2] = np.arange(20, 28)  # sheet 1: lead III
    out = compact_layout(x)
    assert out.shape == (2, 2, 16)
    np.testing.assert_array_equal(out[1, :, 0], [1, 1])  # lead I, column 1
    np.testing.assert_array_equal(out[1, :, 11], [12, 12])  # V6, column 4
    np.testing.assert_array_equal(out[0, :, 12:].T.ravel(), np.arange(10, 18))
    np.testing.assert_array_equal(out[1, :, 12:].T.ravel(), np.arange(20, 28))


def test_lead_dropout_zeroes_whole_leads_and_is_seeded() -> None:
    x = np.ones((200, 50, 12), np.float32)
    aug = lead_dropout(lambda a, rng, fs: a.copy(), amp=0.1, drop=0.1)
    out = aug(x, np.random.default_rng(0), 100.0)
    dropped = np.all(out == 0, axis=1)
    assert 0.07 < dropped.mean() < 0.13  # ~10 % of (sheet, lead) pairs
    kept = out[~np.repeat(dropped[:, None, :], 50, axis=1)]
    assert kept.min() >= 0.9 - 1e-6 and kept.max() <= 1.1 + 1e-6
    np.testing.assert_array_equal(aug(x, np.random.default_rng(0), 100.0), out)


def _recs(variant: str, proba_by_fold: list[list[list[float]]], y: list[int]) -> list[dict]:
    return [{"variant": variant, "fold": k, "test_index": list(range(len(y))), "y_true": y,
             "proba": p, "proba_tta": p, "train_time_s": 100.0 + k}
            for k, p in enumerate(proba_by_fold)]


def test_report_scores_variants_and_averages_ensemble_members() -> None:
    y = [0, 1, 1, 0]
    right = [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]]
    # member a gets sheet 2 wrong (0.55 for class 0), member b sheet 3 (0.45):
    # their mean is right on every sheet
    a = [[0.9, 0.1], [0.2, 0.8], [0.55, 0.45], [0.7, 0.3]]
    b = [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.45, 0.55]]
    res = {"machine": {"description": "2-core CPU"},
           "runs": _recs("seed+0", [a] * N_SPLITS, y) + _recs("seed+100", [b] * N_SPLITS, y)
           + _recs("compact", [right] * 4, y)}  # 4 folds only: left out
    md = report(res)
    rows = {ln.split(" | ")[0].strip("| "): ln for ln in md.splitlines() if ln.startswith("| ")}
    # one error in four, two classes: F1 = (0.8 + 0.667) / 2 = 0.733
    assert "| 0.733 0.733 0.733 0.733 0.733 | 0.733 ± 0.000 |" in rows["seed+0"]
    assert "| 1.000 1.000 1.000 1.000 1.000 | 1.000 ± 0.000 | - | 204 |" in \
        rows["n_members=2 (seed+0, seed+100)"]
    assert "compact" not in rows and "n_members=3 (seed+0, +100, +200)" not in rows
    with pytest.raises(ValueError, match="no fold records"):
        report({"runs": []})


def test_confirmation_pairs_other_fold_seeds_with_the_study() -> None:
    from benchmarks.signal_cnn_variants import confirmation

    y = [0, 1, 1, 0]
    right = [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]]
    one_wrong = [[0.9, 0.1], [0.2, 0.8], [0.55, 0.45], [0.7, 0.3]]  # macro-F1 0.733
    runs = (_recs("seed+0", [one_wrong] * N_SPLITS, y)
            + _recs("v", [right] * N_SPLITS, y)  # fold seed 0: 1.0 against 0.733
            + [dict(r, fold_seed=1) for r in _recs("v", [one_wrong] * N_SPLITS, y)])
    study = {"runs": [{"seed": 1, "fold": k, "scores": {"signal-cnn": {"macro_f1": 0.8}}}
                      for k in range(N_SPLITS)]}
    md = confirmation({"runs": runs}, study)
    rows = [ln for ln in md.splitlines() if ln.startswith("| v |")]
    assert "| 0 | 1.000 1.000 1.000 1.000 1.000 | 1.000 | 0.733 | +0.267 (0.000) |" in rows[0]
    assert "| 1 | 0.733 0.733 0.733 0.733 0.733 | 0.733 | 0.800 | -0.067 (0.000) |" in rows[1]
    assert "| all | 10 folds |" in rows[2] and "ahead on 5, behind on 5" in rows[2]
    assert confirmation({"runs": runs[:10]}, study) == ""  # nothing on another fold seed
