"""Tests of ecgclassify.tflite: export (float32/float16/int8), agreement with Keras, archive round trip."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecgdigitize.errors import ConfigurationError

HAS_TF = all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "keras"))
HAS_LITERT = importlib.util.find_spec("ai_edge_litert") is not None
pytestmark = [pytest.mark.cnn,
              pytest.mark.skipif(not (HAS_TF and HAS_LITERT),
                                 reason="TensorFlow/Keras or ai-edge-litert not installed")]


@pytest.fixture(scope="module")
def fitted() -> tuple[object, list[np.ndarray], np.ndarray]:
    from test_cnn import make_sheets

    from ecgclassify.cnn import CNNPredictor

    X, y = make_sheets(12, seed=5)
    clf = CNNPredictor(alpha=0.35, image_size=(64, 96), epochs=3, batch_size=4,
                       augmentation=None, validation_fraction=0.0, bn_momentum=0.5,
                       seed=1)
    return clf.fit(X, y), X, y


def _last_line_without_tensorflow(archive: Path, expression: str) -> str:
    """Load ``archive`` in a fresh interpreter, print ``expression`` (``p`` is the predictor);
    fails if TensorFlow got imported there."""
    code = ("import sys, numpy as np, ecgclassify; "
            f"p = ecgclassify.load_predictor({str(archive)!r}); print({expression}); "
            "sys.exit(int('tensorflow' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_float32_export_agrees_with_keras(fitted: tuple, tmp_path: Path) -> None:
    from ecgclassify import load_predictor
    from ecgclassify.tflite import TFLitePredictor, export_tflite

    clf, X, _ = fitted
    lite = export_tflite(clf, tmp_path / "m.ecgmodel", quantization="float32")
    keras_p = clf.predict_proba(X)
    lite_p = lite.predict_proba(X)
    np.testing.assert_allclose(lite_p, keras_p, atol=1e-3)
    np.testing.assert_array_equal(lite_p.argmax(1), keras_p.argmax(1))
    back = load_predictor(tmp_path / "m.ecgmodel")
    assert isinstance(back, TFLitePredictor) and back.quantization_ == "float32"
    np.testing.assert_array_equal(back.predict_proba(X), lite_p)
    assert np.array_equal(back.predict(X), clf.classes_[lite_p.argmax(1)])


def test_float16_and_int8_exports_are_smaller_and_close(fitted: tuple, tmp_path: Path) -> None:
    from ecgclassify.tflite import export_tflite

    clf, X, _ = fitted
    f32 = export_tflite(clf, tmp_path / "a.tflite")
    f16 = export_tflite(clf, quantization="float16")
    i8 = export_tflite(clf, quantization="int8", representative_images=X)
    assert (tmp_path / "a.tflite").read_bytes() == f32.model_content_
    assert len(f16.model_content_) < 0.7 * len(f32.model_content_)
    assert len(i8.model_content_) < 0.5 * len(f32.model_content_)
    ref = clf.predict_proba(X)
    np.testing.assert_allclose(f16.predict_proba(X), ref, atol=2e-2)
    assert np.abs(i8.predict_proba(X) - ref).max() < 0.25


def test_bad_quantization_and_inference_only(fitted: tuple) -> None:
    from ecgclassify.tflite import TFLitePredictor, export_tflite

    clf, X, y = fitted
    with pytest.raises(ConfigurationError):
        export_tflite(clf, quantization="int4")
    with pytest.raises(ConfigurationError):
        export_tflite(clf, quantization="int8")  # no representative images
    with pytest.raises(ConfigurationError):
        TFLitePredictor().fit(X, y)


def test_lite_archive_predicts_without_tensorflow(fitted: tuple, tmp_path: Path) -> None:
    from PIL import Image

    from ecgclassify.tflite import export_tflite

    clf, X, _ = fitted
    export_tflite(clf, tmp_path / "m.ecgmodel")
    Image.fromarray(X[0]).save(tmp_path / "s.png")
    expected = int(clf.predict([X[0]])[0])
    line = _last_line_without_tensorflow(tmp_path / "m.ecgmodel",
                                         f"int(p.predict([{str(tmp_path / 's.png')!r}])[0])")
    assert int(line) == expected


def test_grey_predictor_exports_its_colour(tmp_path: Path) -> None:
    from test_cnn import make_sheets

    from ecgclassify import load_predictor
    from ecgclassify.cnn import CNNPredictor
    from ecgclassify.tflite import export_tflite

    X, y = make_sheets(8, seed=7)
    clf = CNNPredictor(image_size=(48, 64), epochs=1, batch_size=8, augmentation=None,
                       validation_fraction=0.0, color="grey").fit(X, y)
    export_tflite(clf, tmp_path / "g.ecgmodel")
    lite = load_predictor(tmp_path / "g.ecgmodel")
    assert lite.preprocessing_["color"] == "grey"
    np.testing.assert_array_equal(lite.preprocess(X), clf.preprocess(X))
    np.testing.assert_allclose(lite.predict_proba(X), clf.predict_proba(X), atol=1e-4)


def test_signal_cnn_exports_and_runs_without_tensorflow(tmp_path: Path) -> None:
    from test_signal_cnn import _morphology_records

    from ecgclassify import load_predictor
    from ecgclassify.signal_cnn import SignalCNNPredictor
    from ecgclassify.tflite import TFLitePredictor, export_tflite

    X, y = _morphology_records(12)
    clf = SignalCNNPredictor(width=8, epochs=4, batch_size=4, n_members=2, seed=2).fit(X, y)
    ref = clf.predict_proba(X)
    lite = export_tflite(clf, tmp_path / "s.ecgmodel")
    assert lite.preprocessing_ == {"input": "signal", "fs": 100.0, "duration_s": 10.0,
                                   "digitize_kwargs": None}
    np.testing.assert_array_equal(lite.preprocess(X), clf.preprocess(X))
    np.testing.assert_allclose(lite.predict_proba(X), ref, atol=1e-4)
    f16 = export_tflite(clf, quantization="float16")
    i8 = export_tflite(clf, quantization="int8", representative_images=X)
    assert len(f16.model_content_) < 0.7 * len(lite.model_content_)
    assert len(i8.model_content_) < 0.5 * len(lite.model_content_)
    np.testing.assert_allclose(f16.predict_proba(X), ref, atol=2e-2)
    assert np.abs(i8.predict_proba(X) - ref).max() < 0.25
    back = load_predictor(tmp_path / "s.ecgmodel")
    assert isinstance(back, TFLitePredictor)
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    # a fresh interpreter holding only the archive and ai-edge-litert (no TensorFlow)
    x_path = tmp_path / "x.npy"
    np.save(x_path, clf.preprocess(X))
    line = _last_line_without_tensorflow(
        tmp_path / "s.ecgmodel", f"p.predict_proba_prepared(np.load({str(x_path)!r})).argmax(1).tolist()")
    assert line == str(ref.argmax(1).tolist())
