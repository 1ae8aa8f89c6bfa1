"""The CNN study trained to convergence on a GPU (Keras 3 on JAX), next to the CPU study.

The CPU study (:mod:`benchmarks.compare_cnn`) could afford 6-20 epochs per fold on
2 cores. This script runs the same grouped (and leaky) 5-fold protocol with up to
150 epochs, augmentation and early stopping on a lent GPU machine that has JAX but
no TensorFlow. Three steps:

1. ``prepare`` (here, CPU): crop every distinct reference sheet to its grid area and
   resize it once, exactly as :class:`ecgclassify.cnn.CNNPredictor` does
   (:func:`ecgclassify.imagedata.prepare_batch`), and store the arrays and the fold
   indices (:func:`ecgclassify.splits.grouped_stratified_kfold`, seed 0: the folds of
   the CPU and feature tables) in ``data/gpu/`` (git-ignored, ~17 MiB)::

       .venv/bin/python -m benchmarks.gpu_cnn_study prepare

2. ``run`` (GPU machine; Keras, namex and optree carried as wheels)::

       KERAS_BACKEND=jax python3 -m benchmarks.gpu_cnn_study run --out DIR --budget-s 480

   runs the configs of :data:`DEFAULT_RUN` (or ``--configs NAME[:FOLD,...]``), one
   process per fold, all at once after one of them has filled a compilation cache
   (:func:`run_all`; ask for the H200 machine: each process took 14-15 GiB in run 5), and writes
   ``gpu_results.json`` (test-file probabilities per fold, histories, times) and, for
   the ``"all"`` protocol, the reference model's ``.keras`` file to ``DIR``.

3. ``report`` (here): evaluate the returned predictions per file with
   :func:`ecgclassify.evaluation.evaluate_predictions`, store them in
   ``benchmarks/results/cnn_compare_gpu.json`` and render the GPU table of
   ``docs/results/cnn_models.md``::

       .venv/bin/python -m benchmarks.gpu_cnn_study report DIR

Augmentation on the GPU is a jitted JAX warp (:func:`warp_affine`: rotation, shift,
shear, zoom with white fill, in the ranges of :class:`ecgclassify.imagedata.Augmentation`)
drawn afresh for every training image each epoch; the saved classifier holds none of it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import lzma
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "ecg-images"
ARRAYS = ROOT / "data" / "gpu"
RESULTS = ROOT / "benchmarks" / "results" / "cnn_compare_gpu.json"

SHEET_HW = (160, 272)
LEAD_HW = (64, 112)
#: The higher-resolution sheets (twice as fine; stored as grey levels to stay small).
SHEET_HI_HW = (320, 544)
N_SPLITS = 5
SEED = 0

_SHEET: dict[str, Any] = dict(input="sheet", batch_size=32, learning_rate=1e-3, epochs=150,
                              patience=25, augment=False)
_LEADS: dict[str, Any] = dict(input="leads", batch_size=128, learning_rate=1e-3, epochs=40,
                              patience=8, augment=False)
#: name -> (protocol, parameters). "all" trains on every distinct sheet (no test fold):
#: the shipped reference model. ``images`` names the array of :func:`load_arrays`
#: (default: ``sheets`` or ``leads`` after ``input``). ``augment=True`` draws a fresh
#: random affine warp of every training image each epoch on the GPU (:func:`_jax_augmenter`;
#: the first run's Keras random layers ran at 10-14 images/s under JAX, ``*-augment-gpu``
#: in ``gpu_cnn_run1.json``).
GPU_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "efficientnet_v2_b0-gpu": ("grouped", dict(_SHEET, backbone="efficientnet_v2_b0",
                                               alpha=1.0)),
    "mobilenet_v2-gpu": ("grouped", dict(_SHEET, backbone="mobilenet_v2", alpha=0.35)),
    "efficientnet_v2_b0-leaky-gpu": ("leaky", dict(_SHEET, backbone="efficientnet_v2_b0",
                                                   alpha=1.0)),
    "efficientnet_v2_b0-leads-gpu": ("grouped", dict(_LEADS, backbone="efficientnet_v2_b0",
                                                     alpha=1.0)),
    "mobilenet_v2-leads-gpu": ("grouped", dict(_LEADS, backbone="mobilenet_v2", alpha=0.35)),
    "mobilenet_v2-reference-gpu": ("all", dict(_SHEET, backbone="mobilenet_v2", alpha=0.35)),
    "efficientnet_v2_b0-augment-gpu": ("grouped", dict(_SHEET, backbone="efficientnet_v2_b0",
                                                       alpha=1.0, augment=True)),
    "efficientnet_v2_b0-hi-gpu": ("grouped", dict(_SHEET, backbone="efficientnet_v2_b0",
                                                  alpha=1.0, images="sheets_hi")),
    "efficientnet_v2_b0-hi-augment-gpu": ("grouped", dict(
        _SHEET, backbone="efficientnet_v2_b0", alpha=1.0, images="sheets_hi", augment=True)),
    "efficientnet_v2_b0-hi-augment-leaky-gpu": ("leaky", dict(
        _SHEET, backbone="efficientnet_v2_b0", alpha=1.0, images="sheets_hi", augment=True)),
    # the next run: one config with the GPU to itself, longer, no stop before epoch 60
    "efficientnet_v2_b0-hi-augment-long-gpu": ("grouped", dict(
        _SHEET, backbone="efficientnet_v2_b0", alpha=1.0, images="sheets_hi", augment=True,
        epochs=300, patience=40, min_epochs=60)),
    "mobilenet_v2-hi-augment-gpu": ("grouped", dict(
        _SHEET, backbone="mobilenet_v2", alpha=1.0, images="sheets_hi", augment=True)),
    # the same, halving the learning rate after 10 epochs without a better validation
    # loss (down to 1e-5), from another seed: on its own, and with the above as a pair
    "efficientnet_v2_b0-hi-augment-plateau-gpu": ("grouped", dict(
        _SHEET, backbone="efficientnet_v2_b0", alpha=1.0, images="sheets_hi", augment=True,
        epochs=300, patience=40, min_epochs=60, lr_patience=10, lr_factor=0.5, min_lr=1e-5,
        seed=1)),
}


#: What ``run`` trains by default: what the third session's run 5 lost to the GPU's
#: memory (folds 1 and 5 of the long recipe; the plateau config, all folds).
DEFAULT_RUN = ["efficientnet_v2_b0-hi-augment-long-gpu:0,4",
               "efficientnet_v2_b0-hi-augment-plateau-gpu"]
#: Pairs of configs whose test probabilities :func:`report` also averages, fold by fold.
ENSEMBLES = {"efficientnet_v2_b0-hi-augment-pair-gpu": [
    "efficientnet_v2_b0-hi-augment-long-gpu", "efficientnet_v2_b0-hi-augment-plateau-gpu"]}
#: Test-time augmentation of augmented configs: the mean of the probabilities of the
#: test sheet and of this many random warps of it (the training warps' ranges).
N_TTA = 8


# --- 1. prepare (CPU, this machine) -------------------------------------------------
def prepare(hi: bool = False) -> None:
    """Prepare the arrays and folds of every distinct reference sheet into ``data/gpu``.

    ``hi=True`` adds ``sheets_hi`` (:data:`SHEET_HI_HW`, grey levels) to what is there.
    """
    if hi:
        return _prepare_hi()
    from ecgclassify.datasets import ensure_reference_images, load_image_folder
    from ecgclassify.imagedata import prepare_batch
    from ecgclassify.splits import grouped_stratified_kfold

    ensure_reference_images(DATA)
    ds = load_image_folder(DATA)
    hashes, paths, inverse = _distinct_sheets(ds)
    t0 = time.perf_counter()
    sheets = prepare_batch(paths, SHEET_HW, input="sheet")
    leads = prepare_batch(paths, LEAD_HW, input="leads")
    print(f"prepared {len(paths)} distinct sheets in {time.perf_counter() - t0:.0f} s")
    folds: dict[str, list[list[list[int]]]] = {}
    for protocol in ("grouped", "leaky"):
        folds[protocol] = [[tr.tolist(), te.tolist()] for tr, te in grouped_stratified_kfold(
            ds.labels, hashes, N_SPLITS, SEED, protocol=protocol)]
    ARRAYS.mkdir(parents=True, exist_ok=True)
    shapes = {}
    for name, arr in (("sheets", sheets), ("leads", leads)):
        # xz finds the white margins and repeated grid far better than zlib: 9 MiB, not 58
        (ARRAYS / f"{name}.u8.xz").write_bytes(lzma.compress(np.ascontiguousarray(arr).tobytes()))
        shapes[name] = list(arr.shape)
    meta = {"shapes": shapes, "labels": ds.labels.tolist(), "content_index": inverse.tolist(),
            "class_names": list(ds.class_names), "paths": [Path(p).name for p in ds.paths],
            "folds": folds, "sheet_hw": SHEET_HW, "lead_hw": LEAD_HW,
            "prepared_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    (ARRAYS / "meta.json").write_text(json.dumps(meta))
    for f in sorted(ARRAYS.iterdir()):
        print(f"{f.name}: {f.stat().st_size / 2**20:.1f} MiB")


def _distinct_sheets(ds: Any) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Content hashes of every file, the first path of each distinct content, file -> content."""
    hashes = np.asarray(ds.content_hashes)
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    return hashes, [ds.paths[i] for i in first], inverse


