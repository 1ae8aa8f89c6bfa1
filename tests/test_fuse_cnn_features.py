"""Late fusion of CNN and feature-model probabilities (benchmarks/fuse_cnn_features.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import fuse_cnn_features as fusion


def test_fuse_averages_and_can_overturn_a_confident_wrong_vote() -> None:
    cnn = np.array([[0.55, 0.45, 0, 0], [0.1, 0.9, 0, 0]])
    feat = np.array([[0.1, 0.9, 0, 0], [0.2, 0.7, 0.1, 0]])
    out = fusion.fuse(cnn, feat)
    np.testing.assert_allclose(out, [[0.325, 0.675, 0, 0], [0.15, 0.8, 0.05, 0]])
    np.testing.assert_allclose(out.sum(1), 1.0)
    assert out.argmax(1).tolist() == [1, 1]  # the first file's CNN vote (class 0) is overturned
    with pytest.raises(ValueError, match="shapes differ"):
        fusion.fuse(cnn, feat[:1])


def test_cnn_folds_reads_grouped_test_probabilities(tmp_path) -> None:
    run = {"runs": {"net-gpu": {"protocol": "grouped", "folds": [
        {"fold": 2, "test_index": [5, 1], "proba": [[1, 0, 0, 0], [0, 1, 0, 0]]},
        {"fold": 3, "history": {}}]}}}  # a fold without probabilities is skipped
    f = tmp_path / "run.json"
    f.write_text(json.dumps(run))
    folds = fusion.cnn_folds(f"{f}:net-gpu")
    assert list(folds) == [2]
    np.testing.assert_array_equal(folds[2][0], [5, 1])
    run["runs"]["net-gpu"]["protocol"] = "leaky"
    f.write_text(json.dumps(run))
    with pytest.raises(ValueError, match="not grouped"):
        fusion.cnn_folds(f"{f}:net-gpu")


def test_cnn_folds_reads_compare_cnn_records(tmp_path) -> None:
    runs = {"runs": [
        {"model": "signal", "protocol": "grouped", "fold": 0, "test_index": [3, 4],
         "proba": [[0, 0, 1, 0], [0.5, 0.5, 0, 0]]},
        {"model": "other", "protocol": "grouped", "fold": 0, "test_index": [9], "proba": [[1, 0, 0, 0]]},
        {"model": "signal", "protocol": "grouped", "fold": 1, "test_index": [7]}]}  # no proba
    f = tmp_path / "cnn_compare.json"
    f.write_text(json.dumps(runs))
    folds = fusion.cnn_folds(f"{f}:signal")
    assert list(folds) == [0]
    np.testing.assert_array_equal(folds[0][0], [3, 4])
    np.testing.assert_array_equal(folds[0][1][1], [0.5, 0.5, 0, 0])
    for r in runs["runs"]:
        r["protocol"] = "leaky"
    f.write_text(json.dumps(runs))
    with pytest.raises(ValueError, match="not grouped"):
        fusion.cnn_folds(f"{f}:signal")
