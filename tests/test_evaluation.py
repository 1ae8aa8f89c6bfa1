"""Tests of ecgclassify.evaluation: metrics against hand counts, reports, cross-validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from ecgclassify.evaluation import (
    EvaluationReport,
    cross_validate_predictors,
    evaluate_predictions,
)
from ecgclassify.splits import LEAKY_LABEL
from ecgdigitize.errors import ConfigurationError, LeakageError


def test_metrics_match_hand_counts() -> None:
    y = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    p = [0, 0, 1, 1, 2, 2, 2, 2, 0]
    r = evaluate_predictions(y, p, labels=[0, 1, 2], class_names=["a", "b", "c"])
    assert r.accuracy == pytest.approx(6 / 9) and r.error_rate == pytest.approx(3 / 9)
    assert r.confusion == ((2, 1, 0), (0, 1, 1), (1, 0, 3))
    # class a: tp 2, fp 1, fn 1 -> P = R = F1 = 2/3; class b: P 1/2 R 1/2; class c: P 3/4 R 3/4
    assert r.precision == pytest.approx((2 / 3, 1 / 2, 3 / 4))
    assert r.recall == pytest.approx((2 / 3, 1 / 2, 3 / 4))
    assert r.macro_f1 == pytest.approx((2 / 3 + 1 / 2 + 3 / 4) / 3)
    assert r.support == (3, 2, 4)
    assert np.isnan(r.roc_auc_ovr)


def test_roc_auc_with_probabilities() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.65, 0.35]])
    r = evaluate_predictions(y, proba.argmax(1), proba, labels=[0, 1], class_names=["n", "p"])
    # positives 0.7, 0.35 vs negatives 0.1, 0.4: 3 of 4 pairs ranked right
    assert r.roc_auc_per_class[1] == pytest.approx(0.75)
    assert r.roc_auc_ovr == pytest.approx(0.75)


def test_report_renders_and_saves(tmp_path: Path) -> None:
    r = evaluate_predictions([0, 1, 1], [0, 1, 0], model="m", protocol=LEAKY_LABEL,
                             labels=[0, 1], class_names=["x", "y"], notes=["a note"])
    md = r.to_markdown()
    assert LEAKY_LABEL in md and "| x | 0.500 | 1.000 |" in md and "a note" in md
    data = json.loads(r.to_json())
    assert data["protocol"] == LEAKY_LABEL and data["roc_auc_ovr"] is None
    out = r.save(tmp_path / "rep")
    assert {p.name for p in out.iterdir()} == {"report.md", "report.json",
                                               "confusion_matrix.png"}
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert isinstance(r, EvaluationReport)


def test_mismatched_inputs() -> None:
    with pytest.raises(ConfigurationError):
        evaluate_predictions([0, 1], [0])
    with pytest.raises(ConfigurationError):
        evaluate_predictions([], [])
    with pytest.raises(ConfigurationError, match="proba must have shape"):  # 3 columns, 2 labels
        evaluate_predictions([0, 1], [0, 1], np.full((2, 3), 1 / 3), labels=[0, 1])


def _toy(n_groups: int = 30, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Two separable classes; each group has 1-3 identical rows."""
    rng = np.random.default_rng(seed)
    X, y, g = [], [], []
    for k in range(n_groups):
        label = k % 2
        row = rng.normal(2.0 * label, 0.7, 3)
        for _ in range(int(rng.integers(1, 4))):
            X.append(row)
            y.append(label)
            g.append(f"g{k}")
    return X, np.asarray(y), np.asarray(g)


def test_cross_validation_compares_models_on_same_folds(tmp_path: Path) -> None:
    X, y, g = _toy()
    preds = {"lr": LogisticRegression(), "weak": LogisticRegression(C=1e-6)}
    res = cross_validate_predictors(preds, X, y, g, n_splits=3, seed=0, class_names=["a", "b"])
    assert len(res.folds["lr"]) == 3
    assert "GROUPED by content sha256" in res.protocol
    assert all(res.protocol in r.protocol for r in res.folds["lr"])
    summ = res.summary()
    folds_acc = [r.accuracy for r in res.folds["lr"]]
    assert summ["lr"]["accuracy"] == pytest.approx((np.mean(folds_acc),
                                                    np.std(folds_acc, ddof=1)))
    assert summ["lr"]["accuracy"][0] > 0.8
    pooled = np.asarray(res.pooled["lr"].confusion)
    assert pooled.sum() == y.size
    np.testing.assert_array_equal(pooled, sum(np.asarray(r.confusion) for r in res.folds["lr"]))
    md = res.to_markdown()
    assert "| lr |" in md and "| weak |" in md and res.protocol in md
    out = res.save(tmp_path)
    assert (out / "confusion_lr.png").exists()
    assert json.loads((out / "comparison.json").read_text())["protocol"] == res.protocol


def test_leaky_protocol_is_labelled_and_leakage_is_caught() -> None:
    X, y, g = _toy()
    res = cross_validate_predictors({"lr": LogisticRegression()}, X, y, g, n_splits=3,
                                    protocol="leaky")
    assert res.protocol == LEAKY_LABEL and LEAKY_LABEL in res.to_markdown()
    coarse = np.asarray([f"c{int(s[1:]) // 2}" for s in g])  # groups that merge contents: fine
    cross_validate_predictors({"lr": LogisticRegression()}, X, y, coarse, n_splits=3,
                              leakage_groups=g, group_name="printed ID")
    fine = np.arange(len(y)).astype(str)  # per-row groups: copies cross the split
    with pytest.raises(LeakageError):
        cross_validate_predictors({"lr": LogisticRegression()}, X, y, fine, n_splits=3,
                                  leakage_groups=g)
    with pytest.raises(ConfigurationError):
        cross_validate_predictors({}, X, y, g)