def _prepare_hi() -> None:
    """Add the grey ``sheets_hi`` array (same sheet order as ``sheets``) to ``data/gpu``."""
    from ecgclassify.datasets import load_image_folder
    from ecgclassify.imagedata import grey_levels, prepare_batch

    meta = json.loads((ARRAYS / "meta.json").read_text())
    _, paths, inverse = _distinct_sheets(load_image_folder(DATA))
    if inverse.tolist() != meta["content_index"]:
        raise RuntimeError("data/gpu was prepared from other sheets: run prepare first")
    t0 = time.perf_counter()
    rgb = prepare_batch(paths, SHEET_HI_HW, input="sheet")
    grey = grey_levels(rgb)
    print(f"prepared {len(paths)} sheets at {SHEET_HI_HW} in {time.perf_counter() - t0:.0f} s")
    (ARRAYS / "sheets_hi.u8.xz").write_bytes(lzma.compress(np.ascontiguousarray(grey).tobytes()))
    meta["shapes"]["sheets_hi"] = list(grey.shape)
    meta["sheet_hi_hw"] = SHEET_HI_HW
    (ARRAYS / "meta.json").write_text(json.dumps(meta))
    print(f"sheets_hi.u8.xz: {(ARRAYS / 'sheets_hi.u8.xz').stat().st_size / 2**20:.1f} MiB")


