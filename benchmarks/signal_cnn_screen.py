"""Training recipes for the 1-D CNN, screened on 15 grouped folds at a quick configuration.

``benchmarks.signal_cnn_variants`` tried knobs of :class:`~ecgclassify.signal_cnn.SignalCNNPredictor`
on the 5 folds of fold seed 0, and learned that a winner there can lose on other folds. This
script tries changes to the *training recipe* (mixup, a time-stretch augmentation, a higher
input rate, rhythm features beside the network, the rhythm strip in a channel of its own, one
encoder shared by all leads) on all 15 folds of fold seeds 0, 1 and 2 from the start, each
paired with the same quick baseline on the same folds and network seeds. The time stretch is
now ``SignalCNNPredictor(stretch=...)``; the others exist only here. To fit 15 folds per recipe into about
8 minutes on the 2-core CPU, every recipe starts from a quick version of the defaults:
width 16 and 30 epochs (on fold seed 0 each of those alone scored within the spread of
network seeds: 0.916 and 0.918 against 0.904-0.920; see ``signal_cnn_variants``).

Everything else is the predictor's: :meth:`SignalCNNPredictor.preprocess` inputs (10 s,
mV), one copy of identical inputs per training fold, balanced class weights, Adam with a
cosine decay from 1e-3, batch 32, the predictor's augmentation (amplitude, shift, noise)
drawn anew each epoch, TensorFlow's deterministic ops. Network seed of fold ``k`` of fold
seed ``s``: ``1000 s + k``.

Recipes (``VARIANTS``):

- ``base``: the quick defaults.
- ``mixup``: mixup (Zhang et al. 2018) with Beta(0.2, 0.2): each training input becomes
  ``lam x_i + (1 - lam) x_j`` (``lam >= 0.5``) with the same mix of one-hot labels and weights.
- ``fs250``: inputs at 250 Hz instead of 100 Hz (Q waves and notches keep more samples).
- ``stretch``: a random time stretch of x U(0.9, 1.1) after the usual augmentation (as if
  the heart rate differed by up to 10 %; :func:`ecgclassify.signal_cnn.time_stretch`).
- ``rhythm``: the 11 rhythm features of :mod:`ecgclassify.features` (:data:`RHYTHM_FEATURES`:
  heart rate, RR statistics, beat-to-beat correlation, ectopic fraction), standardised with
  the training fold's median and IQR (missing: 0), joined to the pooled CNN output before
  the classifier. Tried because the feature model gets right 5 abnormal-heartbeat sheets
  that nearly every 1-D CNN calls history of MI (``benchmarks.hard_sheets``).
- ``rhythm-channel``: the rhythm strip moved to a 13th channel of its own (10 s), its lead's
  channel cut back to that lead's 2.5 s column like every other lead. The strip is lead II
  on some sheets and lead III on others; this way every lead looks alike on every sheet
  and the strip always sits in the same channel.
- ``perlead``: one small encoder (the same ResNet at width 8, one channel) applied to every
  lead, its 12 pooled outputs side by side before the classifier: 12x more examples for the
  shared weights, at the price of no cross-lead filters.

Resumable (one record per recipe and fold)::

    nice -n 10 .venv/bin/python -m benchmarks.signal_cnn_screen [--variants base mixup ...] [--report]

Writes ``benchmarks/results/signal_cnn_screen.json`` and ``docs/results/signal_cnn_screen.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import datetime as dt
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.runner import load_fold_records, save_fold_records

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "ecg-images"
RESULTS = ROOT / "benchmarks" / "results" / "signal_cnn_screen.json"
DOC = ROOT / "docs" / "results" / "signal_cnn_screen.md"
N_SPLITS = 5
FOLD_SEEDS = (0, 1, 2)
N_CLASSES = 4

#: name -> keyword arguments of :func:`train` (``fs`` picks the input rate)
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "mixup": {"mixup": 0.2},
    "fs250": {"fs": 250.0},
    "stretch": {"stretch": 0.1},
    "perlead": {"arch": "perlead"},
    "rhythm": {"extra": "rhythm"},
    "rhythm-channel": {"transform": "rhythm-channel"},
}
#: whole-record rhythm features of ``ecgclassify.features`` given to the ``rhythm`` recipe
RHYTHM_FEATURES = ("hr_bpm", "rr_mean_s", "rr_sd_s", "rr_cv", "rr_irregularity",
                   "rr_range_ratio", "n_beats", "beat_corr_mean", "beat_corr_min",
                   "ectopic_fraction", "beat_residual_mv")


def rhythm_channel(x: np.ndarray) -> np.ndarray:
    """(n, 4 q, 12) 3x4+1 inputs -> (n, 4 q, 13): the rhythm strip in a channel of its own.

    The rhythm lead is the channel with the most non-zero samples; its channel keeps only
    its own column (the first quarter: leads I-III sit in column 1), and the whole strip
    becomes channel 13.
    """
    q = x.shape[1] // 4
    lead = (x != 0).sum(axis=1).argmax(axis=1)
    rows = np.arange(len(x))
    strip = x[rows, :, lead]
    out = np.concatenate([x, strip[:, :, None]], axis=2)
    out[rows[:, None], np.arange(q, x.shape[1])[None, :], lead[:, None]] = 0.0
    return out


def per_lead_model(n_samples: int, n_leads: int, n_classes: int, width: int = 8,
                   dropout: float = 0.3) -> Any:
    """One 1-D ResNet encoder shared by every lead; the leads' pooled features side by side."""
    from ecgclassify.cnn import _import_keras
    from ecgclassify.signal_cnn import build_signal_model

    keras = _import_keras(require_tensorflow=False)
    layers = keras.layers
    net = build_signal_model(n_samples, 1, n_classes, width=width)
    pooled = next(la for la in net.layers if "global_average_pooling" in la.name)
    encoder = keras.Model(net.inputs, pooled.output)
    inputs = keras.Input((n_samples, n_leads))
    x = layers.Reshape((n_leads, n_samples, 1))(layers.Permute((2, 1))(inputs))
    x = layers.Flatten()(layers.TimeDistributed(encoder)(x))
    outputs = layers.Dense(n_classes, activation="softmax")(layers.Dropout(dropout)(x))
    return keras.Model(inputs, outputs)


