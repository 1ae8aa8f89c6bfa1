"""Train the shipped models that read digitized signals on all 793 reference files.

Reproduces ``ecgclassify/models/reference-features.ecgmodel``: digitizes every
reference sheet (through the cache), fits ``FeaturePredictor(model="ensemble")``
(the best model of the grouped CV in docs/results/feature_models.md: a soft vote
of logistic regression, random forest and a template-PCA logistic regression)
on all files and saves it (a ZIP with manifest.json + a skops file; no
pickle), then reloads it and checks it reproduces its own predictions.

``--model signal-cnn`` reproduces ``ecgclassify/models/reference-signal-cnn.ecgmodel``
the same way: ``SignalCNNPredictor()`` with its defaults (seed 0), a 1-D ResNet on the
digitized leads (about 3 minutes of training on 2 cores once the sheets are digitized),
and its TFLite export with float16 weights, ``reference-signal-cnn-float16.ecgmodel``
(inference with ``ai-edge-litert`` only, no TensorFlow; ``--lite-only`` exports the
saved Keras model again without training).

Usage::

    nice -n 10 .venv/bin/python -m benchmarks.train_reference_features [--model ensemble]
    nice -n 10 .venv/bin/python -m benchmarks.train_reference_features --model signal-cnn
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # shared 2-core machine: no OpenMP oversubscription

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from ecgclassify import load_predictor
from ecgclassify.datasets import ensure_reference_images, load_image_folder
from ecgclassify.feature_predictor import FeaturePredictor
from ecgclassify.signal_cnn import SignalCNNPredictor

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "ecgclassify" / "models"
OUT = MODELS / "reference-features.ecgmodel"
OUT_SIGNAL = MODELS / "reference-signal-cnn.ecgmodel"
OUT_SIGNAL_LITE = MODELS / "reference-signal-cnn-float16.ecgmodel"


def export_signal_lite(keras_path: Path, sample: list[Any]) -> None:
    """Write the float16 TFLite export of a saved 1-D CNN and report its agreement."""
    from ecgclassify.tflite import export_tflite

    model = load_predictor(keras_path)
    lite = export_tflite(model, OUT_SIGNAL_LITE, quantization="float16")
    x = model.preprocess(sample)
    pk, pl = model.predict_proba_prepared(x), lite.predict_proba_prepared(x)
    print(f"saved {OUT_SIGNAL_LITE} ({OUT_SIGNAL_LITE.stat().st_size / 1024:.0f} KiB): same "
          f"class on {np.mean(pk.argmax(1) == pl.argmax(1)):.3f} of {len(sample)} sheets, "
          f"max |Δp| {np.abs(pk - pl).max():.1e}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ensemble",
                   choices=("ensemble", "hgb", "logreg", "rf", "signal-cnn"))
    p.add_argument("--data", default=str(ROOT / "data" / "ecg-images"))
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--out", default=None,
                   help=f"default {OUT.name}, or {OUT_SIGNAL.name} for signal-cnn")
    p.add_argument("--lite-only", action="store_true",
                   help=f"signal-cnn: only export {OUT_SIGNAL.name} to {OUT_SIGNAL_LITE.name}")
    args = p.parse_args()
    t0 = time.perf_counter()
    ds = load_image_folder(ensure_reference_images(args.data))
    print(ds.duplicates.summary())
    if args.lite_only:
        export_signal_lite(Path(args.out) if args.out else OUT_SIGNAL, list(ds.paths))
        return
    model: Any
    if args.model == "signal-cnn":
        model = SignalCNNPredictor(cache_dir=args.cache_dir, seed=0)
    else:
        model = FeaturePredictor(model=args.model, cache_dir=args.cache_dir, random_state=0)
    model.fit(list(ds.paths), ds.labels)
    path = model.save(args.out or (OUT_SIGNAL if args.model == "signal-cnn" else OUT))
    again = load_predictor(path)
    sample = list(ds.paths[::40])
    # the PCA of the ensemble's template member may differ in the last bit after a reload
    # (memory layout changes the BLAS summation order): compare to 1e-12 (float32 network:
    # 1e-6), report the gap
    gap = float(np.max(np.abs(again.predict_proba(sample) - model.predict_proba(sample))))
    same = f"{gap <= (1e-6 if args.model == 'signal-cnn' else 1e-12)} (max |Δp| {gap:.1e})"
    train_acc = float(np.mean(again.predict(list(ds.paths)) == ds.labels))
    print(f"saved {path} ({path.stat().st_size / 1024:.0f} KiB) in "
          f"{time.perf_counter() - t0:.0f} s; reload reproduces: {same}; "
          f"training accuracy {train_acc:.3f} (not a test score)")
    if args.model == "signal-cnn" and args.out is None:
        export_signal_lite(path, list(ds.paths))


if __name__ == "__main__":
    main()
