"""The 1-D CNN on digitized leads against the feature model, on the same grouped folds.

For each fold-assignment seed (default 0, 1, 2) and each of the 5 grouped folds, fits
:class:`~ecgclassify.signal_cnn.SignalCNNPredictor` (its defaults; network seed = fold
index, as in ``benchmarks.compare_cnn``) and ``FeaturePredictor(model="ensemble")`` on the
training files, and scores the test files with each and with the plain mean of their
probabilities (equal weights fixed beforehand: nothing is tuned on the test folds, as in
``benchmarks.fuse_cnn_features``). Every sheet is digitized once, through the usual cache
(~1 s a sheet when it is cold). About 2.5 min a fold on the 2-core CPU; resumable (one
JSON record per fold, written as it ends).

Writes ``benchmarks/results/signal_cnn_study.json`` and ``docs/results/signal_cnn_study.md``::

    nice -n 10 .venv/bin/python -m benchmarks.signal_cnn_study [--seeds 0 1 2] [--report]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import datetime as dt
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.runner import load_fold_records, save_fold_records

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "ecg-images"
RESULTS = ROOT / "benchmarks" / "results" / "signal_cnn_study.json"
DOC = ROOT / "docs" / "results" / "signal_cnn_study.md"
N_SPLITS = 5
MODELS = ("signal-cnn", "features-ensemble", "signal-cnn + features-ensemble")


def _load() -> dict[str, Any]:
    return load_fold_records(RESULTS)


def _save(res: dict[str, Any]) -> None:
    save_fold_records(RESULTS, res, indent=1)


def reused_folds(source: str | None) -> dict[int, dict[str, Any]]:
    """Seed-0 signal-CNN folds already trained by ``benchmarks.compare_cnn`` (``FILE:MODEL``).

    Only records of the grouped protocol with fold seed 0 whose parameters are
    :class:`~ecgclassify.signal_cnn.SignalCNNPredictor`'s defaults are reused; the
    network seed is the fold index there too, so they are the fits this study would make.
    """
    from ecgclassify.signal_cnn import SignalCNNPredictor

    if not source:
        return {}
    path, _, name = source.partition(":")
    if not Path(path).is_file():
        return {}
    defaults = SignalCNNPredictor().get_params()
    out = {}
    for r in json.loads(Path(path).read_text())["runs"]:
        params = {k: v for k, v in r.get("params", {}).items() if k != "predictor"}
        params.setdefault("pooling", "avg")  # records made before the parameter existed
        if (r["model"] == name and r["protocol"] == "grouped" and "proba" in r
                and all(defaults.get(k) == v for k, v in params.items())):
            out[int(r["fold"])] = r
    return out


def run(seeds: list[int], data: Path = DATA, reuse: str | None = None) -> dict[str, Any]:
    """Run every (seed, fold) not yet in the results file; returns the results.

    ``reuse`` (``FILE:MODEL``) takes the signal CNN's seed-0 folds from a
    ``benchmarks.compare_cnn`` run instead of training them again (:func:`reused_folds`).
    """
    from benchmarks.fuse_cnn_features import fuse
    from ecgclassify.datasets import ensure_reference_images, load_image_folder
    from ecgclassify.evaluation import _aligned_proba, evaluate_predictions
    from ecgclassify.feature_predictor import FeaturePredictor
    from ecgclassify.signal_cnn import SignalCNNPredictor
    from ecgclassify.splits import grouped_stratified_kfold

    ds = load_image_folder(ensure_reference_images(data))
    paths, y = list(ds.paths), np.asarray(ds.labels)
    res = _load()
    done = {(r["seed"], r["fold"]) for r in res["runs"]}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signals = SignalCNNPredictor(verbose=True).preprocess(paths)
        FeaturePredictor(verbose=True).features(paths)  # fills the in-process memo
    print(f"digitized/loaded {len(paths)} files in {time.perf_counter() - t0:.0f} s", flush=True)
    labels = np.unique(y)
    reused = reused_folds(reuse)
    for seed in seeds:
        folds = list(grouped_stratified_kfold(y, ds.content_hashes, N_SPLITS, seed))
        for k, (tr, te) in enumerate(folds):
            if (seed, k) in done:
                continue
            prev = reused.get(k) if seed == 0 else None
            if prev is not None and sorted(prev["test_index"]) == sorted(te.tolist()):
                order = {int(i): j for j, i in enumerate(prev["test_index"])}
                p_sig = np.asarray(prev["proba"])[[order[int(i)] for i in te]]
                t_sig, epochs, source = prev["train_time_s"], prev["epochs_run"], reuse
            else:
                t1 = time.perf_counter()
                sig = SignalCNNPredictor(seed=k).fit_prepared(signals[tr], y[tr])
                p_sig = sig.predict_proba_prepared(signals[te])
                t_sig = time.perf_counter() - t1
                epochs, source = len(sig.history_["loss"]), "trained here"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                feat = FeaturePredictor(model="ensemble", verbose=False).fit(
                    [paths[i] for i in tr], y[tr])
                p_feat = _aligned_proba(feat, [paths[i] for i in te], labels)
            scores = {}
            for name, p in zip(MODELS, (p_sig, p_feat, fuse(p_sig, p_feat)), strict=True):
                rep = evaluate_predictions(y[te], labels[p.argmax(1)], p, model=name,
                                           labels=labels, class_names=ds.class_names)
                scores[name] = {"macro_f1": rep.macro_f1, "accuracy": rep.accuracy,
                                "confusion": np.asarray(rep.confusion).tolist()}
            res["runs"].append({
                "seed": seed, "fold": k, "n_test_files": len(te), "signal_train_s": t_sig,
                "signal_epochs": epochs, "signal_source": source, "scores": scores,
                "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
            _save(res)
            print(f"seed {seed} fold {k + 1}: " + ", ".join(
                f"{n} {s['macro_f1']:.3f}" for n, s in scores.items())
                + f" ({t_sig:.0f} s)", flush=True)
    return res


def _ms(v: np.ndarray) -> str:
    return f"{v.mean():.3f} ± {v.std(ddof=1) if v.size > 1 else 0.0:.3f}"


def report(res: dict[str, Any]) -> str:
    """Markdown: per model, macro-F1 and accuracy per fold seed and over all folds."""
    runs = res["runs"]
    if not runs:
        raise ValueError("no fold records: run the study first")
    seeds = sorted({r["seed"] for r in runs})
    lines = ["| model | " + " | ".join(f"macro-F1, fold seed {s}" for s in seeds)
             + " | macro-F1, all folds | accuracy, all folds |",
             "|---" * (len(seeds) + 3) + "|"]
    for name in MODELS:
        cells = []
        for s in seeds:
            v = np.array([r["scores"][name]["macro_f1"] for r in runs if r["seed"] == s])
            cells.append(f"{_ms(v)} ({v.size} folds)")
        f1 = np.array([r["scores"][name]["macro_f1"] for r in runs])
        acc = np.array([r["scores"][name]["accuracy"] for r in runs])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_ms(f1)} | {_ms(acc)} |")
    diff = np.array([r["scores"]["signal-cnn"]["macro_f1"]
                     - r["scores"]["features-ensemble"]["macro_f1"] for r in runs])
    fus = np.array([r["scores"]["signal-cnn + features-ensemble"]["macro_f1"]
                    - r["scores"]["features-ensemble"]["macro_f1"] for r in runs])
    t = np.array([r["signal_train_s"] for r in runs])
    m = res.get("machine", {})
    desc = m.get("description", "") if isinstance(m, dict) else str(m)
    return ("\n".join(lines) + "\n\n"
            + f"Paired over the {diff.size} folds (same test files): signal-cnn minus features "
            f"{diff.mean():+.3f} (SD {diff.std(ddof=1) if diff.size > 1 else 0:.3f}); fusion "
            f"minus features {fus.mean():+.3f} (SD {fus.std(ddof=1) if fus.size > 1 else 0:.3f}). "
            f"Signal-CNN training: median {np.median(t):.0f} s, p95 "
            f"{np.percentile(t, 95):.0f} s a fold ({desc}). "
            f"Command: `python -m benchmarks.signal_cnn_study`.\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--report", action="store_true", help="only render the table")
    ap.add_argument("--reuse", default=f"{ROOT / 'benchmarks' / 'results' / 'cnn_compare.json'}"
                    ":signal_resnet1d", help="FILE:MODEL of compare_cnn whose seed-0 signal-CNN "
                    "folds are reused ('' to train them here)")
    args = ap.parse_args(argv)
    res = _load() if args.report else run(args.seeds, Path(args.data), args.reuse)
    if not res["runs"]:
        raise SystemExit("no results yet: run without --report")
    table = report(res)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
