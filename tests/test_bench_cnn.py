"""The CNN speed benchmark's model sizes: weights only, as predictors save them."""

from __future__ import annotations

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
