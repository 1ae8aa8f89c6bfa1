"""The CNN speed benchmark's model sizes: weights only, as predictors save them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest


def test_keras_size_leaves_out_the_optimizer_state() -> None:
    keras = pytest.importorskip("keras")
    from benchmarks.bench_cnn import model_sizes
    from ecgclassify.cnn import build_model

    hw = (32, 48)
    fresh = build_model("mobilenet_v2", (*hw, 3), 4, alpha=0.35)
    with tempfile.TemporaryDirectory() as tmp:
        fresh.save(Path(tmp) / "fresh.keras")
        fresh_bytes = (Path(tmp) / "fresh.keras").stat().st_size
    trained = build_model("mobilenet_v2", (*hw, 3), 4, alpha=0.35)
    trained.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss="sparse_categorical_crossentropy")
    x = np.zeros((4, *hw, 3), np.float32)
    trained.train_on_batch(x, np.zeros(4, int))  # Adam now holds two slots per weight
    sizes = model_sizes(trained, x, hw, quantizations=())
    assert sizes["keras"] == pytest.approx(fresh_bytes, rel=0.02)


def test_feature_row_picks_the_best_model_over_all_fold_seeds(tmp_path) -> None:
    from benchmarks.compare_cnn import feature_row

    def view(a: float, b: float) -> dict:
        return {"summary": {"m-a": {"macro_f1": {"mean": a, "sd": 0.01}},
                            "m-b": {"macro_f1": {"mean": b, "sd": 0.02}}}}

    grouped = view(0.887, 0.884)  # seed 0: m-a ahead by 0.003
    grouped.update(n_splits=5, fit_time_s={"m-a": [1.0], "m-b": [2.0]},
                   folds={m: [{k: 0.9 for k in ("accuracy", "macro_precision", "macro_recall",
                                                "macro_f1", "error_rate")}] * 5
                          for m in ("m-a", "m-b")})
    results = {"grouped": grouped, "grouped_seed1": view(0.85, 0.88),
               "grouped_seed2": view(0.86, 0.89)}
    f = tmp_path / "feature_models.json"
    f.write_text(json.dumps({"results": results}))
    assert feature_row(f).startswith("| m-b (best feature model) | grouped | 5 of 5 |")
    del results["grouped_seed1"], results["grouped_seed2"]
    f.write_text(json.dumps({"results": results}))
    assert feature_row(f).startswith("| m-a (best feature model)")
    assert feature_row(tmp_path / "absent.json") is None