def load_arrays(kind: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The prepared ``"sheets"``, ``"sheets_hi"`` or ``"leads"`` and the metadata.

    One image per distinct content; ``sheets_hi`` is stored grey and returned with
    its grey level repeated in three channels, as the networks take.
    """
    meta = json.loads((ARRAYS / "meta.json").read_text())
    raw = lzma.decompress((ARRAYS / f"{kind}.u8.xz").read_bytes())
    arr = np.frombuffer(raw, np.uint8).reshape(meta["shapes"][kind])
    if kind == "sheets_hi":
        arr = np.repeat(arr[..., None], 3, axis=-1)
    return arr, meta


# --- 2. run (GPU machine) ---------------------------------------------------------
def warp_affine(xp: Any, img: Any, angle_rad: Any, shift_xy: Any, shear: Any, zoom: Any,
                fill: float) -> Any:
    """Rotate, shift, shear and zoom one ``(h, w, c)`` image about its centre, bilinearly.

    Written against an array module ``xp`` (``numpy`` or ``jax.numpy``) so that the
    GPU augmentation (:func:`_jax_augmenter`) and its tests share one piece of maths.
    An output pixel at ``p`` (relative to the centre) samples the input at
    ``Z^-1 S^-1 R^-1 (p - t)``; pixels from outside the image take ``fill``.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``jax.numpy``.
    img : array, shape (h, w, c)
    angle_rad : float
        Clockwise as displayed (rows run down), radians.
    shift_xy : array of 2 floats
        Shift in px, ``(x, y)``.
    shear : float
        Horizontal shear (tangent of the angle).
    zoom : float
        Scale factor (> 1 enlarges).
    fill : float
        Value of pixels sampled from outside the image.

    Returns
    -------
    array, shape (h, w, c), float32
    """
    h, w = img.shape[:2]
    yy, xx = xp.meshgrid(xp.arange(h, dtype=xp.float32) - (h - 1) / 2,
                         xp.arange(w, dtype=xp.float32) - (w - 1) / 2, indexing="ij")
    u, v = xx - shift_xy[0], yy - shift_xy[1]
    c, s = xp.cos(angle_rad), xp.sin(angle_rad)
    u, v = c * u + s * v, -s * u + c * v
    u = u - shear * v
    xs, ys = u / zoom + (w - 1) / 2, v / zoom + (h - 1) / 2
    x0, y0 = xp.floor(xs), xp.floor(ys)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    src = img.astype(xp.float32)

    def at(yi: Any, xi: Any) -> Any:
        inside = (yi >= 0) & (yi <= h - 1) & (xi >= 0) & (xi <= w - 1)
        val = src[xp.clip(yi, 0, h - 1).astype(xp.int32), xp.clip(xi, 0, w - 1).astype(xp.int32)]
        return xp.where(inside[..., None], val, xp.float32(fill))

    return ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
            + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))


def _jax_augmenter(hw: tuple[int, int]) -> Any:
    """A jitted ``f(images_uint8, key) -> images_uint8``: one random affine warp per image.

    Rotation, shift, shear and zoom are drawn uniformly in the ranges of
    :class:`~ecgclassify.imagedata.Augmentation` (no flips) and applied by
    :func:`warp_affine`, paper white outside. Runs on the GPU, on training data
    already there.
    """
    import jax
    import jax.numpy as jnp

    from ecgclassify.imagedata import PAPER_VALUE, Augmentation

    a = Augmentation()
    h, w = hw

    def one(img: Any, key: Any) -> Any:
        k = jax.random.split(key, 5)  # 5, as in the run of 2026-11-26 23:03 (one unused)
        angle = jnp.deg2rad(jax.random.uniform(k[0], (), minval=-a.rotation_deg,
                                               maxval=a.rotation_deg))
        shift = jax.random.uniform(k[1], (2,), minval=-a.shift_fraction,
                                   maxval=a.shift_fraction) * jnp.array([w, h])
        shear = jax.random.uniform(k[2], (), minval=-a.shear, maxval=a.shear)
        zoom = jax.random.uniform(k[3], (), minval=1 - a.zoom, maxval=1 + a.zoom)
        out = warp_affine(jnp, img, angle, shift, shear, zoom, float(PAPER_VALUE))
        return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)

    @jax.jit
    def warp(images: Any, key: Any) -> Any:
        return jax.vmap(one)(images, jax.random.split(key, images.shape[0]))

    return warp


def _pad_to(n: int, multiple: int, rng: np.random.Generator) -> np.ndarray:
    """Indices 0..n-1 plus random repeats up to a multiple of ``multiple`` (one compiled shape)."""
    extra = (-n) % multiple
    return np.concatenate([np.arange(n), rng.integers(0, n, extra)]) if extra else np.arange(n)


class _Trainer:
    """One compiled network per config, reset to the same initial state for every fold."""

    def __init__(self, keras: Any, params: dict[str, Any], hw: tuple[int, int],
                 n_classes: int, seed: int) -> None:
        from ecgclassify.cnn import build_model

        self.keras, self.p = keras, params
        keras.utils.set_random_seed(seed + int(params.get("seed", 0)))
        self.clf = build_model(params["backbone"], (*hw, 3), n_classes, alpha=params["alpha"])
        self.augment = _jax_augmenter(hw) if params["augment"] else None
        self.clf.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]),
                                 loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        self.clf.optimizer.build(self.clf.trainable_variables)
        self.init_weights = self.clf.get_weights()
        self.init_opt = [keras.ops.convert_to_numpy(v) for v in self.clf.optimizer.variables]

    def warm_up(self, x: np.ndarray, y: np.ndarray) -> float:
        """Compile the train, validation and predict steps on one batch; return seconds.

        Done before the first fold so that XLA's compilation (50-70 s per process with
        four compiling at once) is not charged to that fold's share of the time budget.
        """
        t0 = time.perf_counter()
        bs = int(self.p["batch_size"])
        i = _pad_to(min(len(x), bs), bs, np.random.default_rng(0))
        xb, yb = x[i].astype(np.float32), y[i]
        self.clf.fit(xb, yb, sample_weight=np.ones(len(i), np.float32),
                             validation_data=(xb, yb, np.ones(len(i), np.float32)),
                             batch_size=bs, epochs=1, verbose=0)
        if self.augment is not None:
            import jax

            self.augment(x[i], jax.random.key(0)).block_until_ready()
        self.predict(x[:1])
        self.reset()
        return time.perf_counter() - t0

    def reset(self) -> None:
        self.clf.set_weights(self.init_weights)
        for v, value in zip(self.clf.optimizer.variables, self.init_opt, strict=True):
            v.assign(value)

    def fit(self, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray,
            deadline: float, seed: int) -> dict[str, list[float]]:
        """Train with balanced sample weights; keep the weights of the best validation loss."""
        keras, p = self.keras, self.p
        bs = int(p["batch_size"])
        counts = np.bincount(y, minlength=4).astype(float)
        cw = len(y) / (np.count_nonzero(counts) * np.maximum(counts, 1.0))
        keeper = _BestKeeper(keras, int(p["patience"]), deadline,
                             min_epochs=int(p.get("min_epochs", 0)),
                             lr_patience=int(p.get("lr_patience", 0)),
                             lr_factor=float(p.get("lr_factor", 0.5)),
                             min_lr=float(p.get("min_lr", 0.0)))
        self.reset()
        seed += 1000 * int(p.get("seed", 0))
        rng = np.random.default_rng(seed)
        i = _pad_to(len(x), bs, rng)
        j = _pad_to(len(xv), bs, rng)
        wv = np.zeros(len(j), np.float32)
        wv[: len(xv)] = 1.0  # repeats only fill the last batch: weight 0
        kw = dict(sample_weight=cw[y[i]].astype(np.float32),
                  validation_data=(xv[j].astype(np.float32), yv[j], wv), batch_size=bs,
                  shuffle=True, verbose=0, callbacks=[keeper.callback])
        history: dict[str, list[float]] = {}
        if self.augment is None and not keeper.lr_patience:
            history = self.clf.fit(x[i].astype(np.float32), y[i],
                                           epochs=int(p["epochs"]), **kw).history
        else:  # one fit call per epoch: a fresh warp of the training images, a new rate
            import jax

            key = jax.random.key(seed)
            plain = x[i].astype(np.float32) if self.augment is None else None
            on_device = jax.device_put(x[i]) if self.augment is not None else None
            opt = self.clf.optimizer
            for epoch in range(int(p["epochs"])):
                key, sub = jax.random.split(key)
                data = (plain if self.augment is None
                        else np.asarray(self.augment(on_device, sub)).astype(np.float32))
                h = self.clf.fit(data, y[i], initial_epoch=epoch, epochs=epoch + 1,
                                         **kw).history
                for name, vals in h.items():
                    history.setdefault(name, []).extend(vals)
                if keeper.stopped:
                    break
                # between fit calls: the JAX trainer reads the variables afresh at each
                opt.learning_rate = keeper.next_learning_rate(
                    float(keras.ops.convert_to_numpy(opt.learning_rate)))
        keeper.restore(self.clf)
        out = {k: [float(v) for v in vals] for k, vals in history.items()}
        out["epoch_time_s"] = keeper.times
        if keeper.lr_patience:
            out["learning_rate"] = keeper.rates
        out["best_epoch"] = [keeper.best_epoch]
        out["stopped_by_deadline"] = [float(keeper.hit_deadline)]
        return out

    def predict(self, x: np.ndarray, batch: int = 64) -> np.ndarray:
        i = _pad_to(len(x), batch, np.random.default_rng(0))
        return np.asarray(self.clf.predict(x[i].astype(np.float32), batch_size=batch,
                                           verbose=0))[: len(x)]

    def predict_tta(self, x: np.ndarray, n: int, seed: int) -> np.ndarray:
        """Mean probabilities over ``x`` and ``n`` random training-range warps of it."""
        import jax

        assert self.augment is not None
        on_device, key = jax.device_put(x), jax.random.key(10_000 + seed)
        total = self.predict(x)
        for _ in range(n):
            key, sub = jax.random.split(key)
            total = total + self.predict(np.asarray(self.augment(on_device, sub)))
        return total / (n + 1)


class _BestKeeper:
    """Early stopping on ``val_loss`` with a deadline; :meth:`restore` puts back the best epoch.

    One keeper spans several ``fit`` calls (one per epoch when augmenting), so it
    restores only when asked, after the last. Patience stops nothing before
    ``min_epochs``: on a 15 % validation split an early, noisy minimum of the loss
    stopped 4 of 10 augmented grouped folds at epochs 4-9 (macro-F1 0.30-0.44).
    With ``lr_patience`` > 0, :meth:`next_learning_rate` multiplies the learning rate by
    ``lr_factor`` (not below ``min_lr``) once ``lr_patience`` epochs have passed since
    the best validation loss or the last cut, as Keras' ``ReduceLROnPlateau``, whose
    counter restarts at every ``fit`` call.
    """

    def __init__(self, keras: Any, patience: int, deadline: float, *,
                 min_epochs: int = 0, lr_patience: int = 0, lr_factor: float = 0.5,
                 min_lr: float = 0.0) -> None:
        keeper = self
        self.patience, self.deadline, self.min_epochs = patience, deadline, min_epochs
        self.lr_patience, self.lr_factor, self.min_lr = lr_patience, lr_factor, min_lr
        self.best, self.best_epoch, self.best_weights = np.inf, -1, None
        self.times: list[float] = []
        self.rates: list[float] = []
        self._last_cut = -1
        self.hit_deadline = self.stopped = False

        class _CB(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                keeper._t = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                keeper.times.append(time.perf_counter() - keeper._t)
                loss = float((logs or {}).get("val_loss", np.inf))
                if loss < keeper.best:
                    keeper.best, keeper.best_epoch = loss, epoch
                    keeper.best_weights = self.model.get_weights()
                if epoch - keeper.best_epoch >= keeper.patience and epoch + 1 >= keeper.min_epochs:
                    keeper.stopped = True
                if time.monotonic() > keeper.deadline:
                    keeper.hit_deadline = keeper.stopped = True
                if keeper.stopped:
                    self.model.stop_training = True

        self.callback = _CB()
        self._t = 0.0

    def next_learning_rate(self, rate: float) -> float:
        """The learning rate for the next epoch, given this epoch's ``rate``."""
        epoch = len(self.times) - 1
        self.rates.append(rate)
        if (self.lr_patience and rate > self.min_lr
                and epoch - max(self.best_epoch, self._last_cut) >= self.lr_patience):
            self._last_cut = epoch
            return max(rate * self.lr_factor, self.min_lr)
        return rate

    def restore(self, model: Any) -> None:
        """Set ``model`` to the weights of the best validation loss seen."""
        if self.best_weights is not None:
            model.set_weights(self.best_weights)


