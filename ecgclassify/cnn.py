"""MobileNetV2 / EfficientNetV2 image classifiers behind the shared predictor interface.

:class:`CNNPredictor` trains a Keras 3 (TensorFlow backend) backbone from
scratch (or from ImageNet weights where they can be downloaded) on sheets
cropped to their grid area (:mod:`ecgclassify.imagedata`). With
``input="leads"`` it classifies the 16 lead crops of each sheet and averages
their log-probabilities, so predictions are always one per sheet.

TensorFlow is imported inside the methods only: ``import ecgclassify`` stays light.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgdigitize.errors import (
    ConfigurationError,
    MissingDependencyError,
    ModelFormatError,
    WeightsUnavailableError,
)

from .base import BasePredictor, register_predictor
from .imagedata import Augmentation, make_dataset, normalize_image_size, prepare_batch

__all__ = ["BACKBONES", "CNNPredictor", "build_model"]

logger = logging.getLogger(__name__)
#: Default (mild, no flip) training augmentation.
DEFAULT_AUGMENTATION = Augmentation()

#: Backbone name -> keras.applications constructor name.
BACKBONES: dict[str, str] = {
    "mobilenet_v2": "MobileNetV2",
    "efficientnet_v2_b0": "EfficientNetV2B0",
    "efficientnet_v2_b1": "EfficientNetV2B1",
    "efficientnet_v2_b2": "EfficientNetV2B2",
    "efficientnet_v2_s": "EfficientNetV2S",
}


def _import_keras(*, require_tensorflow: bool = True) -> Any:
    """Import Keras, and TensorFlow, which training's ``tf.data`` pipeline needs.

    With ``require_tensorflow=False`` any Keras 3 backend will do: building a
    model and predicting also run on JAX or PyTorch (``KERAS_BACKEND``), as in
    ``benchmarks/gpu_cnn_study.py`` on a GPU machine without TensorFlow.
    """
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras

        if require_tensorflow or keras.backend.backend() == "tensorflow":
            import tensorflow  # noqa: F401  (the backend)
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError(
            "CNN predictors need TensorFlow and Keras: pip install 'ecgdigitize[cnn]'") from exc
    return keras


def build_model(backbone: str, input_shape: tuple[int, int, int], n_classes: int, *,
                alpha: float = 1.0, weights: str | None = None, dropout: float = 0.2,
                bn_momentum: float | None = 0.9) -> Any:
    """Build an uncompiled Keras classifier: scaling, backbone, pooling, dropout, softmax.

    The model takes float32 images with values in [0, 255] (shape
    ``(None, *input_shape)``) and holds only built-in layers (no Lambda), so it
    loads with ``safe_mode=True`` and converts to TFLite.

    Parameters
    ----------
    backbone : str
        A key of :data:`BACKBONES`.
    input_shape : (height, width, 3)
    n_classes : int
    alpha : float, default 1.0
        MobileNetV2 width multiplier (ignored by EfficientNetV2).
    weights : {None, "imagenet"} or path, default None
        ``None`` trains from scratch; ``"imagenet"`` downloads the backbone's
        ImageNet weights; a path loads weights of the whole model afterwards.
    dropout : float, default 0.2
    bn_momentum : float or None, default 0.9
        Momentum of every BatchNormalization layer's moving statistics when
        training from scratch (MobileNetV2's own 0.999 needs thousands of steps
        to converge, and the inference-mode network then outputs one class).
        ``None`` keeps the backbone's value.

    Returns
    -------
    keras.Model
        Uncompiled; input ``(None, height, width, 3)`` float32 in [0, 255],
        output ``(None, n_classes)`` softmax probabilities.
        Built on whichever Keras backend is active (TensorFlow, JAX, PyTorch).

    Raises
    ------
    ConfigurationError
        Unknown backbone.
    WeightsUnavailableError
        ImageNet weights asked for but not downloadable (offline machine).

    Examples
    --------
    Building the model imports TensorFlow (seconds), so these lines are skipped
    in the doctests:

    >>> model = build_model("mobilenet_v2", (160, 272, 3), 2, alpha=0.35)  # doctest: +SKIP
    >>> model.input_shape, model.output_shape  # doctest: +SKIP
    ((None, 160, 272, 3), (None, 2))
    """
    keras = _import_keras(require_tensorflow=False)
    if backbone not in BACKBONES:
        raise ConfigurationError(f"unknown backbone {backbone!r}; choose one of "
                                 f"{sorted(BACKBONES)}")
    inputs = keras.Input(shape=input_shape, name="image")
    kwargs: dict[str, Any] = {"include_top": False, "input_shape": input_shape,
                              "weights": "imagenet" if weights == "imagenet" else None}
    if backbone == "mobilenet_v2":
        x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit_range")(inputs)
        kwargs["alpha"] = alpha
    else:
        x = inputs  # EfficientNetV2 rescales internally (include_preprocessing=True)
    try:
        base = getattr(keras.applications, BACKBONES[backbone])(**kwargs)
    except Exception as exc:
        if weights == "imagenet":
            raise WeightsUnavailableError(
                f"ImageNet weights for {backbone} could not be downloaded ({type(exc).__name__}: "
                f"{exc}); this machine is probably offline. Use weights=None to train from "
                "scratch, or put the weights file in ~/.keras/models/") from exc
        raise
    if weights != "imagenet" and bn_momentum is not None:
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(bn_momentum)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name=f"ecgclassify_{backbone}")
    if weights not in (None, "imagenet"):
        _load_weights_file(model, weights)
    return model


def _load_weights_file(model: Any, path: str | os.PathLike[str]) -> None:
    keras = _import_keras(require_tensorflow=False)
    p = Path(path)
    if not p.is_file():
        raise WeightsUnavailableError("weights file not found", path=path)
    if p.suffix == ".keras":
        src = keras.saving.load_model(p, safe_mode=True, compile=False)
        model.set_weights(src.get_weights())
    else:
        model.load_weights(p)


def weights_only(model: Any) -> Any:
    """``model`` rebuilt from its config with its weights: no compile or optimizer state.

    What predictors save (``resume_from`` restarts the optimizer anyway). Adam's two
    moments would triple the file, and ``keras.models.clone_model`` keeps them in
    Keras 3.15 (a fitted MobileNetV2 0.35 saved 5.4 MB of weights instead of 1.7 MB).

    Parameters
    ----------
    model : keras.Model
        A built model, compiled or not.

    Returns
    -------
    keras.Model
        ``model`` itself when it has no optimizer, else an uncompiled copy with the
        same weights.
    """
    if getattr(model, "optimizer", None) is None:
        return model
    bare = type(model).from_config(model.get_config())
    bare.set_weights(model.get_weights())
    return bare


def _content_groups(images: np.ndarray) -> np.ndarray:
    """One group per distinct prepared image (SHA-256 of its pixels)."""
    return np.array([hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
                     for a in images])


def _grouped_validation_split(y: np.ndarray, groups: np.ndarray, fraction: float,
                              seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    n_splits = max(2, round(1.0 / fraction))
    try:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        tr, va = next(splitter.split(np.zeros(len(y)), y, groups))
    except ValueError:
        gss = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        tr, va = next(gss.split(np.zeros(len(y)), y, groups))
    return tr, va


@register_predictor("cnn")
class CNNPredictor(BasePredictor):
    """A MobileNetV2 / EfficientNetV2 sheet classifier (Keras 3, TensorFlow backend).

    Parameters
    ----------
    backbone : str, default "mobilenet_v2"
        ``"mobilenet_v2"``, ``"efficientnet_v2_b0"``, ``"efficientnet_v2_b1"``...
    input : {"sheet", "leads"}, default "sheet"
        Whole grid area, or its 16 lead crops (fixed 3x4+1 split) with
        per-sheet mean of the crops' log-probabilities.
    image_size : int or (height, width), optional
        Network input in px. Default (160, 272) for sheets (the grid area's
        aspect ratio, about 1.7) and (64, 112) for lead crops.
    alpha : float, default 0.35
        MobileNetV2 width multiplier.
    weights : None, "imagenet" or path, default None
    epochs : int, default 30
    batch_size : int, default 16
    learning_rate : float, default 1e-3
        Adam learning rate.
    augmentation : Augmentation or None, default Augmentation()
        Random geometric augmentation of training images.
    class_weight : {"balanced", None}, default "balanced"
        Per-class loss weights inversely proportional to class frequency.
    validation_fraction : float, default 0.15
        Fraction of the training groups held out for early stopping (a
        grouped, stratified split). 0 disables early stopping.
    bn_momentum : float, default 0.9
        BatchNormalization momentum when training from scratch (see :func:`build_model`).
    patience : int, default 6
        Epochs without validation-loss improvement before stopping; the best
        epoch's weights are restored.
    min_epochs : int, default 0
        No early stop before this many epochs (the best epoch is still looked
        for from the first). On a 15 % validation split a noisy early minimum of
        the loss stopped some augmented runs after 4-9 epochs; the GPU study's
        best recipe uses 60 (``docs/results/cnn_models.md``).
    deduplicate : bool, default True
        Train on one copy of byte-identical inputs (they add nothing but weight).
    paper_protocol : bool, default False
        Use :meth:`Augmentation.paper` (flips on), as the reference paper did.
    lead_source : {"grid", "digitizer"}, default "grid"
        Where lead crops come from (``input="leads"``): the fixed 3x4+1 split
        of the grid area, or the digitizer's panels (slow; falls back to the
        fixed split with a warning). See :func:`~ecgclassify.imagedata.prepare_leads`.
    color : {"rgb", "grey"}, default "rgb"
        Colour of the network input; ``"grey"`` is the luma repeated in three
        channels (:func:`~ecgclassify.imagedata.prepare_batch`), the input of
        the GPU study's best recipe.
    checkpoint_path : path or None, default None
        Where to save the best model (``.keras``) after each improving epoch.
    seed : int, default 0
    verbose : int, default 0
        Keras verbosity.

    Attributes
    ----------
    classes_ : ndarray
    model_ : keras.Model
    history_ : dict of str to list of float
        Per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``epoch_time_s``.
    train_time_s_ : float

    Examples
    --------
    >>> clf = CNNPredictor(backbone="mobilenet_v2", image_size=(64, 96), epochs=2)
    >>> clf.get_params()["backbone"]
    'mobilenet_v2'
    """

    def __init__(self, backbone: str = "mobilenet_v2", input: str = "sheet",
                 image_size: int | Sequence[int] | None = None, alpha: float = 0.35,
                 weights: str | None = None, epochs: int = 30, batch_size: int = 16,
                 learning_rate: float = 1e-3, augmentation: Augmentation | None = DEFAULT_AUGMENTATION,
                 class_weight: str | None = "balanced", validation_fraction: float = 0.15,
                 patience: int = 6, bn_momentum: float = 0.9, deduplicate: bool = True,
                 paper_protocol: bool = False, lead_source: str = "grid",
                 checkpoint_path: str | None = None, seed: int = 0, verbose: int = 0,
                 min_epochs: int = 0, color: str = "rgb") -> None:
        self.backbone = backbone
        self.input = input
        self.image_size = image_size
        self.alpha = alpha
        self.weights = weights
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.augmentation = augmentation
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.bn_momentum = bn_momentum
        self.deduplicate = deduplicate
        self.paper_protocol = paper_protocol
        self.lead_source = lead_source
        self.checkpoint_path = checkpoint_path
        self.seed = seed
        self.verbose = verbose
        self.min_epochs = min_epochs
        self.color = color

    # --- preprocessing -----------------------------------------------------------
    @property
    def image_size_(self) -> tuple[int, int]:
        """Input ``(height, width)`` in px after defaults."""
        if self.image_size is None:
            return (64, 112) if self.input == "leads" else (160, 272)
        return normalize_image_size(self.image_size)

    def _augmentation(self) -> Augmentation | None:
        if self.paper_protocol:
            return Augmentation.paper()
        aug = self.augmentation
        if isinstance(aug, dict):
            aug = Augmentation(**aug)
        return aug if isinstance(aug, Augmentation) else None

    def preprocess(self, X: Sequence[Any]) -> np.ndarray:
        """Prepared uint8 input, ``(n, h, w, 3)`` or ``(n, 16, h, w, 3)`` for leads."""
        return prepare_batch(X, self.image_size_, input=self.input,
                             lead_source=self.lead_source, color=self.color)

    # --- fit ---------------------------------------------------------------------------
    def fit(self, X: Sequence[Any], y: Sequence[int] | np.ndarray, groups: Sequence[Any] | None = None, *,
            resume_from: str | os.PathLike[str] | None = None) -> CNNPredictor:
        """Train on sheets ``X`` with labels ``y``.

        Parameters
        ----------
        X : sequence of path-like, PIL images or arrays
        y : sequence of int
        groups : sequence, optional
            Group of each sheet (identical sheets share one); the early-stopping
            validation split never separates a group. Default: content hashes.
        resume_from : path, optional
            A ``.keras`` checkpoint (from ``checkpoint_path``) or a saved
            predictor archive whose weights training starts from.

        Returns
        -------
        self

        Raises
        ------
        ConfigurationError
            Bad parameters or fewer than two classes.
        """
        self._check_params()
        keras = _import_keras()
        keras.utils.set_random_seed(int(self.seed))
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        y_arr = np.asarray(y)
        self.classes_ = np.unique(y_arr)
        if self.classes_.size < 2:
            raise ConfigurationError(f"need at least two classes to train; got {self.classes_}")
        t0 = time.perf_counter()
        images = self.preprocess(X)
        yi = np.searchsorted(self.classes_, y_arr)
        grp = _content_groups(images) if groups is None else np.asarray(groups).astype(str)
        if self.deduplicate:
            _, first = np.unique(_content_groups(images), return_index=True)
            keep = np.sort(first)
            images, yi, grp = images[keep], yi[keep], grp[keep]
        tr, va = self._split(yi, grp)
        self.model_ = self._new_model(resume_from)
        history = self._train(images, yi, tr, va)
        self.history_ = history
        self.train_time_s_ = time.perf_counter() - t0
        self.n_train_images_ = len(tr)
        return self

    def _check_params(self) -> None:
        if self.input not in ("sheet", "leads"):
            raise ConfigurationError(f"input must be 'sheet' or 'leads'; got {self.input!r}")
        if self.backbone not in BACKBONES:
            raise ConfigurationError(f"unknown backbone {self.backbone!r}; choose one of "
                                     f"{sorted(BACKBONES)}")
        if not 0.0 <= float(self.validation_fraction) < 0.5:
            raise ConfigurationError("validation_fraction must be in [0, 0.5); got "
                                     f"{self.validation_fraction}")
        if self.color not in ("rgb", "grey"):
            raise ConfigurationError(f"color must be 'rgb' or 'grey'; got {self.color!r}")
        if int(self.min_epochs) < 0:
            raise ConfigurationError(f"min_epochs must be >= 0; got {self.min_epochs}")
        if self.class_weight not in ("balanced", None):
            raise ConfigurationError(f"class_weight must be 'balanced' or None; "
                                     f"got {self.class_weight!r}")

    def _split(self, yi: np.ndarray, grp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(len(yi))
        if self.validation_fraction <= 0 or len(np.unique(grp)) < 4:
            return idx, idx[:0]
        return _grouped_validation_split(yi, grp, float(self.validation_fraction),
                                         int(self.seed))

    def _new_model(self, resume_from: str | os.PathLike[str] | None) -> Any:
        keras = _import_keras()
        model = build_model(self.backbone, (*self.image_size_, 3), len(self.classes_),
                            alpha=float(self.alpha), weights=self.weights,
                            bn_momentum=self.bn_momentum)
        if resume_from is not None:
            p = Path(resume_from)
            if p.suffix == ".keras":
                _load_weights_file(model, p)
            else:
                from .base import load_predictor

                src = load_predictor(p)
                if not hasattr(src, "model_"):
                    raise ModelFormatError("archive holds no Keras model to resume from",
                                           path=p)
                model.set_weights(src.model_.get_weights())
        model.compile(optimizer=keras.optimizers.Adam(float(self.learning_rate)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def _flatten(self, images: np.ndarray, yi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.input == "leads":
            n_crops = images.shape[1]
            return images.reshape(-1, *images.shape[2:]), np.repeat(yi, n_crops)
        return images, yi

    def _train(self, images: np.ndarray, yi: np.ndarray, tr: np.ndarray,
               va: np.ndarray) -> dict[str, list[float]]:
        keras = _import_keras()
        xtr, ytr = self._flatten(images[tr], yi[tr])
        weights = None
        if self.class_weight == "balanced":
            counts = np.bincount(ytr, minlength=len(self.classes_)).astype(float)
            cw = len(ytr) / (len(self.classes_) * np.maximum(counts, 1.0))
            weights = cw[ytr]
        bs = int(self.batch_size)
        train_ds = make_dataset(xtr, ytr, weights, batch_size=bs, shuffle=True,
                                augmentation=self._augmentation(), seed=int(self.seed))
        callbacks: list[Any] = [_EpochTimer()]
        val_ds = None
        if va.size:
            xva, yva = self._flatten(images[va], yi[va])
            val_ds = make_dataset(xva, yva, batch_size=bs)
            callbacks.append(_early_stopping(int(self.patience), int(self.min_epochs)))
            if self.checkpoint_path:
                callbacks.append(keras.callbacks.ModelCheckpoint(
                    os.fspath(self.checkpoint_path), monitor="val_loss", save_best_only=True))
        elif self.checkpoint_path:
            callbacks.append(keras.callbacks.ModelCheckpoint(os.fspath(self.checkpoint_path)))
        hist = self.model_.fit(train_ds, validation_data=val_ds, epochs=int(self.epochs),
                               callbacks=callbacks, verbose=int(self.verbose),
                               shuffle=False)  # the dataset shuffles (seeded)
        out = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        out["epoch_time_s"] = callbacks[0].times
        return out

    # --- predict -----------------------------------------------------------------------
    def predict_proba(self, X: Sequence[Any]) -> np.ndarray:
        """Class probabilities per sheet, shape (n_sheets, n_classes)."""
        self._check_fitted()
        return self.predict_proba_prepared(self.preprocess(X))

    def predict_proba_prepared(self, images: np.ndarray) -> np.ndarray:
        """Like :meth:`predict_proba` on already prepared images (see :meth:`preprocess`)."""
        self._check_fitted()
        n = len(images)
        flat = images.reshape(-1, *images.shape[-3:]).astype(np.float32)
        probs = np.empty((len(flat), len(self.classes_)), np.float32)
        bs = max(int(self.batch_size), 32)
        for i in range(0, len(flat), bs):
            probs[i:i + bs] = np.asarray(self.model_(flat[i:i + bs], training=False))
        return aggregate_crops(probs, n)

    # --- history -----------------------------------------------------------------------
    def plot_history(self, ax: Any = None) -> Any:
        """Plot training and validation loss/accuracy per epoch; returns the axes."""
        self._check_fitted()
        return plot_history(getattr(self, "history_", {}), ax,
                            title=f"{self.backbone} ({self.input})")

    # --- persistence ---------------------------------------------------------------
    def _save_payload(self, directory: Path) -> dict[str, Any]:
        aug = self._augmentation()
        return {**save_keras_payload(self.model_, getattr(self, "history_", {}), directory),
                "augmentation": None if aug is None else aug.to_dict(),
                "image_size": list(self.image_size_), "input": self.input,
                "color": self.color}

    def _load_payload(self, directory: Path, info: dict[str, Any]) -> None:
        _import_keras()
        aug = info.get("augmentation")
        self.augmentation = None if aug is None else Augmentation(**aug)
        self.image_size = tuple(info.get("image_size", self.image_size_))
        self.color = str(info.get("color", "rgb"))
        self.model_, self.history_ = load_keras_payload(directory, info)


def plot_history(history: dict[str, Any], ax: Any = None, *, title: str = "") -> Any:
    """Plot a Keras predictor's per-epoch ``history_`` (what :meth:`plot_history` draws).

    Parameters
    ----------
    history : dict of str to list of float
        ``loss``, and where present ``val_loss``, ``accuracy``, ``val_accuracy`` and an
        ensemble's ``loss_member_m`` (thin lines).
    ax : matplotlib Axes, optional
        Drawn into; a new figure when omitted.
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_history({"loss": [1.2, 0.6, 0.3], "val_loss": [1.3, 0.9, 0.8]})
    >>> [line.get_label() for line in ax.get_lines()]
    ['loss', 'val_loss']
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    members = sorted(k for k in history if k.startswith("loss_member_"))
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", *members):
        if history.get(key):
            member = key in members
            ax.plot(np.arange(1, len(history[key]) + 1), history[key], label=key,
                    linestyle="--" if key.startswith("val") else "-",
                    linewidth=0.8 if member else 1.5, alpha=0.6 if member else 1.0)
    ax.set_xlabel("epoch")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def save_keras_payload(model: Any, history: dict[str, Any], directory: Path) -> dict[str, str]:
    """Write ``model.keras`` (weights only, :func:`weights_only`) and ``history.json``.

    The payload of every Keras predictor's archive (see :meth:`BasePredictor.save`).

    Parameters
    ----------
    model : keras.Model
    history : dict of str to list of float
        Per-epoch training history.
    directory : Path
        The archive's payload folder.

    Returns
    -------
    dict of str to str
        The manifest's ``payload`` entries naming the two files.

    Examples
    --------
    >>> import tempfile, keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> save_keras_payload(model, {"loss": [0.5]}, Path(tempfile.mkdtemp()))
    {'model': 'model.keras', 'history': 'history.json'}
    """
    weights_only(model).save(directory / "model.keras")
    (directory / "history.json").write_text(
        json.dumps({k: list(v) for k, v in history.items()}))
    return {"model": "model.keras", "history": "history.json"}