def with_extra_inputs(net: Any, n_extra: int, dropout: float = 0.3) -> Any:
    """``net`` with a second input of ``n_extra`` numbers joined to its pooled features."""
    from ecgclassify.cnn import _import_keras

    keras = _import_keras(require_tensorflow=False)
    layers = keras.layers
    pooled = next(la for la in net.layers if "global_average_pooling" in la.name)
    extra = keras.Input((n_extra,))
    x = layers.Concatenate()([pooled.output, extra])
    outputs = layers.Dense(net.output_shape[-1], activation="softmax")(layers.Dropout(dropout)(x))
    return keras.Model([*net.inputs, extra], outputs)


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale columns by the training rows' median and IQR, clip to ±5, missing (NaN) -> 0."""
    med = np.nanmedian(train, axis=0)
    iqr = np.nanpercentile(train, 75, axis=0) - np.nanpercentile(train, 25, axis=0)
    scale = np.where(np.isfinite(iqr) & (iqr > 0), iqr, 1.0)
    med = np.where(np.isfinite(med), med, 0.0)
    return [np.nan_to_num(np.clip((a - med) / scale, -5, 5), nan=0.0).astype(np.float32)
            for a in (train, *others)]


def train(x: np.ndarray, yi: np.ndarray, seed: int, fs: float, *, width: int = 16,
          epochs: int = 30, batch_size: int = 32, learning_rate: float = 1e-3,
          mixup: float = 0.0, stretch: float = 0.0,
          arch: str = "plain", extra: np.ndarray | None = None) -> Any:
    """Train one network on deduplicated inputs ``x`` (n, samples, 12) and labels 0..3.

    ``extra`` (n, n_extra), standardised, makes it a two-input model (:func:`with_extra_inputs`).
    """
    from ecgclassify.cnn import _import_keras
    from ecgclassify.signal_cnn import augment_signals, build_signal_model, time_stretch

    keras = _import_keras(require_tensorflow=False)
    keras.utils.set_random_seed(seed)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    counts = np.bincount(yi, minlength=N_CLASSES).astype(float)
    weights = (len(yi) / (N_CLASSES * np.maximum(counts, 1.0)))[yi].astype(np.float32)
    steps = int(np.ceil(len(yi) / batch_size)) * epochs
    if arch == "perlead":
        model = per_lead_model(x.shape[1], x.shape[2], N_CLASSES)
    else:
        model = build_signal_model(x.shape[1], x.shape[2], N_CLASSES, width=width)
    if extra is not None:
        model = with_extra_inputs(model, extra.shape[1])
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.CategoricalCrossentropy())
    rng = np.random.default_rng(seed)
    eye = np.eye(N_CLASSES, dtype=np.float32)
    for epoch in range(epochs):
        order = rng.permutation(len(yi))
        xe = augment_signals(x[order], rng, fs)
        if stretch:
            xe = time_stretch(xe, rng, stretch)
        ye, we = eye[yi[order]], weights[order]
        if mixup:
            lam = rng.beta(mixup, mixup, len(ye)).astype(np.float32)
            lam = np.maximum(lam, 1 - lam)
            partner = rng.permutation(len(ye))
            xe = lam[:, None, None] * xe + (1 - lam[:, None, None]) * xe[partner]
            ye = lam[:, None] * ye + (1 - lam[:, None]) * ye[partner]
            we = lam * we + (1 - lam) * we[partner]
        if extra is not None:
            xe = [xe, extra[order]]
        model.fit(xe, ye, sample_weight=we, batch_size=batch_size, epochs=epoch + 1,
                  initial_epoch=epoch, shuffle=False, verbose=0)
    return model