def run_config(name: str, out: Path, deadline: float, *, smoke: bool = False,
               fold: int | None = None, compile_only: bool = False) -> None:
    """Train and test one config on every fold (or on all sheets for ``"all"``).

    ``fold`` trains that fold alone (one process per fold, :func:`run_all`) and writes
    ``NAME.foldK.json``. Augmented configs also store the test-time-augmented
    probabilities (:data:`N_TTA`). ``smoke=True`` checks the whole path in a minute on
    a CPU before device time is spent: 80 training sheets, one epoch (the first fold
    unless ``fold`` is given).
    """
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    from ecgclassify.cnn import _grouped_validation_split, aggregate_crops

    protocol, p = GPU_CONFIGS[name]
    if smoke:
        p = dict(p, epochs=1)
    images, meta = load_arrays(p.get("images", "leads" if p["input"] == "leads" else "sheets"))
    labels = np.asarray(meta["labels"])
    content = np.asarray(meta["content_index"])
    hw = tuple(images.shape[-3:-1])
    t_build = time.perf_counter()
    trainer = _Trainer(keras, p, hw, 4, SEED)
    record: dict[str, Any] = {
        "model": name, "protocol": protocol, "params": p, "backend": keras.backend.backend(),
        "versions": _versions(),
        "device": _device_name(), "build_s": time.perf_counter() - t_build, "folds": []}
    folds = ([[list(range(len(labels))), []]] if protocol == "all"
             else meta["folds"][protocol])
    ks = list(range(len(folds))) if fold is None else [fold]
    if smoke:
        folds, ks = [[tr[:80], te] for tr, te in folds], ks[:1]
    flat = images.reshape(-1, *images.shape[-3:])
    record["warm_up_s"] = trainer.warm_up(flat[: int(p["batch_size"])],
                                          np.zeros(min(len(flat), int(p["batch_size"])), int))
    if compile_only:
        print(f"{name}: compiled in {record['warm_up_s']:.0f} s", flush=True)
        return
    for n_left, k in zip(range(len(ks), 0, -1), ks, strict=True):
        tr, te = (np.asarray(a, int) for a in folds[k])
        # one copy per distinct content in training (its first file's label), as CNNPredictor
        c_tr, first = np.unique(content[tr], return_index=True)
        y_tr = labels[tr][first]
        a, v = _grouped_validation_split(y_tr, c_tr.astype(str), 0.15, SEED + k)
        x, y = images[c_tr[a]], y_tr[a]
        xv, yv = images[c_tr[v]], y_tr[v]
        if p["input"] == "leads":
            n = images.shape[1]
            x, y = x.reshape(-1, *x.shape[2:]), np.repeat(y, n)
            xv, yv = xv.reshape(-1, *xv.shape[2:]), np.repeat(yv, n)
        fold_deadline = time.monotonic() + (deadline - time.monotonic()) / n_left
        t0 = time.perf_counter()
        hist = trainer.fit(x, y, xv, yv, fold_deadline, SEED + k)
        train_s = time.perf_counter() - t0
        rec: dict[str, Any] = {"fold": k, "n_train_contents": len(a),
                               "n_val_contents": len(v), "train_time_s": train_s,
                               "train_images_per_s": float(len(x) * len(hist["epoch_time_s"])
                                                           / max(train_s, 1e-9)),
                               "history": hist}
        if len(te):
            c_te, inverse = np.unique(content[te], return_inverse=True)
            xt = images[c_te]
            t0 = time.perf_counter()
            if p["input"] == "leads":
                proba = aggregate_crops(trainer.predict(xt.reshape(-1, *xt.shape[2:])),
                                        len(c_te))
            else:
                proba = trainer.predict(xt)
            rec["infer_s"] = time.perf_counter() - t0
            rec["infer_images_per_s"] = len(c_te) / rec["infer_s"]
            if trainer.augment is not None and p["input"] == "sheet":
                t0 = time.perf_counter()
                tta = trainer.predict_tta(xt, N_TTA, SEED + k)
                rec["infer_tta_images_per_s"] = len(c_te) / (time.perf_counter() - t0)
                rec["proba_tta"] = np.round(tta[inverse], 6).tolist()
            rec["test_index"] = te.tolist()
            rec["proba"] = np.round(proba[inverse], 6).tolist()
            rec["n_test_contents_in_train"] = len(set(content[te]) & set(content[tr]))
            acc = float((proba[inverse].argmax(1) == labels[te]).mean())
        else:
            acc = float("nan")
            trainer.clf.save(out / f"{name}.keras")
        record["folds"].append(rec)
        (out / (f"{name}.json" if fold is None else f"{name}.fold{fold}.json")).write_text(
            json.dumps(record))
        print(f"{name} fold {k + 1}/{len(folds)}: acc {acc:.3f}, {len(hist['loss'])} epochs "
              f"(best {hist['best_epoch'][0] + 1}), {train_s:.0f} s, "
              f"{rec['train_images_per_s']:.0f} img/s"
              f"{' DEADLINE' if hist['stopped_by_deadline'][0] else ''}", flush=True)