def load_keras_payload(directory: Path, info: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Read what :func:`save_keras_payload` wrote: the model (Keras safe mode) and history.

    Parameters
    ----------
    directory : Path
        The unpacked archive.
    info : dict
        The manifest's ``payload``.

    Returns
    -------
    model : keras.Model
        Not compiled.
    history : dict
        Empty when the archive has none.

    Raises
    ------
    ModelFormatError
        The model file is missing, corrupt or refused by safe mode.

    Examples
    --------
    >>> import tempfile, keras
    >>> folder = Path(tempfile.mkdtemp())
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> back, history = load_keras_payload(folder, save_keras_payload(model, {"loss": [0.5]},
    ...                                                               folder))
    >>> back.count_params(), history
    (8, {'loss': [0.5]})
    """
    keras = _import_keras(require_tensorflow=False)
    path = directory / info.get("model", "model.keras")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"cannot load the Keras model: {exc}", path=path) from exc
    hist = directory / info.get("history", "history.json")
    return model, (json.loads(hist.read_text()) if hist.is_file() else {})


def aggregate_crops(probs: np.ndarray, n_sheets: int) -> np.ndarray:
    """Per-sheet probabilities from per-crop ones: softmax of the mean log-probability.

    Examples
    --------
    >>> p = np.array([[0.9, 0.1], [0.6, 0.4]])
    >>> aggregate_crops(p, 1).round(3)
    array([[0.786, 0.214]])
    """
    if n_sheets == 0:
        return probs[:0]
    per = probs.reshape(n_sheets, -1, probs.shape[-1]).astype(np.float64)
    if per.shape[1] == 1:
        return per[:, 0]
    logp = np.log(np.clip(per, 1e-7, 1.0)).mean(axis=1)
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(axis=1, keepdims=True)


def _early_stopping(patience: int, min_epochs: int) -> Any:
    """Keras ``EarlyStopping`` on ``val_loss`` (best weights restored) that stops
    nothing before ``min_epochs``.

    Keras' own ``start_from_epoch`` would also ignore the earlier epochs when looking
    for the best one; here the best epoch may come before ``min_epochs``.
    """
    keras = _import_keras()

    class _EarlyStopping(keras.callbacks.EarlyStopping):  # type: ignore[misc,name-defined]
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            super().on_epoch_end(epoch, logs)
            if self.model.stop_training and epoch + 1 < min_epochs:
                self.model.stop_training = False  # patience ran out too early
                self.stopped_epoch = 0

    return _EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)


class _EpochTimer:
    """Keras callback recording each epoch's wall time (s); built lazily."""

    def __new__(cls) -> Any:
        keras = _import_keras()

        class Timer(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []
                self._t = 0.0

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self._t = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self.times.append(time.perf_counter() - self._t)

        return Timer()


def _register_models() -> None:
    """Named recipes for the CLI / comparisons (``make_predictor("mobilenet_v2")``)."""
    try:
        from .base import register_model
    except ImportError:  # pragma: no cover - older base without the model registry
        return
    # the settings of benchmarks/compare_cnn.py (2-core CPU budget; raise epochs on a GPU)
    sheet = {"image_size": (160, 272), "epochs": 20, "patience": 8, "learning_rate": 2e-3,
             "augmentation": None}
    leads = {"input": "leads", "image_size": (64, 112), "batch_size": 64, "augmentation": None,
             "learning_rate": 2e-3}
    recipes: dict[str, dict[str, Any]] = {
        "mobilenet_v2": {"backbone": "mobilenet_v2", **sheet},
        "mobilenet_v2-leads": {"backbone": "mobilenet_v2", **leads, "epochs": 8, "patience": 4},
        "efficientnet_v2_b0": {"backbone": "efficientnet_v2_b0", **sheet, "epochs": 8,
                               "patience": 4},
        "efficientnet_v2_b0-leads": {"backbone": "efficientnet_v2_b0", **leads, "epochs": 6,
                                     "patience": 3},
        "mobilenet_v2-paper": {"backbone": "mobilenet_v2", **sheet, "paper_protocol": True},
        # the GPU study's best recipe (grouped macro-F1 0.85 on 3 folds there): grey
        # 320x544 sheets augmented every epoch, no early stop before epoch 60. Hours a
        # fold on a 2-core CPU; meant for a GPU
        "efficientnet_v2_b0-hi": {"backbone": "efficientnet_v2_b0", "alpha": 1.0,
                                  "image_size": (320, 544), "color": "grey", "batch_size": 32,
                                  "learning_rate": 1e-3, "epochs": 300, "patience": 40,
                                  "min_epochs": 60},
    }
    for name, base_kw in recipes.items():
        def factory(_kw: dict[str, Any] = base_kw, **kwargs: Any) -> CNNPredictor:
            return CNNPredictor(**{**_kw, **kwargs})

        register_model(name, factory)


_register_models()
