"""Grouped 5-fold CV of the CNN predictors on the reference sheets (and the paper's leaky protocol).

Writes one JSON record per (model, fold) as soon as the fold ends, so a
partial run still gives a table, then renders ``docs/results/cnn_models.md``.

Usage (2-core CPU, no GPU; run in the background)::

    nice -n 10 .venv/bin/python -m benchmarks.compare_cnn --plan        # 1-epoch timing
    nice -n 10 .venv/bin/python -m benchmarks.compare_cnn               # the study
    .venv/bin/python -m benchmarks.compare_cnn --report                 # table only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ecgclassify.cnn import CNNPredictor
from ecgclassify.datasets import load_image_folder
from ecgclassify.evaluation import evaluate_predictions
from ecgclassify.signal_cnn import SignalCNNPredictor
from ecgclassify.splits import grouped_stratified_kfold

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "ecg-images"
RESULTS = ROOT / "benchmarks" / "results" / "cnn_compare.json"
DOC = ROOT / "docs" / "results" / "cnn_models.md"

#: name -> (protocol, predictor parameters)
_SHEET = dict(backbone="mobilenet_v2", alpha=0.35, input="sheet", image_size=(160, 272),
              epochs=20, patience=8, learning_rate=2e-3, augmentation=None)
_LEADS = dict(input="leads", image_size=(64, 112), batch_size=64, learning_rate=2e-3,
              augmentation=None)
#: SignalCNNPredictor's first defaults, spelled out ("predictor" picks the class in
#: run_fold); average pooling, as its records were made
_SIGNAL = dict(predictor="signal-cnn", fs=100.0, duration_s=10.0, width=32, pooling="avg",
               epochs=60, batch_size=32, learning_rate=1e-3, augment=True)
#: name -> (protocol, predictor parameters). No augmentation: with ~20 epochs on this CPU,
#: even mild augmentation kept the from-scratch networks from fitting (fold 1: macro-F1
#: 0.28 with, 0.48 without; see docs/results/cnn_models.md).
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "mobilenet_v2": ("grouped", _SHEET),
    "mobilenet_v2-leaky": ("leaky", _SHEET),
    "mobilenet_v2-leads": ("grouped", dict(_LEADS, backbone="mobilenet_v2", alpha=0.35,
                                           epochs=8, patience=4)),
    "efficientnet_v2_b0": ("grouped", dict(_SHEET, backbone="efficientnet_v2_b0", alpha=1.0,
                                           epochs=8, patience=4)),
    "efficientnet_v2_b0-leads": ("grouped", dict(_LEADS, backbone="efficientnet_v2_b0",
                                                 epochs=6, patience=3)),
    "mobilenet_v2-paper": ("leaky", dict(_SHEET, paper_protocol=True)),
    # the GPU study's best recipe (EfficientNetV2-B0, 320x544, augmented every epoch)
    # through CNNPredictor itself: RGB, TensorFlow, tf.data augmentation; ~40 min a fold here
    "efficientnet_v2_b0-hi-augment": ("grouped", dict(
        backbone="efficientnet_v2_b0", alpha=1.0, image_size=(320, 544), batch_size=32,
        epochs=60, patience=25, learning_rate=1e-3)),
    # the GPU study's long recipe (grey 320x544, no early stop before epoch 60, patience
    # 40), capped at 90 epochs to fit a CPU session: ~1 h a fold here
    "efficientnet_v2_b0-hi-augment-grey": ("grouped", dict(
        backbone="efficientnet_v2_b0", alpha=1.0, image_size=(320, 544), batch_size=32,
        epochs=90, patience=40, min_epochs=60, learning_rate=1e-3, color="grey")),
    # a 1-D ResNet on the digitizer's 12 leads (ecgclassify.signal_cnn): the sheets are
    # digitized once (cached, ~1 s a sheet), then ~2.5 min a fold here
    "signal_resnet1d": ("grouped", _SIGNAL),
    "signal_resnet1d-leaky": ("leaky", _SIGNAL),
}
#: Run order under the CPU budget: the main model and its leaky twin first, one fold of
#: every other model early, then the remaining folds round-robin.
SCHEDULE: list[tuple[str, int]] = [
    ("mobilenet_v2", 0), ("mobilenet_v2-leaky", 0), ("efficientnet_v2_b0", 0),
    ("mobilenet_v2", 1), ("mobilenet_v2-leaky", 1), ("mobilenet_v2-leads", 0),
    ("mobilenet_v2", 2), ("mobilenet_v2-paper", 0), ("mobilenet_v2", 3), ("mobilenet_v2", 4),
    ("mobilenet_v2-leaky", 2), ("efficientnet_v2_b0-leads", 0), ("efficientnet_v2_b0", 1),
] + [(m, k) for k in range(5) for m in CONFIGS]


def _load_results() -> dict[str, Any]:
    if RESULTS.is_file():
        return json.loads(RESULTS.read_text())
    return {"machine": f"{platform.machine()} 2-core CPU, no GPU", "runs": []}


def _save_results(res: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, RESULTS)


def run_fold(name: str, k: int, tr: np.ndarray, te: np.ndarray, ds: Any,
             n_splits: int, seed: int) -> dict[str, Any]:
    """Train one config on one fold, evaluate per file, return a JSON record."""
    protocol, params = CONFIGS[name]
    paths = np.asarray(ds.paths)
    groups = np.asarray(ds.content_hashes)
    kwargs = {kk: v for kk, v in params.items() if kk != "predictor"}
    clf: Any = (SignalCNNPredictor(seed=seed + k, verbose=False, **kwargs)
                if params.get("predictor") == "signal-cnn" else CNNPredictor(seed=seed + k, **kwargs))
    t0 = time.perf_counter()
    clf.fit(list(paths[tr]), ds.labels[tr], groups=groups[tr])
    train_s = time.perf_counter() - t0
    # predict each distinct content once, then map back to the files
    uniq, first, inverse = np.unique(groups[te], return_index=True, return_inverse=True)
    t0 = time.perf_counter()
    prepared = clf.preprocess(list(paths[te][first]))
    prep_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    proba_u = clf.predict_proba_prepared(prepared)
    infer_s = time.perf_counter() - t0
    proba = proba_u[inverse]
    pred = clf.classes_[np.argmax(proba, axis=1)]
    rep = evaluate_predictions(ds.labels[te], pred, proba, model=name,
                               protocol=f"{protocol}, fold {k + 1}/{n_splits}",
                               class_names=ds.class_names, labels=clf.classes_)
    leaked = len(set(groups[te]) & set(groups[tr]))
    return {"model": name, "protocol": protocol, "fold": k, "n_splits": n_splits,
            "params": {kk: (list(v) if isinstance(v, tuple) else v) for kk, v in params.items()},
            "n_train_files": len(tr), "n_test_files": len(te),
            "n_test_contents_in_train": leaked,
            "epochs_run": len(clf.history_.get("loss", [])),
            "train_time_s": train_s, "infer_images_per_s": len(uniq) / infer_s,
            "preprocess_s_per_sheet": prep_s / len(uniq),
            "y_true": ds.labels[te].tolist(), "y_pred": pred.tolist(),
            "proba": np.round(proba, 5).tolist(),
            "test_index": te.tolist(),
            "report": rep.to_dict(), "history": clf.history_,
            "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def study(models: list[str], n_splits: int, seed: int, first_folds: int | None = None,
          only_folds: list[int] | None = None) -> None:
    """Run :data:`SCHEDULE`, saving each fold as it ends (partial runs stay useful).

    ``first_folds`` limits every model to its first folds (of ``n_splits``);
    ``only_folds`` (1-based) to those folds.
    """
    ds = load_image_folder(DATA)
    res = _load_results()
    done = {(r["model"], r["fold"]) for r in res["runs"]}
    splits = {p: list(grouped_stratified_kfold(ds.labels, ds.content_hashes, n_splits, seed,
                                               protocol=p)) for p in ("grouped", "leaky")}
    for name, k in SCHEDULE:
        if (name not in models or k >= min(n_splits, first_folds or n_splits)
                or (only_folds and k + 1 not in only_folds) or (name, k) in done):
            continue
        done.add((name, k))
        tr, te = splits[CONFIGS[name][0]][k]
        rec = run_fold(name, k, tr, te, ds, n_splits, seed)
        res["runs"].append(rec)
        _save_results(res)
        print(f"{rec['finished_utc']} {name} fold {k + 1}: macro-F1 "
              f"{rec['report']['macro_f1']:.3f} acc {rec['report']['accuracy']:.3f} "
              f"({rec['epochs_run']} epochs, {rec['train_time_s']:.0f} s)", flush=True)
        RESULTS.with_suffix(".md").write_text(write_report())


def plan(models: list[str]) -> None:
    """Time the 2nd epoch of each config on 48 sheets and print the projected study cost."""
    ds = load_image_folder(DATA)
    idx = np.random.default_rng(0).choice(len(ds), 48, replace=False)
    n_train = int(ds.n_groups * 0.8 * 0.85)
    total = 0.0
    for name in models:
        protocol, params = CONFIGS[name]
        if params.get("predictor"):
            continue  # not an image network (its cost is the digitization, ~1 s a sheet)
        clf = CNNPredictor(**{**params, "epochs": 2, "validation_fraction": 0.0})
        paths = [ds.paths[i] for i in idx]
        clf.fit(paths, ds.labels[idx])
        per_sheet = clf.history_["epoch_time_s"][-1] / 48  # 2nd epoch: no tracing
        n = n_train if protocol == "grouped" else int(ds.n_groups * 0.85)
        fold_s = per_sheet * n * params["epochs"] * 1.1
        total += fold_s * 5
        print(f"{name:28s} {per_sheet * 1000:7.1f} ms/sheet/epoch -> <= {fold_s / 60:5.1f} min "
              f"per fold ({params['epochs']} epochs max), 5 folds <= {fold_s * 5 / 60:5.1f} min",
              flush=True)
    print(f"total <= {total / 60:.0f} min (early stopping usually ends sooner)")


def _pooled(runs: list[dict[str, Any]], class_names: list[str]) -> Any:
    y = np.concatenate([r["y_true"] for r in runs])
    p = np.concatenate([r["y_pred"] for r in runs])
    return evaluate_predictions(y, p, model=runs[0]["model"], protocol=runs[0]["protocol"],
                                class_names=class_names, labels=list(range(len(class_names))))


def best_feature_model(features: dict[str, Any]
                       ) -> tuple[str, dict[str, Any], list[dict[str, Any]], float]:
    """The best grouped feature model of a ``feature_models.json`` record.

    "Best" is the highest grouped macro-F1 averaged over every fold-assignment seed in
    the file (seed 0 alone when there are no others): on seed 0 alone, models within
    noise of each other trade places from one digitizer version to the next. Returns
    its name, its seed-0 summary, its seed-0 fold records and its mean fit time (s).
    """
    results = features["results"]
    grouped = results["grouped"]
    views = [grouped] + [v for k, v in results.items() if k.startswith("grouped_seed")]
    best = max(grouped["summary"], key=lambda m: float(np.mean(
        [v["summary"][m]["macro_f1"]["mean"] for v in views])))
    return (best, grouped["summary"][best], grouped["folds"][best],
            float(np.mean(grouped["fit_time_s"][best])))


def feature_cells(features: dict[str, Any]) -> tuple[str, list[str], float, str]:
    """The best grouped feature model (:func:`best_feature_model`) as table cells: its name,
    mean ± SD of accuracy, macro precision, recall, F1 and error rate, its fit time (s),
    and "k of n" folds."""
    best, s, folds, fit = best_feature_model(features)

    def ms(key: str) -> str:
        if key in s:
            return f"{s[key]['mean']:.3f} ± {s[key]['sd']:.3f}"
        v = np.array([f[key] for f in folds], float)
        return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"

    cells = [ms(k) for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1",
                             "error_rate")]
    return best, cells, fit, f"{len(folds)} of {features['results']['grouped']['n_splits']}"


def feature_row(path: Path = ROOT / "docs" / "results" / "feature_models.json") -> str | None:
    """Table row of the best grouped feature model, on the seed-0 folds of the CNN tables."""
    if not path.is_file():
        return None
    best, cells, fit, n = feature_cells(json.loads(path.read_text()))
    return (f"| {best} (best feature model) | grouped | {n} | " + " | ".join(cells)
            + f" | {fit:.0f} (+ digitization, cached) | - | - |")


def write_report(feature_row: str | None = None,
                 runs: list[dict[str, Any]] | None = None) -> str:
    """Render the markdown table from the JSON results (partial runs say k of n folds).

    ``runs`` defaults to this study's records; :mod:`benchmarks.gpu_cnn_study`
    passes its own, in the same format.
    """
    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in (_load_results()["runs"] if runs is None else runs):
        by_model.setdefault(r["model"], []).append(r)
    lines = ["| model | protocol | folds | accuracy | macro precision | macro recall | macro-F1 "
             "| error rate | train time / fold (s) | epochs | inference (sheets/s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    cms = []
    for name, runs in by_model.items():
        reps = [r["report"] for r in runs]

        def ms(key: str, _reps: list[dict[str, Any]] = reps) -> str:
            v = np.array([x[key] for x in _reps], float)
            return f"{v.mean():.3f} ± {v.std(ddof=1) if v.size > 1 else 0:.3f}"

        n_splits = runs[0]["n_splits"]
        lines.append(
            f"| {name} | {runs[0]['protocol']} | {len(runs)} of {n_splits} | {ms('accuracy')} | "
            f"{ms('macro_precision')} | {ms('macro_recall')} | {ms('macro_f1')} | "
            f"{ms('error_rate')} | {np.mean([r['train_time_s'] for r in runs]):.0f} | "
            f"{np.mean([r['epochs_run'] for r in runs]):.1f} | "
            f"{np.median([r['infer_images_per_s'] for r in runs]):.0f} |")
        names = reps[0]["class_names"]
        pooled = _pooled(runs, names)
        cm = "\n".join(["| true \\ pred | " + " | ".join(names) + " |",
                        "|---" * (len(names) + 1) + "|"]
                       + [f"| {names[i]} | " + " | ".join(str(c) for c in row) + " |"
                          for i, row in enumerate(pooled.confusion)])
        cms.append(f"**{name}** ({runs[0]['protocol']}, {len(runs)} folds pooled; per file): "
                   f"accuracy {pooled.accuracy:.3f}, macro-F1 {pooled.macro_f1:.3f}\n\n{cm}\n")
    if feature_row:
        lines.append(feature_row)
    return "\n".join(lines) + "\n\n" + "\n".join(cms)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="*", default=list(CONFIGS))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plan", action="store_true")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--first-folds", type=int, default=None,
                    help="run only the first N folds of each model")
    ap.add_argument("--only-folds", type=int, nargs="+", default=None, metavar="K",
                    help="run only these folds (1-based) of each model")
    args = ap.parse_args(argv)
    if args.plan:
        plan(args.models)
    elif args.report:
        print(write_report(feature_row()))
    else:
        study(args.models, args.folds, args.seed, args.first_folds, args.only_folds)


if __name__ == "__main__":
    main()