def _versions() -> dict[str, str]:
    """Versions of the packages the run used (for the report)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("keras", "jax", "jaxlib", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def _device_name() -> str:
    try:
        import jax

        return str(jax.devices()[0].device_kind)
    except Exception:  # pragma: no cover - reporting only
        return "unknown"


def parse_job(spec: str, n_folds: int) -> tuple[str, list[int] | None]:
    """``"NAME"`` or ``"NAME:0,4"`` -> the config and its folds (``None``: every fold)."""
    name, _, folds = spec.partition(":")
    if name not in GPU_CONFIGS:
        raise SystemExit(f"unknown config {name!r}; known: {', '.join(sorted(GPU_CONFIGS))}")
    ks = [int(k) for k in folds.split(",")] if folds else None
    if ks is not None and not all(0 <= k < n_folds for k in ks):
        raise SystemExit(f"{spec!r}: folds run from 0 to {n_folds - 1}")
    return name, ks


def run_all(out: Path, budget_s: float, specs: list[str], *, smoke: bool = False,
            per_fold: bool = True) -> None:
    """One process per fold of every config (``per_fold=False``: per config), all at once.

    ``specs`` are config names, each optionally with the folds to run (``NAME:0,4``).
    The processes share the GPU; each has the whole budget for its fold. A network this
    size leaves most of the GPU idle: in the second session's runs four processes
    trained at 460-600 images/s each against 610-730 alone (runs 1-4 ran the folds of a
    config in turn). Two lessons of run 5 (10 processes, 320 x 544 sheets, one H200):

    - XLA compiled the same network in every process at once: 289 s before the first
      epoch (215 s with 7). One process now compiles first and stores the programs in
      a persistent JAX compilation cache that the others load.
    - Each process's allocator grew on demand to 14-15 GiB, and the last ones ran out
      of the 139 GiB: each process now preallocates an equal share of the GPU's memory
      (``XLA_PYTHON_CLIENT_MEM_FRACTION``), so that one that needs more fails alone.
      Seven processes of this network get 18 GiB each on an H200, 10 GiB on an H100:
      ask for the H200.

    The results are merged into ``gpu_results.json``.
    """
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + budget_s
    meta = json.loads((ARRAYS / "meta.json").read_text())
    jobs: list[tuple[str, int | None]] = []
    for spec in specs:
        name, ks = parse_job(spec, N_SPLITS)
        protocol = GPU_CONFIGS[name][0]
        if protocol == "all" or not per_fold:
            jobs.append((name, None))
            continue
        n = len(meta["folds"][protocol])
        jobs += [(name, k) for k in (ks if ks is not None else range(n))][: 1 if smoke else None]
    cache = Path(os.environ.get("JAX_COMPILATION_CACHE_DIR", "/tmp/gpu_cnn_study_jax_cache"))
    # each process preallocates its share of the GPU's total memory (JAX's advice for
    # several processes on one GPU), rather than growing on demand as in runs 1-5
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_PYTHON_CLIENT_PREALLOCATE="true",
               XLA_PYTHON_CLIENT_MEM_FRACTION=f"{min(0.75, 0.92 / len(jobs)):.3f}",
               JAX_COMPILATION_CACHE_DIR=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", PYTHONUNBUFFERED="1")

    def command(name: str, k: int | None, *extra: str) -> list[str]:
        return ([sys.executable, "-m", "benchmarks.gpu_cnn_study", "one", name,
                 "--out", str(out), "--deadline-in", str(max(1.0, deadline - time.monotonic()))]
                + ([] if k is None else ["--fold", str(k)]) + (["--smoke"] if smoke else [])
                + list(extra))

    t0 = time.perf_counter()
    firsts = {_program_key(name): (name, k) for name, k in reversed(jobs)}
    for name, k in firsts.values():  # one compiling process per distinct network and input
        subprocess.run(command(name, k, "--compile-only"), cwd=ROOT, env=env, check=True)
    compile_s = time.perf_counter() - t0
    procs = [subprocess.Popen(command(name, k), cwd=ROOT, env=env) for name, k in jobs]
    codes: list[int | None] = []
    for pr in procs:
        try:
            codes.append(pr.wait(timeout=max(1.0, deadline - time.monotonic() + 30)))
        except subprocess.TimeoutExpired:  # an epoch ran past the deadline: keep its folds
            pr.kill()
            codes.append(None)
    names = list(dict.fromkeys(name for name, _ in jobs))
    merged: dict[str, Any] = {"date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "budget_s": budget_s, "processes": len(jobs), "compile_first_s": compile_s,
              "exit_codes": {name if k is None else f"{name} fold {k}": c
                             for (name, k), c in zip(jobs, codes, strict=True)},
              "runs": merge_records(out, names)}
    (out / "gpu_results.json").write_text(json.dumps(merged))
    print("exit codes", merged["exit_codes"])


def _program_key(name: str) -> tuple[Any, ...]:
    """What the compiled programs of a config depend on (configs sharing it share them)."""
    p = GPU_CONFIGS[name][1]
    return (p["backbone"], p["alpha"], p["input"], p.get("images"), p["batch_size"],
            bool(p["augment"]))


def merge_records(out: Path, names: list[str]) -> dict[str, Any]:
    """Read and remove ``NAME.json`` / ``NAME.foldK.json``: one record per config, folds in order."""
    runs: dict[str, Any] = {}
    for name in names:
        files = sorted(out.glob(f"{name}.fold*.json")) + sorted(out.glob(f"{name}.json"))
        for f in files:
            rec = json.loads(f.read_text())
            if name in runs:
                runs[name]["folds"] += rec["folds"]
                runs[name]["build_s"] = max(runs[name]["build_s"], rec["build_s"])
                runs[name]["warm_up_s"] = max(runs[name]["warm_up_s"], rec["warm_up_s"])
            else:
                runs[name] = rec
            f.unlink()
        if name in runs:
            runs[name]["folds"].sort(key=lambda r: r["fold"])
    return runs


# --- 3. report (CPU, this machine) --------------------------------------------------
#: A fold stopped by the time limit within its first epochs holds no trained model (the
#: first fold of a process also paid the XLA compilation, ~50-70 s): left out, and counted.
MIN_EPOCHS_IF_CUT = 4


def report(sources: list[Path]) -> str:
    """Evaluate returned probabilities per file; save the records; return the table.

    ``sources`` are merged ``gpu_results.json`` files (later ones win for a config
    they share) or folders holding one.
    """
    from benchmarks.compare_cnn import feature_row, write_report

    meta = json.loads((ARRAYS / "meta.json").read_text())
    labels = np.asarray(meta["labels"])
    merged: dict[str, Any] = {}
    for src in sources:
        f = src / "gpu_results.json" if src.is_dir() else src
        merged.update(json.loads(f.read_text())["runs"])
    runs: list[dict[str, Any]] = []
    training: dict[str, Any] = {}
    kept: dict[str, dict[int, dict[str, Any]]] = {}  # config -> fold -> its record
    for name, rec in merged.items():
        info: dict[str, Any] = {"device": rec["device"], "backend": rec["backend"],
                                "versions": rec.get("versions"),
                                "protocol": rec["protocol"], "params": rec["params"],
                                "build_s": rec["build_s"], "folds": [], "left_out": []}
        training[name] = info
        for f in rec["folds"]:
            h = f["history"]
            cut = bool(h["stopped_by_deadline"][0])
            times = np.asarray(h["epoch_time_s"])
            info["folds"].append({
                "fold": f["fold"], "epochs_run": len(h["loss"]),
                "best_epoch": int(h["best_epoch"][0]) + 1, "stopped_by_deadline": cut,
                "first_epoch_s": float(times[0]),
                "median_epoch_s": float(np.median(times[1:])) if times.size > 1 else None,
                "train_images_per_s_median_epoch": (
                    float(f["train_images_per_s"] * f["train_time_s"] / times.size
                          / np.median(times[1:])) if times.size > 1 else None),
                "final_train_accuracy": h["accuracy"][-1]})
            if "proba" not in f:
                continue
            if cut and len(h["loss"]) < MIN_EPOCHS_IF_CUT:
                info["left_out"].append(f["fold"])
                continue
            kept.setdefault(name, {})[f["fold"]] = f
            variants = [(name, "proba", "infer_images_per_s")]
            if "proba_tta" in f:
                variants.append((f"{name}+tta", "proba_tta", "infer_tta_images_per_s"))
            for model, key, speed in variants:
                runs.append(_scored(model, rec["protocol"], rec["params"], f, np.asarray(f[key]),
                                    f[speed], len(h["loss"]), int(h["best_epoch"][0]) + 1,
                                    f["train_time_s"], labels, meta["class_names"]))
    for ens, members in ENSEMBLES.items():
        if not all(m in kept for m in members):
            continue
        for k in sorted(set.intersection(*(set(kept[m]) for m in members))):
            fs = [kept[m][k] for m in members]
            for suffix, key, speed in (("", "proba", "infer_images_per_s"),
                                       ("+tta", "proba_tta", "infer_tta_images_per_s")):
                if not all(key in f for f in fs):
                    continue
                runs.append(_scored(
                    ens + suffix, merged[members[0]]["protocol"], {"members": members}, fs[0],
                    np.mean([np.asarray(f[key]) for f in fs], axis=0),
                    1.0 / sum(1.0 / f[speed] for f in fs),
                    float(np.mean([len(f["history"]["loss"]) for f in fs])), None,
                    sum(f["train_time_s"] for f in fs), labels, meta["class_names"]))
    out = {"generated_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "sources": [str(s) for s in sources],
           "machine": "lent GPU machine ("
                      + ", ".join(sorted({r["device"] for r in merged.values()}))
                      + "), Keras 3.15.1 (carried wheel) on the image's JAX, the configs of "
                        "one run all at once",
           "min_epochs_if_cut": MIN_EPOCHS_IF_CUT, "runs": runs, "training": training}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))
    table = write_report(feature_row(), runs=runs)
    RESULTS.with_suffix(".md").write_text(table)
    plot_curves(merged, FIGURE)
    return table


def _scored(model: str, protocol: str, params: dict[str, Any], f: dict[str, Any],
            proba: np.ndarray, infer_per_s: float, epochs: float, best_epoch: int | None,
            train_s: float, labels: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """One fold's test probabilities scored per file, as a row of the report."""
    from ecgclassify.evaluation import evaluate_predictions

    te = np.asarray(f["test_index"])
    pred = proba.argmax(1)
    rep = evaluate_predictions(labels[te], pred, proba, model=model,
                               protocol=f"{protocol}, fold {f['fold'] + 1}/5",
                               class_names=class_names, labels=[0, 1, 2, 3])
    return {"model": model, "protocol": protocol, "fold": f["fold"], "n_splits": N_SPLITS,
            "params": params, "n_test_contents_in_train": f["n_test_contents_in_train"],
            "epochs_run": epochs, "best_epoch": best_epoch,
            "stopped_by_deadline": bool(f["history"]["stopped_by_deadline"][0]),
            "train_time_s": train_s, "infer_images_per_s": infer_per_s,
            "y_true": labels[te].tolist(), "y_pred": pred.tolist(), "test_index": te.tolist(),
            "report": rep.to_dict()}


