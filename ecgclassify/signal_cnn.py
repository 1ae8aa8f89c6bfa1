"""A 1-D convolutional network on the digitized leads, behind the shared predictor interface.

:class:`SignalCNNPredictor` digitizes each sheet (``ecgdigitize.digitize``,
through the same :class:`~ecgclassify.cache.DigitizationCache` as
:class:`~ecgclassify.feature_predictor.FeaturePredictor`), resamples the 12
leads onto a fixed grid (:func:`signal_array`: 10 s at 100 Hz, mV, 0 where a
lead was not printed) and classifies that with a small 1-D ResNet
(:func:`build_signal_model`) trained from scratch. The image CNNs of
:mod:`ecgclassify.cnn` must learn to find the traces among grid, text and
photo artefacts; this network starts from the digitizer's calibrated signal,
so it needs no pretrained weights and trains in minutes on a CPU.

It also takes :class:`~ecgdigitize.record.ECGRecord` objects (WFDB recordings,
renders' ground truth), so a model can be trained on recordings and applied to
digitized sheets.

Keras is imported inside the methods only. Nothing in it is specific to TensorFlow,
so the other Keras 3 backends (JAX, PyTorch) should run it too; only TensorFlow is tested.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgdigitize.errors import ConfigurationError
from ecgdigitize.record import STANDARD_LEADS, ECGRecord

from .base import BasePredictor, register_model, register_predictor
from .cnn import (
    _EpochTimer,
    _import_keras,
    load_keras_payload,
    plot_history,
    save_keras_payload,
    weights_only,
)
from .feature_predictor import digitize_records

__all__ = ["SignalCNNPredictor", "build_signal_model", "signal_array", "time_stretch"]

#: Clip of the network input, mV: a trace merged with its neighbour can read ±20 mV.
CLIP_MV = 5.0
#: Global poolings of :func:`build_signal_model`.
POOLINGS = ("avg", "avg+max")


def signal_array(record: ECGRecord, *, fs: float = 100.0, duration_s: float = 10.0,
                 leads: Sequence[str] = STANDARD_LEADS) -> np.ndarray:
    """A record on a fixed time grid: the network input of :class:`SignalCNNPredictor`.

    Each output sample is the mean of the record's samples in its ``1/fs`` bin
    (linear interpolation when the record is sampled slower than ``fs``).
    Samples where a lead is missing or NaN (not printed on the sheet) become 0,
    and values are clipped to ±5 mV.

    Parameters
    ----------
    record : ECGRecord
        Any sampling rate and duration; leads are matched by name.
    fs : float, default 100
        Output sampling rate, Hz.
    duration_s : float, default 10
        Output length, s: longer records are cut, shorter ones padded with 0.
    leads : sequence of str, default the 12 standard leads
        Output channels, in order; a lead the record lacks is all 0.

    Returns
    -------
    ndarray of shape (round(fs * duration_s), len(leads)), float32
        Voltage in mV.

    Examples
    --------
    >>> import numpy as np
    >>> rec = ECGRecord(np.ones((5000, 1)), fs=500, lead_names=("II",))
    >>> a = signal_array(rec)
    >>> a.shape, float(a[:, 1].mean()), float(a[:, 0].max())
    ((1000, 12), 1.0, 0.0)
    """
    if fs <= 0 or duration_s <= 0:
        raise ConfigurationError(f"fs and duration_s must be > 0; got {fs}, {duration_s}")
    n_out = round(fs * duration_s)
    out = np.zeros((n_out, len(leads)), np.float32)
    names = [str(n) for n in record.lead_names]
    sig = np.asarray(record.signal, dtype=float)
    t = np.arange(sig.shape[0]) / float(record.fs)
    grid = np.arange(n_out) / fs
    for j, lead in enumerate(leads):
        if lead not in names:
            continue
        x = sig[:, names.index(lead)]
        ok = np.isfinite(x)
        if not ok.any():
            continue
        if record.fs >= fs:
            b = np.floor(t[ok] * fs + 1e-9).astype(int)
            keep = b < n_out
            s = np.bincount(b[keep], weights=x[ok][keep], minlength=n_out)
            c = np.bincount(b[keep], minlength=n_out)
            out[:, j] = np.where(c > 0, s / np.maximum(c, 1), 0.0)
        else:
            inside = (grid >= t[ok][0]) & (grid <= t[ok][-1])
            out[inside, j] = np.interp(grid[inside], t[ok], x[ok])
    return np.clip(out, -CLIP_MV, CLIP_MV)


def build_signal_model(n_samples: int, n_leads: int, n_classes: int, *, width: int = 32,
                       dropout: float = 0.3, bn_momentum: float = 0.9,
                       pooling: str = "avg", name: str | None = None) -> Any:
    """A 1-D ResNet: a strided stem, five residual blocks, global pooling over time.

    Parameters
    ----------
    n_samples, n_leads : int
        Input shape (time, channels).
    n_classes : int
        Softmax outputs.
    width : int, default 32
        Filters of the first blocks; they double twice (``width`` x 4 at the end).
        About 0.55 M weights at 32 (12 leads, 4 classes).
    dropout : float, default 0.3
        Before the classifier.
    bn_momentum : float, default 0.9
        BatchNormalization momentum (Keras' 0.99 leaves the moving statistics far from
        the trained ones after the few hundred steps of a small data set).
    pooling : {"avg", "avg+max"}, default "avg"
        Global pooling over time: the average, or the average and the maximum side by side
        (a feature that fires on one beat of ten is diluted by the average alone).
    name : str, optional
        Model name; default ``resnet1d_w{width}``.

    Returns
    -------
    keras.Model
        Not compiled.

    Examples
    --------
    >>> model = build_signal_model(1000, 12, 4, width=8)
    >>> model.output_shape
    (None, 4)
    """
    keras = _import_keras(require_tensorflow=False)
    layers = keras.layers

    def block(x: Any, filters: int, stride: int) -> Any:
        shortcut = x
        x = layers.Conv1D(filters, 7, strides=stride, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization(momentum=bn_momentum)(x))
        x = layers.Conv1D(filters, 7, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=bn_momentum)(x)
        if stride != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.Conv1D(filters, 1, strides=stride, use_bias=False)(shortcut)
            shortcut = layers.BatchNormalization(momentum=bn_momentum)(shortcut)
        return layers.ReLU()(layers.Add()([x, shortcut]))

    inputs = keras.Input((n_samples, n_leads))
    x = layers.Conv1D(width, 15, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization(momentum=bn_momentum)(x))
    for filters, stride in ((width, 1), (2 * width, 2), (2 * width, 1), (4 * width, 2),
                            (4 * width, 2)):
        x = block(x, filters, stride)
    if pooling not in POOLINGS:
        raise ConfigurationError(f"pooling must be one of {POOLINGS}; got {pooling!r}")
    pooled = layers.GlobalAveragePooling1D()(x)
    if pooling == "avg+max":
        pooled = layers.Concatenate()([pooled, layers.GlobalMaxPooling1D()(x)])
    x = layers.Dropout(dropout)(pooled)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name or f"resnet1d_w{width}")


@register_predictor("signal-cnn")
class SignalCNNPredictor(BasePredictor):
    """A 1-D CNN on the digitized 12 leads (digitize → resample → 1-D ResNet).

    Parameters
    ----------
    fs : float, default 100
        Network input rate, Hz (:func:`signal_array`).
    duration_s : float, default 10
        Network input length, s.
    width : int, default 32
        Filters of the first residual blocks (:func:`build_signal_model`).
    pooling : {"avg", "avg+max"}, default "avg"
        Global pooling over time before the classifier (:func:`build_signal_model`).
    epochs : int, default 60
        Training epochs (no early stopping: the learning rate follows a cosine
        decay to 0 over them).
    batch_size : int, default 32
    learning_rate : float, default 1e-3
        Adam's initial learning rate.
    augment : bool, default True
        Each training batch is drawn anew: amplitude x U(0.85, 1.15) per sheet,
        a circular time shift of up to ±0.2 s, Gaussian noise of 0.02 mV.
    stretch : float, default 0
        With ``augment``, also stretch each training input in time by a factor
        U(1 - stretch, 1 + stretch) (:func:`time_stretch`; 0.1: as if the heart rate
        differed by up to 10 %).
    class_weight : {"balanced", None}, default "balanced"
        Per-class loss weights inversely proportional to class frequency.
    deduplicate : bool, default True
        Train on one copy of identical inputs.
    digitize_kwargs : dict, optional
        Arguments of ``ecgdigitize.digitize`` (``fs=500`` unless given).
    cache_dir : str, optional
        Digitization cache; default ``$ECGDIGITIZE_CACHE`` or ``~/.cache/ecgdigitize``.
    use_cache : bool, default True
    n_members : int, default 1
        Networks trained (member ``m`` seeded ``seed + 100 m``); the model averages
        their softmax outputs. Training time grows linearly with it.
    seed : int, default 0
        Seeds Keras and the augmentation.
    verbose : bool, default False
        Progress bars (digitization) and Keras' per-epoch log.

    Attributes
    ----------
    classes_ : ndarray
    model_ : keras.Model
        One network, or with ``n_members > 1`` one model averaging the members' outputs
        (so saving, loading and TFLite export see a single model).
    history_ : dict of str to list of float
        Per-epoch ``loss`` (the members' mean; each member's as ``loss_member_m``) and
        ``epoch_time_s`` (summed over the members).
    train_time_s_ : float
        Fit time without digitization, s.

    Notes
    -----
    A sheet that fails to digitize gives an all-zero input (and a
    :class:`~ecgclassify.feature_predictor.DigitizationWarning`): it still gets a
    prediction, the network's answer for a flat line.

    Examples
    --------
    >>> import neurokit2 as nk
    >>> recs = [ECGRecord(nk.ecg_simulate(duration=10, sampling_rate=500, heart_rate=hr,
    ...                                   random_state=i)[:, None], 500, ("II",))
    ...         for i, hr in enumerate([50, 55, 60, 110, 120, 130])]
    >>> clf = SignalCNNPredictor(width=8, epochs=40, batch_size=2, learning_rate=1e-2,
    ...                          augment=False).fit(recs, [0, 0, 0, 1, 1, 1])
    >>> clf.predict(recs).tolist()
    [0, 0, 0, 1, 1, 1]
    """

    def __init__(self, fs: float = 100.0, duration_s: float = 10.0, width: int = 32,
                 pooling: str = "avg", epochs: int = 60, batch_size: int = 32,
                 learning_rate: float = 1e-3, augment: bool = True, stretch: float = 0.0,
                 class_weight: str | None = "balanced",
                 deduplicate: bool = True, digitize_kwargs: dict[str, Any] | None = None,
                 cache_dir: str | None = None, use_cache: bool = True, n_members: int = 1,
                 seed: int = 0, verbose: bool = False) -> None:
        self.fs = fs
        self.duration_s = duration_s
        self.width = width
        self.pooling = pooling
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.augment = augment
        self.stretch = stretch
        self.class_weight = class_weight
        self.deduplicate = deduplicate
        self.digitize_kwargs = digitize_kwargs
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.n_members = n_members
        self.seed = seed
        self.verbose = verbose

    # --- preprocessing ---------------------------------------------------------------
    def preprocess(self, X: Sequence[Any]) -> np.ndarray:
        """Network input of each sheet or record, ``(n, fs * duration_s, 12)`` float32 mV."""
        if isinstance(X, str | Path | ECGRecord | bytes):
            raise ConfigurationError("X must be a sequence of sheets or records, "
                                     f"not a single {type(X).__name__}")
        records = digitize_records(X, digitize_kwargs=self.digitize_kwargs,
                                   cache_dir=self.cache_dir, use_cache=self.use_cache,
                                   verbose=bool(self.verbose),
                                   consequence="its network input is flat (all 0)")
        n = round(float(self.fs) * float(self.duration_s))
        out = np.zeros((len(records), n, len(STANDARD_LEADS)), np.float32)
        for i, rec in enumerate(records):
            if rec is not None:
                out[i] = signal_array(rec, fs=float(self.fs), duration_s=float(self.duration_s))
        return out

    # --- fit -------------------------------------------------------------------------
    def fit(self, X: Sequence[Any], y: Sequence[int] | np.ndarray,
            groups: Sequence[Any] | None = None) -> SignalCNNPredictor:
        """Digitize (cached) and train the network.

        Parameters
        ----------
        X : sequence of sheets or ECGRecord
        y : sequence of int
        groups : sequence, optional
            Accepted for the interface of :class:`~ecgclassify.cnn.CNNPredictor`
            (no validation split is made, so it is not used).

        Returns
        -------
        self

        Raises
        ------
        ConfigurationError
            Bad parameters, fewer than two classes, or ``len(X) != len(y)``.
        """
        self._check_params()
        y_arr = np.asarray(y)
        if len(X) != len(y_arr):
            raise ConfigurationError(f"{len(X)} sheets but {len(y_arr)} labels")
        self.classes_ = np.unique(y_arr)
        if self.classes_.size < 2:
            raise ConfigurationError(f"need at least two classes to train; got {self.classes_}")
        return self.fit_prepared(self.preprocess(X), y_arr)

    def fit_prepared(self, signals: np.ndarray, y: Sequence[int] | np.ndarray
                     ) -> SignalCNNPredictor:
        """Like :meth:`fit` on already prepared inputs (see :meth:`preprocess`)."""
        self._check_params()
        keras = _import_keras(require_tensorflow=False)
        y_arr = np.asarray(y)
        self.classes_ = np.unique(y_arr)
        if self.classes_.size < 2:
            raise ConfigurationError(f"need at least two classes to train; got {self.classes_}")
        t0 = time.perf_counter()
        x = np.asarray(signals, np.float32)
        yi = np.searchsorted(self.classes_, y_arr)
        if self.deduplicate:
            keep = first_copies(x)
            x, yi = x[keep], yi[keep]
        weights = np.ones(len(yi), np.float32)
        if self.class_weight == "balanced":
            counts = np.bincount(yi, minlength=len(self.classes_)).astype(float)
            weights = (len(yi) / (len(self.classes_) * np.maximum(counts, 1.0)))[yi]
        members, histories = [], []
        for m in range(int(self.n_members)):
            model, hist = self._train_member(
                x, yi, weights.astype(np.float32), int(self.seed) + 100 * m,
                name=None if self.n_members == 1 else f"resnet1d_w{self.width}_m{m}")
            members.append(weights_only(model))
            histories.append(hist)
        if len(members) == 1:
            self.model_, self.history_ = members[0], histories[0]
        else:
            inputs = keras.Input(x.shape[1:])
            outputs = keras.layers.Average()([mem(inputs) for mem in members])
            self.model_ = keras.Model(inputs, outputs, name=f"resnet1d_x{len(members)}")
            self.history_ = {"loss": np.mean([h["loss"] for h in histories], axis=0).tolist(),
                             "epoch_time_s": np.sum([h["epoch_time_s"] for h in histories],
                                                    axis=0).tolist()}
            for m, h in enumerate(histories):
                self.history_[f"loss_member_{m}"] = list(h["loss"])
        self.train_time_s_ = time.perf_counter() - t0
        self.n_train_inputs_ = len(yi)
        return self

    def _train_member(self, x: np.ndarray, yi: np.ndarray, weights: np.ndarray, seed: int,
                      name: str | None = None) -> tuple[Any, dict[str, list[float]]]:
        """Train one network from scratch; returns it and its per-epoch history."""
        keras = _import_keras(require_tensorflow=False)
        keras.utils.set_random_seed(seed)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        bs = int(self.batch_size)
        steps = int(np.ceil(len(yi) / bs)) * int(self.epochs)
        model = build_signal_model(x.shape[1], x.shape[2], len(self.classes_),
                                   width=int(self.width), pooling=str(self.pooling), name=name)
        schedule = keras.optimizers.schedules.CosineDecay(float(self.learning_rate),
                                                          max(steps, 1))
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(seed)
        timer = _EpochTimer()
        history: dict[str, list[float]] = {}
        for epoch in range(int(self.epochs)):
            # a fresh permutation (and augmentation) of the training set each epoch, fed as
            # arrays (faster on this CPU than a keras.utils.PyDataset drawing the same batches)
            order = rng.permutation(len(yi))
            xe = x[order]
            if self.augment:
                xe = augment_signals(xe, rng, float(self.fs))
                if float(self.stretch) > 0:
                    xe = time_stretch(xe, rng, float(self.stretch))
            hist = model.fit(xe, yi[order], sample_weight=weights[order], batch_size=bs,
                             epochs=epoch + 1, initial_epoch=epoch, shuffle=False,
                             callbacks=[timer], verbose=2 if self.verbose else 0)
            for key, vals in hist.history.items():
                history.setdefault(key, []).extend(float(v) for v in vals)
        history["epoch_time_s"] = list(timer.times)
        return model, history

    def _check_params(self) -> None:
        for name in ("epochs", "batch_size", "width", "n_members"):
            if int(getattr(self, name)) < 1:
                raise ConfigurationError(f"{name} must be >= 1; got {getattr(self, name)}")
        if float(self.fs) <= 0 or float(self.duration_s) <= 0:
            raise ConfigurationError(f"fs and duration_s must be > 0; got {self.fs}, "
                                     f"{self.duration_s}")
        if round(float(self.fs) * float(self.duration_s)) < 64:
            raise ConfigurationError("fs * duration_s must give at least 64 samples "
                                     "(the network downsamples 16-fold)")
        if not 0.0 <= float(self.stretch) < 1.0:
            raise ConfigurationError(f"stretch must be in [0, 1); got {self.stretch}")
        if self.pooling not in POOLINGS:  # before any digitization
            raise ConfigurationError(f"pooling must be one of {POOLINGS}; got {self.pooling!r}")
        if self.class_weight not in ("balanced", None):
            raise ConfigurationError(f"class_weight must be 'balanced' or None; "
                                     f"got {self.class_weight!r}")

    # --- predict -----------------------------------------------------------------------
    def predict_proba(self, X: Sequence[Any]) -> np.ndarray:
        """Class probabilities per sheet, shape (n_sheets, n_classes)."""
        self._check_fitted()
        return self.predict_proba_prepared(self.preprocess(X))

    def predict_proba_prepared(self, signals: np.ndarray) -> np.ndarray:
        """Like :meth:`predict_proba` on already prepared inputs (see :meth:`preprocess`)."""
        self._check_fitted()
        x = np.asarray(signals, np.float32)
        out = np.empty((len(x), len(self.classes_)), np.float32)
        for i in range(0, len(x), 256):
            out[i:i + 256] = np.asarray(self.model_(x[i:i + 256], training=False))
        return out

    def plot_history(self, ax: Any = None) -> Any:
        """Plot the training loss per epoch (and each ensemble member's); returns the axes."""
        self._check_fitted()
        members = f", {self.n_members} members" if int(self.n_members) > 1 else ""
        return plot_history(getattr(self, "history_", {}), ax,
                            title=f"1-D ResNet, width {self.width}{members}")

    # --- persistence ---------------------------------------------------------------
    def _save_payload(self, directory: Path) -> dict[str, Any]:
        return save_keras_payload(self.model_, getattr(self, "history_", {}), directory)

    def _load_payload(self, directory: Path, info: dict[str, Any]) -> None:
        self.model_, self.history_ = load_keras_payload(directory, info)


def first_copies(x: np.ndarray) -> np.ndarray:
    """Indices of the first of each set of identical inputs along axis 0, in order.

    Examples
    --------
    >>> first_copies(np.array([[1.0], [2.0], [1.0], [3.0]])).tolist()
    [0, 1, 3]
    """
    digests = [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in x]
    return np.sort(np.unique(digests, return_index=True)[1])


def augment_signals(x: np.ndarray, rng: np.random.Generator, fs: float) -> np.ndarray:
    """Random amplitude (x0.85-1.15), circular shift (±0.2 s) and noise (0.02 mV) per input.

    Parameters
    ----------
    x : ndarray of shape (n, n_samples, n_leads)
        Inputs in mV.
    rng : numpy.random.Generator
    fs : float
        Sampling rate of ``x``, Hz.

    Returns
    -------
    ndarray
        Same shape, float32; ``x`` is not modified.
    """
    n = len(x)
    out = x * rng.uniform(0.85, 1.15, (n, 1, 1)).astype(np.float32)
    max_shift = round(0.2 * fs)
    shifts = rng.integers(-max_shift, max_shift + 1, n)
    out = np.stack([np.roll(a, int(s), axis=0) for a, s in zip(out, shifts, strict=True)])
    return (out + rng.normal(0.0, 0.02, out.shape)).astype(np.float32)


def time_stretch(x: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Stretch each input in time by a random factor U(1 - amount, 1 + amount).

    Output sample ``t`` is the input at ``t * factor`` (linear interpolation), so a
    factor above 1 compresses the recording (a faster heart rate) and reads past its
    end, where the output is 0 (as for a lead that was not printed there). One factor
    per input, the same for all its leads.

    Parameters
    ----------
    x : ndarray of shape (n, n_samples, n_leads)
    rng : numpy.random.Generator
    amount : float
        Largest relative change of the time scale, in [0, 1).

    Returns
    -------
    ndarray
        Same shape and dtype; ``x`` is not modified.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.arange(10, dtype=np.float32).reshape(1, 10, 1)
    >>> out = time_stretch(ramp, np.random.default_rng(0), 0.1)
    >>> factor = float(out[0, 1, 0])  # the ramp read at t * factor
    >>> bool(0.9 <= factor <= 1.1), np.allclose(out[0, :9, 0], factor * np.arange(9))
    (True, True)
    """
    n = x.shape[1]
    out = np.zeros_like(x)
    for i in range(len(x)):
        src = np.arange(n) * rng.uniform(1 - amount, 1 + amount)
        i0 = np.floor(src).astype(int)
        frac = (src - i0)[:, None]
        ok = i0 + 1 < n
        out[i, ok] = (1 - frac[ok]) * x[i, i0[ok]] + frac[ok] * x[i, i0[ok] + 1]
    return out


register_model("signal-cnn", lambda **kw: SignalCNNPredictor(**kw))
