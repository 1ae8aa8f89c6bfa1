"""Train the shipped reference CNN on all reference sheets and export its TFLite float16 variant.

Writes ``ecgclassify/models/reference-cnn.ecgmodel`` (Keras, inside the
predictor archive) and ``ecgclassify/models/reference-cnn-float16.ecgmodel``
(LiteRT, no TensorFlow needed to run it), plus a JSON record of the run in
``benchmarks/results/train_reference_cnn.json``.

Usage (2-core CPU, no GPU; a few minutes)::

    nice -n 10 .venv/bin/python -m benchmarks.train_reference_cnn [--model mobilenet_v2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.compare_cnn import CONFIGS
from ecgclassify.cnn import CNNPredictor
from ecgclassify.datasets import load_image_folder
from ecgclassify.tflite import export_tflite

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "ecg-images"
MODELS = ROOT / "ecgclassify" / "models"
RECORD = ROOT / "benchmarks" / "results" / "train_reference_cnn.json"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="mobilenet_v2", choices=sorted(CONFIGS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    _, params = CONFIGS[args.model]
    ds = load_image_folder(DATA)
    clf = CNNPredictor(seed=args.seed, **params)
    t0 = time.perf_counter()
    clf.fit(list(ds.paths), ds.labels, groups=list(ds.content_hashes))
    train_s = time.perf_counter() - t0
    MODELS.mkdir(parents=True, exist_ok=True)
    keras_path = clf.save(MODELS / "reference-cnn.ecgmodel")
    lite = export_tflite(clf, MODELS / "reference-cnn-float16.ecgmodel", quantization="float16")
    # agreement of the float16 export with Keras on every distinct reference sheet
    _, first = np.unique(np.asarray(ds.content_hashes), return_index=True)
    images = clf.preprocess([ds.paths[i] for i in first])
    pk = clf.predict_proba_prepared(images)
    pl = lite.predict_proba_prepared(images)
    record = {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": f"python -m benchmarks.train_reference_cnn --model {args.model}",
        "machine": "2-core CPU, no GPU", "model": args.model, "params": clf.get_params(),
        "n_files": len(ds), "n_distinct": len(first), "train_time_s": train_s,
        "epochs_run": len(clf.history_["loss"]), "history": clf.history_,
        "keras_archive_bytes": keras_path.stat().st_size,
        "tflite_float16_archive_bytes": (MODELS / "reference-cnn-float16.ecgmodel").stat().st_size,
        "float16_same_class_fraction": float((pk.argmax(1) == pl.argmax(1)).mean()),
        "float16_max_abs_proba_diff": float(np.abs(pk - pl).max()),
        "train_accuracy_distinct": float((clf.classes_[pk.argmax(1)] == ds.labels[first]).mean()),
    }
    record["params"] = {k: (repr(v) if not isinstance(v, int | float | str | type(None) | list)
                            else v) for k, v in record["params"].items()}
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k != "history"}, indent=1))


if __name__ == "__main__":
    main()
