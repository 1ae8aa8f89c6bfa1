"""The inputs, the models and the report of ``benchmarks.signal_cnn_screen``."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.signal_cnn_screen import FOLD_SEEDS, N_SPLITS, report


def test_per_lead_model_shares_one_encoder_across_leads() -> None:
    pytest.importorskip("keras")
    from benchmarks.signal_cnn_screen import per_lead_model

    twelve = per_lead_model(128, 12, 4, width=4)
    three = per_lead_model(128, 3, 4, width=4)
    assert twelve.output_shape == (None, 4)
    # the encoder's weights do not grow with the leads, only the classifier's (16 per lead)
    dense = 4 * 4 * 4  # 4 * width pooled features per lead, 4 classes
    assert twelve.count_params() - three.count_params() == 9 * dense
    x = np.random.default_rng(0).normal(size=(2, 128, 12)).astype(np.float32)
    p = np.asarray(twelve(x, training=False))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def _runs(variant: str, proba: list[list[float]], y: list[int], n_folds: int) -> list[dict]:
    keys = [(s, k) for s in FOLD_SEEDS for k in range(N_SPLITS)][:n_folds]
    return [{"variant": variant, "fold_seed": s, "fold": k, "y_true": y, "proba": proba,
             "train_time_s": 30.0 + k} for s, k in keys]


def test_report_pairs_every_recipe_with_the_base_on_the_same_folds() -> None:
    y = [0, 1, 1, 0]
    right = [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]]
    one_wrong = [[0.9, 0.1], [0.2, 0.8], [0.55, 0.45], [0.7, 0.3]]  # macro-F1 0.733
    n = len(FOLD_SEEDS) * N_SPLITS
    res = {"machine": {"description": "2-core CPU"},
           "runs": _runs("base", one_wrong, y, n) + _runs("mixup", right, y, n)
           + _runs("fs250", right, y, n - 1)  # stopped one fold early: shown on 14 folds
           + _runs("stretch", right, y, 7)}  # stopped in fold seed 1
    md = report(res)
    rows = {ln.split(" | ")[0].strip("| "): ln for ln in md.splitlines() if ln.startswith("| ")}
    assert "| 0.733 | 0.733 | 0.733 | 0.733 ± 0.000 | - | - | 32 |" in rows["base"]
    assert "| 1.000 | 1.000 | 1.000 | 1.000 ± 0.000 | +0.267 (0.000) | 15 / 0 | 32 |" \
        in rows["mixup"]
    assert "| 1.000 | 1.000 | 1.000 (4 of 5) | 1.000 ± 0.000 (14 of 15 folds) | +0.267 (0.000) " \
        "| 14 / 0 |" in rows["fs250"]
    assert "| 1.000 | 1.000 (2 of 5) | - | 1.000 ± 0.000 (7 of 15 folds) | +0.267 (0.000) | 7 / 0 |" \
        in rows["stretch"]
    assert "rhythm" not in rows  # no fold at all
    with pytest.raises(ValueError, match="base recipe is missing"):
        report({"runs": _runs("base", right, y, n - 1)})


def test_standardise_uses_the_training_rows_only() -> None:
    from benchmarks.signal_cnn_screen import standardise

    train = np.array([[1.0, 5.0], [2.0, np.nan], [3.0, 5.0], [4.0, 5.0], [5.0, 5.0]])
    test = np.array([[3.0, 7.0], [np.nan, 5.0], [1000.0, 5.0]])
    a, b = standardise(train, test)
    # column 0: median 3, IQR 2; column 1: constant, so its scale stays 1
    np.testing.assert_allclose(a[:, 0], [-1.0, -0.5, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(b, [[0.0, 2.0], [0.0, 0.0], [5.0, 0.0]])  # NaN -> 0, clip 5
    assert a[1, 1] == 0.0 and a.dtype == np.float32


def test_with_extra_inputs_joins_numbers_to_the_pooled_features() -> None:
    pytest.importorskip("keras")
    from benchmarks.signal_cnn_screen import with_extra_inputs
    from ecgclassify.signal_cnn import build_signal_model

    net = build_signal_model(128, 12, 4, width=4)
    both = with_extra_inputs(net, 11)
    assert both.output_shape == (None, 4)
    # the classifier sees 16 pooled features + 11 numbers: (27 + 1) * 4 weights
    assert both.count_params() - net.count_params() == (16 + 11 + 1) * 4 - (16 + 1) * 4
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 128, 12)).astype(np.float32)
    p0 = np.asarray(both([x, np.zeros((2, 11), np.float32)], training=False))
    p1 = np.asarray(both([x, np.full((2, 11), 3.0, np.float32)], training=False))
    assert np.abs(p0 - p1).max() > 1e-4  # the numbers reach the output


def test_rhythm_channel_moves_the_strip_to_a_channel_of_its_own() -> None:
    from benchmarks.signal_cnn_screen import rhythm_channel

    x = np.zeros((2, 8, 12), np.float32)  # 4 columns of 2 samples
    cols = (0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3)
    for j, c in enumerate(cols):
        x[:, 2 * c:2 * c + 2, j] = j + 1
    x[0, :, 1] = np.arange(10, 18)  # sheet 0: the strip is lead II
    x[1, :, 2] = np.arange(20, 28)  # sheet 1: lead III
    out = rhythm_channel(x)
    assert out.shape == (2, 8, 13)
    np.testing.assert_array_equal(out[0, :, 12], np.arange(10, 18))
    np.testing.assert_array_equal(out[1, :, 12], np.arange(20, 28))
    np.testing.assert_array_equal(out[0, :, 1], [10, 11, 0, 0, 0, 0, 0, 0])  # column 1 only
    np.testing.assert_array_equal(out[1, :, 2], [20, 21, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(out[1, :, 1], x[1, :, 1])  # other leads untouched
    np.testing.assert_array_equal(out[:, :, 3:12], x[:, :, 3:12])


def test_rhythm_channel_finds_the_strip_lead_of_each_sheet() -> None:
    from benchmarks.signal_cnn_screen import rhythm_channel

    x = np.zeros((2, 8, 12), np.float32)
    x[:, :2, :3] = 1.0  # column 1: leads I-III, first quarter
    x[0, :, 1] = 0.5    # sheet 0: the strip is lead II
    x[1, :, 2] = 0.5    # sheet 1: lead III
    out = rhythm_channel(x)
    assert out.shape == (2, 8, 13)
    np.testing.assert_array_equal(out[0, :, 12], x[0, :, 1])
    np.testing.assert_array_equal(out[1, :, 12], x[1, :, 2])
    assert not out[0, 2:, 1].any() and out[0, :2, 1].all()  # lead II cut to its column
    assert not out[1, 2:, 2].any() and out[1, :2, 2].all()  # lead III likewise
    np.testing.assert_array_equal(out[1, :, 1], x[1, :, 1])  # a lead that is no strip: as it was
