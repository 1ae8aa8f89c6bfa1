"""Tests of ecgclassify.signal_cnn: the 1-D CNN on digitized leads."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_feature_predictor import FakeDigitizer, fake_digitizer, write_sheets  # noqa: F401
from test_features import gaussian_record

from ecgclassify import load_predictor
from ecgclassify.base import available_models, make_predictor
from ecgclassify.feature_predictor import DigitizationWarning, digitize_records
from ecgclassify.signal_cnn import (
    SignalCNNPredictor,
    augment_signals,
    build_signal_model,
    signal_array,
    time_stretch,
)
from ecgdigitize.errors import ConfigurationError, NotFittedError
from ecgdigitize.record import STANDARD_LEADS, ECGRecord

pytest.importorskip("keras")


def _morphology_records(n: int, seed: int = 0) -> tuple[list[ECGRecord], np.ndarray]:
    """Class 1 has ST elevation and a Q wave; heart rates overlap, so only the shape tells."""
    rng = np.random.default_rng(seed)
    recs, y = [], []
    for i in range(n):
        label = i % 2
        recs.append(gaussian_record(float(rng.uniform(55, 100)), st_mv=0.3 * label,
                                    q_mv=0.3 * label, seed=seed * 1000 + i))
        y.append(label)
    return recs, np.asarray(y)


# --- signal_array ---------------------------------------------------------------------------
def test_signal_array_bins_names_and_gaps() -> None:
    fs = 500
    t = np.arange(10 * fs) / fs
    sig = np.full((t.size, 3), np.nan)
    sig[:, 0] = t / 5  # a ramp: each 10 ms bin holds 5 samples, their mean is the bin's middle
    sig[: 2 * fs, 1] = 2.0  # printed for 2 s only
    sig[:, 2] = 9.0  # beyond the clip
    rec = ECGRecord(sig, fs=fs, lead_names=("V2", "I", "aVL"))
    a = signal_array(rec)
    assert a.shape == (1000, 12) and a.dtype == np.float32
    v2 = STANDARD_LEADS.index("V2")
    np.testing.assert_allclose(a[:, v2], (np.arange(1000) / 100 + 0.004) / 5, atol=1e-6)
    i = STANDARD_LEADS.index("I")
    assert np.all(a[:200, i] == 2.0) and np.all(a[200:, i] == 0.0)  # NaN -> 0
    assert np.all(a[:, STANDARD_LEADS.index("aVL")] == 5.0)  # clipped to 5 mV
    assert np.all(a[:, STANDARD_LEADS.index("II")] == 0.0)  # absent lead
    # other grid: 250 Hz over 4 s; a slower record is interpolated, a short one padded
    slow = ECGRecord(np.linspace(0, 1, 101)[:, None], fs=50, lead_names=("II",))
    b = signal_array(slow, fs=100, duration_s=4)
    assert b.shape == (400, 12)
    ii = b[:, STANDARD_LEADS.index("II")]
    np.testing.assert_allclose(ii[:201], np.linspace(0, 1, 201), atol=1e-6)
    assert np.all(ii[201:] == 0.0)
    with pytest.raises(ConfigurationError):
        signal_array(rec, fs=0)


def test_augmentation_keeps_shape_and_changes_values() -> None:
    x = np.stack([signal_array(r) for r in _morphology_records(4)[0]])
    rng = np.random.default_rng(0)
    out = augment_signals(x, rng, 100.0)
    assert out.shape == x.shape and out.dtype == np.float32
    assert not np.allclose(out, x)
    # amplitude within 0.85-1.15 (plus 0.02 mV noise): the peak-to-peak stays close
    ratio = np.ptp(out, axis=1).max(axis=1) / np.ptp(x, axis=1).max(axis=1)
    assert np.all((ratio > 0.8) & (ratio < 1.25))
    np.testing.assert_array_equal(augment_signals(x, np.random.default_rng(0), 100.0), out)


def test_model_shape_and_width() -> None:
    m = build_signal_model(1000, 12, 4, width=8)
    assert m.output_shape == (None, 4)
    assert build_signal_model(1000, 12, 4, width=16).count_params() > 3 * m.count_params()
    # avg+max pooling doubles the classifier's input: 32 more features x 4 classes
    both = build_signal_model(1000, 12, 4, width=8, pooling="avg+max")
    assert both.count_params() - m.count_params() == 4 * 8 * 4
    with pytest.raises(ConfigurationError, match="pooling"):
        build_signal_model(1000, 12, 4, pooling="min")


# --- the predictor ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted() -> tuple[SignalCNNPredictor, list[ECGRecord], np.ndarray]:
    X, y = _morphology_records(24)
    clf = SignalCNNPredictor(width=8, epochs=25, batch_size=8, learning_rate=3e-3,
                             seed=1).fit(X, y)
    return clf, X, y


def test_training_learns_morphology(fitted: tuple) -> None:
    clf, _, _ = fitted
    loss = clf.history_["loss"]
    assert len(loss) == 25 and len(clf.history_["epoch_time_s"]) == 25
    assert np.mean(loss[-3:]) < 0.5 * np.mean(loss[:3])
    Xt, yt = _morphology_records(16, seed=7)
    proba = clf.predict_proba(Xt)
    assert proba.shape == (16, 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.mean(clf.predict(Xt) == yt) >= 0.9


def test_same_seed_same_model() -> None:
    X, y = _morphology_records(8)
    a = SignalCNNPredictor(width=4, epochs=2, batch_size=4, seed=3).fit(X, y)
    b = SignalCNNPredictor(width=4, epochs=2, batch_size=4, seed=3).fit(X, y)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-6)
    assert a.history_["loss"] == pytest.approx(b.history_["loss"], abs=1e-6)


def test_save_load_identical_predictions(fitted: tuple, tmp_path: Path) -> None:
    import h5py

    clf, X, _ = fitted
    path = clf.save(tmp_path / "m.ecgmodel")
    back = load_predictor(path)
    assert isinstance(back, SignalCNNPredictor) and back.width == 8 and back.epochs == 25
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert back.history_["loss"] == clf.history_["loss"]
    with zipfile.ZipFile(path) as outer, zipfile.ZipFile(io.BytesIO(outer.read("model.keras"))) as k, \
            h5py.File(io.BytesIO(k.read("model.weights.h5"))) as h5:
        assert "optimizer" not in h5  # weights only


def test_ensemble_averages_its_seeded_members(tmp_path: Path) -> None:
    X, y = _morphology_records(8)
    x = SignalCNNPredictor().preprocess(X)
    kw = dict(width=4, epochs=2, batch_size=4)
    ens = SignalCNNPredictor(n_members=2, seed=3, **kw).fit_prepared(x, y)
    one = SignalCNNPredictor(seed=3, **kw).fit_prepared(x, y)
    two = SignalCNNPredictor(seed=103, **kw).fit_prepared(x, y)  # member 1: seed + 100
    mean = (one.predict_proba_prepared(x) + two.predict_proba_prepared(x)) / 2
    np.testing.assert_allclose(ens.predict_proba_prepared(x), mean, atol=1e-6)
    assert ens.history_["loss_member_1"] == pytest.approx(two.history_["loss"], abs=1e-6)
    np.testing.assert_allclose(ens.history_["loss"],
                               (np.array(one.history_["loss"]) + two.history_["loss"]) / 2,
                               atol=1e-6)
    assert len(ens.history_["epoch_time_s"]) == 2
    import matplotlib

    matplotlib.use("Agg")
    labels = [ln.get_label() for ln in ens.plot_history().get_lines()]
    assert labels == ["loss", "loss_member_0", "loss_member_1"]
    back = load_predictor(ens.save(tmp_path / "e.ecgmodel"))
    assert back.n_members == 2
    np.testing.assert_array_equal(back.predict_proba(X), ens.predict_proba(X))
    with pytest.raises(ConfigurationError, match="n_members"):
        SignalCNNPredictor(n_members=0).fit(X, y)


def test_sheets_are_digitized_through_the_cache(tmp_path: Path,
                                                fake_digitizer: FakeDigitizer) -> None:  # noqa: F811
    sheets = write_sheets(tmp_path / "data", 4)
    paths = [str(p) for p, _ in sheets]
    clf = SignalCNNPredictor(width=4, epochs=1, batch_size=4, cache_dir=str(tmp_path / "c"))
    x = clf.preprocess(paths)
    assert x.shape == (8, 1000, 12) and fake_digitizer.calls == 8
    recs = digitize_records(paths, cache_dir=str(tmp_path / "c"))
    assert fake_digitizer.calls == 8  # read back from the cache
    np.testing.assert_allclose(x[3], signal_array(recs[3]), atol=1e-6)  # the cache is float32
    clf.fit(paths, [lab for _, lab in sheets])
    assert fake_digitizer.calls == 8
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((70, 70, 3), 255, np.uint8)).save(blank)
    with pytest.warns(DigitizationWarning, match="flat"):
        flat = clf.preprocess([str(blank)])
    assert np.all(flat == 0.0)
    with pytest.warns(DigitizationWarning):
        assert clf.predict_proba([str(blank)]).shape == (1, 2)


def test_errors_and_registry() -> None:
    X, y = _morphology_records(4)
    with pytest.raises(NotFittedError):
        SignalCNNPredictor().predict(X)
    with pytest.raises(ConfigurationError, match="two classes"):
        SignalCNNPredictor(epochs=1).fit(X, [1, 1, 1, 1])
    with pytest.raises(ConfigurationError, match="labels"):
        SignalCNNPredictor(epochs=1).fit(X, [0, 1])
    with pytest.raises(ConfigurationError, match="epochs"):
        SignalCNNPredictor(epochs=0).fit(X, y)
    with pytest.raises(ConfigurationError, match="64 samples"):
        SignalCNNPredictor(fs=10, duration_s=2).fit(X, y)
    with pytest.raises(ConfigurationError, match="class_weight"):
        SignalCNNPredictor(class_weight="auto").fit(X, y)
    with pytest.raises(ConfigurationError, match="pooling"):
        SignalCNNPredictor(pooling="max").fit(X, y)
    with pytest.raises(ConfigurationError, match="sequence"):
        SignalCNNPredictor().preprocess(X[0])
    assert "signal-cnn" in available_models()
    clf = make_predictor("signal-cnn", width=16)
    assert isinstance(clf, SignalCNNPredictor) and clf.width == 16


def test_shipped_reference_model_loads_and_predicts_records() -> None:
    path = Path(__file__).resolve().parents[1] / "ecgclassify" / "models" / \
        "reference-signal-cnn.ecgmodel"
    if not path.is_file():
        pytest.skip("the shipped model is not in this checkout")
    clf = load_predictor(path)
    assert isinstance(clf, SignalCNNPredictor) and clf.classes_.tolist() == [0, 1, 2, 3]
    assert clf.get_params()["fs"] == 100.0 and len(clf.history_["loss"]) == clf.epochs
    X, _ = _morphology_records(3)
    proba = clf.predict_proba(X)
    assert proba.shape == (3, 4) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_shipped_float16_export_agrees_with_the_keras_model() -> None:
    pytest.importorskip("ai_edge_litert")
    models = Path(__file__).resolve().parents[1] / "ecgclassify" / "models"
    lite_path = models / "reference-signal-cnn-float16.ecgmodel"
    if not lite_path.is_file():
        pytest.skip("the shipped model is not in this checkout")
    from ecgclassify.tflite import TFLitePredictor

    lite, clf = load_predictor(lite_path), load_predictor(models / "reference-signal-cnn.ecgmodel")
    assert isinstance(lite, TFLitePredictor) and lite.quantization_ == "float16"
    assert lite.preprocessing_["input"] == "signal"
    X, _ = _morphology_records(4)
    ref = clf.predict_proba(X)
    np.testing.assert_allclose(lite.predict_proba(X), ref, atol=5e-3)
    np.testing.assert_array_equal(lite.predict(X), clf.predict(X))


def test_time_stretch_reads_the_input_at_scaled_times_and_is_seeded() -> None:
    ramp = np.tile(np.arange(100, dtype=np.float32)[None, :, None], (50, 1, 2))
    out = time_stretch(ramp, np.random.default_rng(0), 0.1)
    # a ramp read at t * f is f * t: each input's slope is its factor, within +-10 %
    slopes = out[:, 1:60, 0].mean(axis=1) / np.arange(1, 60).mean()
    assert 0.9 <= slopes.min() < 0.95 and 1.05 < slopes.max() <= 1.1
    stretched = slopes > 1.0  # read past the end: 0 there, not a wrapped-around value
    assert np.all(out[stretched, -1, :] == 0) and np.all(out[~stretched, -1, :] > 80)
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 1])  # one factor for all leads
    np.testing.assert_array_equal(time_stretch(ramp, np.random.default_rng(0), 0.1), out)
    np.testing.assert_allclose(time_stretch(ramp, np.random.default_rng(0), 0.0)[:, :-1],
                               ramp[:, :-1])


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_stretch_out_of_range_is_refused_before_training(bad: float) -> None:
    x = np.zeros((4, 100, 12), np.float32)
    with pytest.raises(ConfigurationError, match="stretch"):
        SignalCNNPredictor(stretch=bad).fit_prepared(x, [0, 1, 0, 1])


def test_stretch_changes_the_training_batches_and_stays_seeded() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.3, (8, 128, 12)).astype(np.float32)
    y = [0, 1] * 4
    kw = dict(width=4, epochs=2, batch_size=4, seed=3)
    plain = SignalCNNPredictor(**kw).fit_prepared(x, y).history_["loss"]
    a = SignalCNNPredictor(stretch=0.1, **kw).fit_prepared(x, y).history_["loss"]
    b = SignalCNNPredictor(stretch=0.1, **kw).fit_prepared(x, y).history_["loss"]
    assert a == b
    assert a != plain