FIGURE = ROOT / "docs" / "img" / "cnn_gpu_curves.png"
#: Configs drawn by :func:`plot_curves` (those of the table's headline rows).
CURVES = ("efficientnet_v2_b0-gpu", "efficientnet_v2_b0-hi-gpu", "efficientnet_v2_b0-hi-augment-gpu",
          "efficientnet_v2_b0-hi-augment-long-gpu", "efficientnet_v2_b0-hi-augment-leaky-gpu")


def plot_curves(merged: dict[str, Any], path: Path) -> Path | None:
    """Training and validation loss per fold of the :data:`CURVES` configs (one panel each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in CURVES if n in merged]
    if not names:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.2), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        for f in merged[name]["folds"]:
            h = f["history"]
            if len(h["loss"]) < MIN_EPOCHS_IF_CUT:
                continue
            epochs = np.arange(1, len(h["loss"]) + 1)
            line, = ax.plot(epochs, h["loss"], lw=0.8, alpha=0.6)
            ax.plot(epochs, h["val_loss"], lw=1.4, color=line.get_color(),
                    label=f"fold {f['fold'] + 1}")
            best = int(h["best_epoch"][0])
            ax.plot(best + 1, h["val_loss"][best], "o", ms=4, color=line.get_color())
        ax.set_title(name.replace("-gpu", ""), fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.legend(fontsize=6, loc="upper right")
    np.atleast_1d(axes)[0].set_ylabel("loss (thin: training, thick: validation)")
    fig.suptitle("lent GPU, Keras 3 on JAX: dots mark the restored best epoch", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("prepare", help="prepare the arrays and folds (CPU)")
    pr.add_argument("--hi", action="store_true",
                    help="add the grey 320 x 544 sheets to an existing data/gpu")
    r = sub.add_parser("run", help="every config at once (GPU machine)")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--budget-s", type=float, default=420.0)
    r.add_argument("--configs", nargs="*", default=DEFAULT_RUN,
                   help=f"NAME or NAME:FOLD,FOLD; default: {' '.join(DEFAULT_RUN)}")
    r.add_argument("--smoke", action="store_true", help="one fold, one epoch (a CPU check)")
    r.add_argument("--sequential", action="store_true",
                   help="the folds of a config in turn in one process (runs 1-4)")
    o = sub.add_parser("one", help="one config (run starts these)")
    o.add_argument("name", choices=sorted(GPU_CONFIGS))
    o.add_argument("--out", type=Path, required=True)
    o.add_argument("--deadline-in", type=float, default=420.0)
    o.add_argument("--fold", type=int, default=None, help="this fold alone")
    o.add_argument("--compile-only", action="store_true",
                   help="build and compile (filling the compilation cache), then stop")
    o.add_argument("--smoke", action="store_true")
    rep = sub.add_parser("report", help="evaluate the returned results (CPU)")
    rep.add_argument("sources", type=Path, nargs="+",
                     help="gpu_results.json files or folders, later ones win")
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        prepare(args.hi)
    elif args.cmd == "run":
        run_all(args.out, args.budget_s, args.configs, smoke=args.smoke,
                per_fold=not args.sequential)
    elif args.cmd == "one":
        run_config(args.name, args.out, time.monotonic() + args.deadline_in, smoke=args.smoke,
                   fold=args.fold, compile_only=args.compile_only)
    else:
        print(report(args.sources))


if __name__ == "__main__":
    main()