def _rhythm_features(paths: list[Any]) -> np.ndarray:
    """:data:`RHYTHM_FEATURES` of every sheet (digitization and features from the cache)."""
    from ecgclassify.feature_predictor import FeaturePredictor
    from ecgclassify.features import feature_names
    from ecgdigitize.record import STANDARD_LEADS

    names = feature_names(STANDARD_LEADS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feats = FeaturePredictor(verbose=True).features(paths)
    return np.asarray(feats, float)[:, [names.index(n) for n in RHYTHM_FEATURES]]


def run(variants: list[str], data: Path = DATA, fold_seeds: tuple[int, ...] = FOLD_SEEDS
        ) -> dict[str, Any]:
    """Train every (variant, fold seed, fold) not yet in the results file; returns the results."""
    from ecgclassify.datasets import ensure_reference_images, load_image_folder
    from ecgclassify.signal_cnn import SignalCNNPredictor, first_copies
    from ecgclassify.splits import grouped_stratified_kfold

    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    ds = load_image_folder(ensure_reference_images(data))
    y = np.asarray(ds.labels)
    res = load_fold_records(RESULTS)
    done = {(r["variant"], r["fold_seed"], r["fold"]) for r in res["runs"]}
    inputs: dict[tuple[float, str | None], np.ndarray] = {}
    rhythm = None
    for name in variants:
        params = dict(VARIANTS[name])
        fs = float(params.pop("fs", 100.0))
        extra_kind = params.pop("extra", None)
        if extra_kind == "rhythm" and rhythm is None:
            rhythm = _rhythm_features(list(ds.paths))
        transform = params.pop("transform", None)
        key = (fs, transform)
        if (fs, None) not in inputs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                inputs[(fs, None)] = SignalCNNPredictor(fs=fs, verbose=True).preprocess(
                    list(ds.paths))
        if key not in inputs:
            inputs[key] = rhythm_channel(inputs[(fs, None)])
        for fold_seed in fold_seeds:
            folds = grouped_stratified_kfold(y, ds.content_hashes, N_SPLITS, fold_seed)
            for k, (tr, te) in enumerate(folds):
                if (name, fold_seed, k) in done:
                    continue
                t0 = time.perf_counter()
                keep = tr[first_copies(inputs[key][tr])]
                x_te: Any = inputs[key][te]
                if extra_kind is not None:
                    f_tr, f_te = standardise(rhythm[keep], rhythm[te])
                    params["extra"] = f_tr
                    x_te = [x_te, f_te]
                model = train(inputs[key][keep], y[keep], 1000 * fold_seed + k, fs, **params)
                train_s = time.perf_counter() - t0
                proba = np.asarray(model.predict(x_te, batch_size=256, verbose=0))
                res["runs"].append({
                    "variant": name, "fold_seed": fold_seed, "fold": k,
                    "test_index": te.tolist(), "y_true": y[te].tolist(),
                    "proba": np.round(proba, 4).tolist(), "train_time_s": train_s,
                    "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
                save_fold_records(RESULTS, res, indent=None)
                print(f"{name} fold seed {fold_seed} fold {k + 1}: {train_s:.0f} s", flush=True)
    return res


def _macro_f1(r: dict[str, Any]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(r["y_true"], np.asarray(r["proba"]).argmax(axis=1),
                          average="macro"))


def report(res: dict[str, Any]) -> str:
    """Markdown: per recipe, the mean macro-F1 of each fold seed, of all 15 folds, and the
    paired difference with ``base`` on the same folds.

    A recipe stopped before its 15 folds is shown on the folds it has, with how many (a
    fold seed it did not finish reads ``k of 5``); the base must have all 15."""
    scores: dict[str, dict[tuple[int, int], float]] = {}
    times: dict[str, list[float]] = {}
    for r in res["runs"]:
        scores.setdefault(r["variant"], {})[(r["fold_seed"], r["fold"])] = _macro_f1(r)
        times.setdefault(r["variant"], []).append(float(r["train_time_s"]))
    keys = [(s, k) for s in FOLD_SEEDS for k in range(N_SPLITS)]
    base = scores.get("base", {})
    if not all(key in base for key in keys):
        raise ValueError("the base recipe is missing folds: run it first")
    lines = ["| recipe | fold seed 0 | fold seed 1 | fold seed 2 | all 15 folds, mean ± SD | "
             "minus base, mean (SD) | ahead / behind of base | train time / fold (s, median) |",
             "|---|---|---|---|---|---|---|---|"]
    for name in VARIANTS:
        got = scores.get(name, {})
        have = [key for key in keys if key in got]
        if not have:
            continue
        f1 = np.array([got[key] for key in have])
        d = f1 - np.array([base[key] for key in have])
        cells = []
        for seed in FOLD_SEEDS:
            vals = [got[(seed, k)] for k in range(N_SPLITS) if (seed, k) in got]
            cells.append("-" if not vals else f"{np.mean(vals):.3f}" if len(vals) == N_SPLITS
                         else f"{np.mean(vals):.3f} ({len(vals)} of {N_SPLITS})")
        sd = f"{f1.std(ddof=1):.3f}" if len(f1) > 1 else "-"
        overall = f"{f1.mean():.3f} ± {sd}" + (
            "" if len(have) == len(keys) else f" ({len(have)} of {len(keys)} folds)")
        paired = ("-" if name == "base" else
                  f"{d.mean():+.3f} ({d.std(ddof=1):.3f})" if len(d) > 1 else f"{d.mean():+.3f}")
        counts = ("-" if name == "base" else f"{int((d > 0).sum())} / {int((d < 0).sum())}")
        lines.append(f"| {name} | {' | '.join(cells)} | {overall} | "
                     f"{paired} | {counts} | {np.median(times[name]):.0f} |")
    m = res.get("machine", {})
    desc = m.get("description", "") if isinstance(m, dict) else str(m)
    return ("\n".join(lines) + "\n\nGrouped 5-fold CV on fold seeds 0-2, per file; every "
            f"recipe at width 16 and 30 epochs unless it says otherwise; {desc}. "
            "Command: `python -m benchmarks.signal_cnn_screen`.\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--report", action="store_true", help="only render the table")
    args = ap.parse_args(argv)
    res = load_fold_records(RESULTS) if args.report else run(args.variants, Path(args.data))
    table = report(res)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
