"""TFLite / LiteRT export of a CNN predictor, and an inference-only predictor that needs no TensorFlow.

:func:`export_tflite` converts a fitted :class:`~ecgclassify.cnn.CNNPredictor`
(float32, float16 or int8 weights) and returns a :class:`TFLitePredictor`;
that predictor runs on the standalone ``ai_edge_litert`` runtime and prepares
its input with the same NumPy/PIL code as the Keras path
(:func:`ecgclassify.imagedata.prepare_batch`), so both see identical pixels.

Examples
--------
>>> TFLitePredictor(num_threads=2).get_params()["num_threads"]
2
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgdigitize.errors import ConfigurationError, MissingDependencyError, ModelFormatError

from .base import BasePredictor, register_predictor
from .cnn import CNNPredictor, aggregate_crops
from .imagedata import prepare_batch

__all__ = ["QUANTIZATIONS", "TFLitePredictor", "export_tflite", "tflite_bytes"]

QUANTIZATIONS = ("float32", "float16", "int8")


def tflite_bytes(model: Any, input_hw: tuple[int, int], quantization: str = "float32",
                 representative: np.ndarray | None = None) -> bytes:
    """Convert a Keras model (float images ``(None, h, w, 3)`` or signals) to a TFLite flatbuffer.

    Parameters
    ----------
    model : keras.Model
    input_hw : (height, width) in px
        The model's input (``(samples, leads)`` for a signal model); the converter reads
        the shapes from the model itself.
    quantization : {"float32", "float16", "int8"}, default "float32"
        ``"float16"`` halves the weights; ``"int8"`` quantizes weights and
        activations (needs ``representative``) and keeps float32 input/output.
    representative : ndarray (n, h, w, 3) uint8 or (n, samples, leads) float32, optional
        Prepared inputs that calibrate int8 activation ranges.

    Returns
    -------
    bytes
        The TFLite flatbuffer (what :attr:`TFLitePredictor.model_content_` holds).

    Raises
    ------
    ConfigurationError
        Unknown quantization, or int8 without representative images.

    Examples
    --------
    The conversion imports TensorFlow (seconds), so it is skipped in the doctests:

    >>> from ecgclassify.cnn import build_model
    >>> model = build_model("mobilenet_v2", (64, 64, 3), 2, alpha=0.35)  # doctest: +SKIP
    >>> content = tflite_bytes(model, (64, 64), "float16")  # doctest: +SKIP
    >>> content[4:8]  # doctest: +SKIP
    b'TFL3'

    Invalid arguments fail before TensorFlow is imported:

    >>> tflite_bytes(None, (64, 64), "int8")
    Traceback (most recent call last):
    ...
    ecgdigitize.errors.ConfigurationError: int8 quantization needs representative_images
    """
    if quantization not in QUANTIZATIONS:
        raise ConfigurationError(f"quantization must be one of {QUANTIZATIONS}; "
                                 f"got {quantization!r}")
    if quantization == "int8" and (representative is None or len(representative) == 0):
        raise ConfigurationError("int8 quantization needs representative_images")
    try:
        import tensorflow as tf
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError("exporting to TFLite needs TensorFlow") from exc

    # from_keras_model freezes the weights; a tf.function over a Keras 3 model keeps
    # resource variables that the LiteRT runtime reads as uninitialized (NaN).
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        reps = np.asarray(representative, np.float32)

        def gen() -> Any:
            for img in reps[:200]:
                yield [img[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = gen
    return bytes(converter.convert())


def export_tflite(predictor: Any, path: str | os.PathLike[str] | None = None, *,
                  quantization: str = "float32",
                  representative_images: Sequence[Any] | None = None) -> TFLitePredictor:
    """Export a fitted CNN predictor to TFLite.

    Parameters
    ----------
    predictor : CNNPredictor or SignalCNNPredictor
        Fitted.
    path : path-like, optional
        Where to write: a ``.tflite`` suffix writes the bare flatbuffer, any
        other suffix a predictor archive (``load_predictor`` reads it back).
    quantization : {"float32", "float16", "int8"}, default "float32"
    representative_images : sequence of sheets, optional
        Calibration sheets for int8 (paths or arrays; ~50-200 are enough).

    Returns
    -------
    TFLitePredictor
        Fitted, ready to predict.

    Raises
    ------
    ConfigurationError
        ``predictor`` is not a Keras predictor, an unknown quantization, or int8 without
        representative images.
    NotFittedError
        ``predictor`` is not fitted.

    Examples
    --------
    Training and conversion need TensorFlow, so these lines are skipped in the
    doctests (``sheets``: paths of sheet images, ``y``: their class indices):

    >>> import tempfile
    >>> from ecgclassify import load_predictor
    >>> from ecgclassify.cnn import CNNPredictor
    >>> cnn = CNNPredictor(epochs=5).fit(sheets, y)  # doctest: +SKIP
    >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +SKIP
    ...     lite = export_tflite(cnn, f"{tmp}/model_int8.zip", quantization="int8",
    ...                          representative_images=sheets[:100])
    ...     reloaded = load_predictor(f"{tmp}/model_int8.zip")
    >>> reloaded.quantization_, reloaded.predict_proba(sheets).shape[1] == len(cnn.classes_)  # doctest: +SKIP
    ('int8', True)
    """
    from .signal_cnn import SignalCNNPredictor

    if not isinstance(predictor, CNNPredictor | SignalCNNPredictor):
        raise ConfigurationError("only Keras predictors (CNNPredictor, SignalCNNPredictor) can "
                                 f"be exported to TFLite; got {type(predictor).__name__}")
    predictor._check_fitted()
    signal = isinstance(predictor, SignalCNNPredictor)
    preprocessing: dict[str, Any]
    if signal:
        preprocessing = {"input": "signal", "fs": float(predictor.fs),
                         "duration_s": float(predictor.duration_s),
                         "digitize_kwargs": predictor.digitize_kwargs}
    else:
        preprocessing = {"input": predictor.input, "image_size": list(predictor.image_size_),
                         "crop": True, "lead_source": predictor.lead_source,
                         "color": predictor.color, "backbone": predictor.backbone}
    reps = None
    if representative_images is not None:
        reps = _flat_inputs(predictor.preprocess(representative_images), signal)
    content = tflite_bytes(predictor.model_, tuple(predictor.model_.input_shape[1:3]),
                           quantization, reps)
    lite = TFLitePredictor()
    lite.classes_ = np.asarray(predictor.classes_)
    lite.model_content_ = content
    lite.preprocessing_ = preprocessing
    lite.quantization_ = quantization
    if path is not None:
        p = Path(path)
        if p.suffix == ".tflite":
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content)
        else:
            lite.save(p)
    return lite


def _flat_inputs(prepared: np.ndarray, signal: bool) -> np.ndarray:
    """The network's inputs: signals as they are, sheets' lead crops one per row."""
    return prepared if signal else prepared.reshape(-1, *prepared.shape[-3:])


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:  # pragma: no cover - fallback for TensorFlow-only installs
        import tensorflow as tf

        return tf.lite.Interpreter
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("TFLite inference needs ai-edge-litert: "
                                     "pip install 'ecgdigitize[tflite]'") from exc


@register_predictor("tflite")
class TFLitePredictor(BasePredictor):
    """Inference-only CNN predictor on the LiteRT runtime (no TensorFlow needed).

    Create one with :func:`export_tflite` or :func:`ecgclassify.load_predictor`.

    Parameters
    ----------
    num_threads : int or None, default None
        Interpreter threads (None: the runtime's default).
    batch_size : int, default 16
        Sheets (or lead crops) per interpreter call.

    Attributes
    ----------
    classes_ : ndarray
    model_content_ : bytes
        The TFLite flatbuffer.
    preprocessing_ : dict
        ``input`` ("sheet"/"leads"), ``image_size`` [h, w] in px, ``crop``,
        ``lead_source``, ``color`` ("rgb"/"grey"); or ``input`` "signal" with ``fs`` (Hz),
        ``duration_s`` (s) and ``digitize_kwargs`` for an exported
        :class:`~ecgclassify.signal_cnn.SignalCNNPredictor`.
    quantization_ : str

    Examples
    --------
    An unfitted predictor holds only its settings:

    >>> lite = TFLitePredictor(num_threads=2, batch_size=8)
    >>> lite.get_params()
    {'batch_size': 8, 'num_threads': 2}

    A fitted one comes from :func:`export_tflite` or a saved archive; it needs
    only ``ai_edge_litert`` (``sheets``: paths of sheet images):

    >>> from ecgclassify import load_predictor
    >>> lite = load_predictor("model_int8.zip")  # doctest: +SKIP
    >>> lite.predict_proba(sheets).shape == (len(sheets), len(lite.classes_))  # doctest: +SKIP
    True
    """

    def __init__(self, num_threads: int | None = None, batch_size: int = 16) -> None:
        self.num_threads = num_threads
        self.batch_size = batch_size

    def fit(self, X: Sequence[Any], y: Sequence[int] | np.ndarray) -> TFLitePredictor:
        """Not supported: train a Keras predictor and export it."""
        raise ConfigurationError("TFLitePredictor is inference-only; fit a CNNPredictor and "
                                 "convert it with ecgclassify.tflite.export_tflite()")

    def preprocess(self, X: Sequence[Any]) -> np.ndarray:
        """Prepared input (uint8 images or float32 signals), identical to the Keras predictor's."""
        self._check_fitted()
        pp = self.preprocessing_
        if pp["input"] == "signal":
            from .signal_cnn import SignalCNNPredictor

            return SignalCNNPredictor(fs=float(pp["fs"]), duration_s=float(pp["duration_s"]),
                                      digitize_kwargs=pp.get("digitize_kwargs")).preprocess(X)
        return prepare_batch(X, tuple(pp["image_size"]), input=pp["input"],
                             crop=bool(pp.get("crop", True)),
                             lead_source=str(pp.get("lead_source", "grid")),
                             color=str(pp.get("color", "rgb")))

    def predict_proba(self, X: Sequence[Any]) -> np.ndarray:
        """Class probabilities per sheet, shape (n_sheets, n_classes)."""
        return self.predict_proba_prepared(self.preprocess(X))

    def predict_proba_prepared(self, images: np.ndarray) -> np.ndarray:
        """Like :meth:`predict_proba` on already prepared inputs (see :meth:`preprocess`)."""
        self._check_fitted()
        signal = self.preprocessing_["input"] == "signal"
        flat = _flat_inputs(np.asarray(images), signal).astype(np.float32)
        out = np.empty((len(flat), len(self.classes_)), np.float32)
        bs = max(1, int(self.batch_size))
        for i in range(0, len(flat), bs):
            out[i:i + bs] = self._invoke(flat[i:i + bs])
        return out if signal else aggregate_crops(out, len(images))

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        interp = getattr(self, "_interpreter", None)
        if interp is None:
            interp = _interpreter_class()(model_content=self.model_content_,
                                          num_threads=self.num_threads)
            self._interpreter, self._batch = interp, -1
        inp = interp.get_input_details()[0]
        if self._batch != len(batch):
            interp.resize_tensor_input(inp["index"], list(batch.shape))
            interp.allocate_tensors()
            self._batch = len(batch)
        interp.set_tensor(inp["index"], batch)
        interp.invoke()
        return np.asarray(interp.get_tensor(interp.get_output_details()[0]["index"]))

    def _save_payload(self, directory: Path) -> dict[str, Any]:
        (directory / "model.tflite").write_bytes(self.model_content_)
        (directory / "preprocessing.json").write_text(json.dumps(self.preprocessing_))
        return {"model": "model.tflite", "preprocessing": self.preprocessing_,
                "quantization": self.quantization_}

    def _load_payload(self, directory: Path, info: dict[str, Any]) -> None:
        path = directory / info.get("model", "model.tflite")
        if not path.is_file():
            raise ModelFormatError("archive holds no model.tflite", path=path)
        self.model_content_ = path.read_bytes()
        self.preprocessing_ = dict(info["preprocessing"])
        self.quantization_ = str(info.get("quantization", "float32"))
