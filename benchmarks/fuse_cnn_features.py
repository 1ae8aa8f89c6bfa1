"""Do the CNN and the feature model know different things? Late fusion on the same folds.

Takes the grouped test-fold probabilities of a GPU-study CNN run
(:mod:`benchmarks.gpu_cnn_study`, e.g. ``gpu_cnn_run3.json``) and fits the best feature
model (``FeaturePredictor(model="ensemble")``) on the same grouped folds (seed 0;
digitizations through the usual cache, ~10 min of CPU when it is cold). Each test file
is then scored by the CNN, by the features, and by the plain mean of the two
probability vectors (equal weights, fixed beforehand: nothing is tuned on the test
folds). Writes ``benchmarks/results/fusion.json`` and prints the table::

    nice -n 10 .venv/bin/python -m benchmarks.fuse_cnn_features \\
        benchmarks/results/gpu_cnn_run3.json:efficientnet_v2_b0-hi-augment-gpu \\
        benchmarks/results/gpu_cnn_run5.json:efficientnet_v2_b0-hi-augment-long-gpu
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import datetime as dt
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.gpu_cnn_study import ARRAYS, DATA, N_SPLITS, SEED

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "fusion.json"


def fuse(p_cnn: np.ndarray, p_feat: np.ndarray) -> np.ndarray:
    """Equal-weight mean of two ``(n, classes)`` probability arrays (rows sum to 1)."""
    p_cnn, p_feat = np.asarray(p_cnn, float), np.asarray(p_feat, float)
    if p_cnn.shape != p_feat.shape:
        raise ValueError(f"shapes differ: {p_cnn.shape} vs {p_feat.shape}")
    return (p_cnn + p_feat) / 2.0


def cnn_folds(source: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``FILE:CONFIG`` -> fold -> (test file indices, probabilities) of a GPU-study run
    or of a :mod:`benchmarks.compare_cnn` model (``cnn_compare.json``; records with
    probabilities only)."""
    path, _, name = source.partition(":")
    runs = json.loads(Path(path).read_text())["runs"]
    if isinstance(runs, list):  # compare_cnn: one record per (model, fold)
        folds = [r for r in runs if r["model"] == name]
        protocol = folds[0]["protocol"] if folds else "grouped"
    else:
        folds, protocol = runs[name]["folds"], runs[name]["protocol"]
    if protocol != "grouped":
        raise ValueError(f"{source}: protocol {protocol!r}, not grouped")
    return {f["fold"]: (np.asarray(f["test_index"]), np.asarray(f["proba"]))
            for f in folds if "proba" in f}


def feature_folds(folds: list[int]) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], Any]:
    """Fit the feature ensemble on each grouped training fold; test-file probabilities."""
    from ecgclassify.datasets import ensure_reference_images, load_image_folder
    from ecgclassify.evaluation import _aligned_proba
    from ecgclassify.feature_predictor import FeaturePredictor
    from ecgclassify.splits import grouped_stratified_kfold

    ensure_reference_images(DATA)
    ds = load_image_folder(DATA)
    meta = json.loads((ARRAYS / "meta.json").read_text())
    if [Path(p).name for p in ds.paths] != meta["paths"]:
        raise RuntimeError("data/gpu was prepared from another file order: run its prepare")
    splits = list(grouped_stratified_kfold(ds.labels, ds.content_hashes, N_SPLITS, SEED,
                                           protocol="grouped"))
    out = {}
    for k in folds:
        tr, te = splits[k]
        if sorted(te.tolist()) != sorted(meta["folds"]["grouped"][k][1]):
            raise RuntimeError(f"fold {k} differs from the GPU study's")
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = FeaturePredictor(model="ensemble", verbose=True).fit(
                [ds.paths[i] for i in tr], ds.labels[tr])
            proba = _aligned_proba(est, [ds.paths[i] for i in te], np.unique(ds.labels))
        print(f"features fold {k + 1}: {time.perf_counter() - t0:.0f} s", flush=True)
        out[k] = (te, proba)
    return out, ds


def _sd(v: np.ndarray) -> float:
    return float(v.std(ddof=1)) if v.size > 1 else 0.0


def main(argv: list[str] | None = None) -> None:
    from ecgclassify.evaluation import evaluate_predictions

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sources", nargs="+", help="RUN.json:CONFIG of the GPU study")
    args = ap.parse_args(argv)
    cnns = {s.partition(":")[2]: cnn_folds(s) for s in args.sources}
    all_folds = sorted({k for c in cnns.values() for k in c})
    feats, ds = feature_folds(all_folds)
    labels = np.asarray(ds.labels)
    rows: dict[str, dict[str, list[float]]] = {}
    for name, folds in cnns.items():
        for k, (te, p_cnn) in sorted(folds.items()):
            te_f, p_feat = feats[k]
            order = {int(i): j for j, i in enumerate(te_f)}
            p_feat = p_feat[[order[int(i)] for i in te]]
            for model, p in ((name, p_cnn), ("features-ensemble", p_feat),
                             (f"{name} + features-ensemble", fuse(p_cnn, p_feat))):
                rep = evaluate_predictions(labels[te], p.argmax(1), p, model=model,
                                           labels=[0, 1, 2, 3])
                r = rows.setdefault(f"{name}|{model}", {"macro_f1": [], "accuracy": []})
                r["macro_f1"].append(rep.macro_f1)
                r["accuracy"].append(rep.accuracy)
    lines = ["| CNN run | model | folds | accuracy | macro-F1 | macro-F1 per fold |",
             "|---|---|---|---|---|---|"]
    for key, r in rows.items():
        name, model = key.split("|")
        f1, acc = np.asarray(r["macro_f1"]), np.asarray(r["accuracy"])
        lines.append(f"| {name} | {model} | {f1.size} | {acc.mean():.3f} ± {_sd(acc):.3f} | "
                     f"{f1.mean():.3f} ± {_sd(f1):.3f} | "
                     + " ".join(f"{v:.3f}" for v in f1) + " |")
    OUT.write_text(json.dumps({
        "generated_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sources": args.sources, "fusion": "equal-weight mean of probabilities",
        "rows": rows}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
