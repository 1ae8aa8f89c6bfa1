"""Variants of the 1-D CNN on the seed-0 grouped folds: seed ensembles, test-time shifts, ablations.

Each variant trains :class:`~ecgclassify.signal_cnn.SignalCNNPredictor` (its defaults, with
the pooling spelled out, unless the variant says otherwise) on the training files of each
of the 5 grouped folds of ``benchmarks.compare_cnn`` (fold seed 0; network seed = fold index + the variant's seed
offset) and keeps the test files' probabilities, plain and averaged over circular time
shifts of -0.2, -0.1, 0, 0.1 and 0.2 s (test-time augmentation). The report scores each
variant, and the seed ensembles that ``SignalCNNPredictor(n_members=2 | 3)`` trains (its
member ``m`` is seeded ``seed + 100 m``, and it averages the members' probabilities,
which is what the report does with the ``seed+100`` and ``seed+200`` variants).

Variants:

- ``seed+0``: the defaults (average pooling); the same fits as the ``signal_resnet1d``
  rows of ``benchmarks.compare_cnn`` (training is deterministic).
- ``seed+100``, ``seed+200``: the same with other network seeds.
- ``compact``: each lead's own 2.5 s window of the 3x4 sheet side by side, plus the rhythm
  lead cut into four 2.5 s channels (input 250 x 16 instead of 1000 x 12): no time
  position is empty, but leads of different columns no longer line up in time.
- ``lead-dropout``: the default augmentation, then each lead scaled by U(0.9, 1.1) and
  zeroed with probability 0.1 (as if the digitizer had lost it).
- ``width-16``: half the filters (0.14 M weights instead of 0.55 M).
- ``epochs-30``: half the epochs (the cosine decay then ends at epoch 30).
- ``avg+max-pool``: ``SignalCNNPredictor(pooling="avg+max")``, global average and max
  pooling side by side before the classifier, so that one odd beat in ten is not averaged
  away. Tried after the variants above, on the same folds, so ``--fold-seeds 1 2`` checks it
  on folds it was not picked on.
- ``stretch-0.1``: ``SignalCNNPredictor(stretch=0.1)``, a random time stretch of x U(0.9, 1.1)
  on top of the usual augmentation. It won the quick screen of ``benchmarks.signal_cnn_screen``
  (15 folds at width 16 and 30 epochs), and is run here at the defaults on fold seeds 0-2.
- ``rhythm-channel``: the rhythm strip in a 13th channel of its own, its lead cut back to
  its 2.5 s column (``benchmarks.signal_cnn_screen.rhythm_channel``); second in that screen,
  run here at the defaults on fold seeds 0-2.

Every sheet is digitized once through the usual cache. About 2.5 min a fold for the
default network on the 2-core CPU (``compact``: ~1 min); resumable, one record per
(variant, fold)::

    nice -n 10 .venv/bin/python -m benchmarks.signal_cnn_variants [--variants seed+0 ...] [--report]

Writes ``benchmarks/results/signal_cnn_variants.json`` and
``docs/results/signal_cnn_variants.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import datetime as dt
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.runner import load_fold_records, save_fold_records

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "ecg-images"
RESULTS = ROOT / "benchmarks" / "results" / "signal_cnn_variants.json"
DOC = ROOT / "docs" / "results" / "signal_cnn_variants.md"
N_SPLITS = 5
TTA_SHIFTS_S = (-0.2, -0.1, 0.0, 0.1, 0.2)


def compact_layout(x: np.ndarray) -> np.ndarray:
    """(n, 4 q, 12) 3x4-sheet inputs -> (n, q, 16): each lead's column, then the rhythm lead.

    Leads I-III are read from the first quarter, aVR-aVF the second, V1-V3 the third and
    V4-V6 the last; the rhythm lead is the one with the most non-zero samples, cut into
    its four quarters.
    """
    q = x.shape[1] // 4
    cols = (0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3)
    parts = [x[:, c * q:(c + 1) * q, j:j + 1] for j, c in enumerate(cols)]
    rhythm = x[np.arange(len(x)), :, (x != 0).sum(axis=1).argmax(axis=1)]
    parts += [rhythm[:, c * q:(c + 1) * q, None] for c in range(4)]
    return np.concatenate(parts, axis=2)


def lead_dropout(augment: Callable[..., np.ndarray], amp: float = 0.1, drop: float = 0.1
                 ) -> Callable[..., np.ndarray]:
    """``augment`` followed by a per-lead gain of U(1 - amp, 1 + amp) and per-lead dropout."""
    def wrapped(x: np.ndarray, rng: np.random.Generator, fs: float) -> np.ndarray:
        out = augment(x, rng, fs)
        n, _, n_leads = out.shape
        out = out * rng.uniform(1 - amp, 1 + amp, (n, 1, n_leads)).astype(np.float32)
        keep = (rng.random((n, 1, n_leads)) >= drop).astype(np.float32)
        return (out * keep).astype(np.float32)
    return wrapped


#: name -> (network seed offset, SignalCNNPredictor parameters, input transform, augmentation)
_AVG = {"pooling": "avg"}  #: SignalCNNPredictor's default, spelled out (records stay true)
VARIANTS: dict[str, tuple[int, dict[str, Any], str | None, str | None]] = {
    "seed+0": (0, _AVG, None, None),
    "seed+100": (100, _AVG, None, None),
    "seed+200": (200, _AVG, None, None),
    "compact": (0, dict(_AVG, duration_s=2.5), "compact", None),
    "lead-dropout": (0, _AVG, None, "lead-dropout"),
    "width-16": (0, dict(_AVG, width=16), None, None),
    "epochs-30": (0, dict(_AVG, epochs=30), None, None),
    "avg+max-pool": (0, {"pooling": "avg+max"}, None, None),
    "stretch-0.1": (0, dict(_AVG, stretch=0.1), None, None),
    "rhythm-channel": (0, _AVG, "rhythm-channel", None),
}
#: ensembles reported: label -> member variants (as SignalCNNPredictor(n_members=...) builds)
ENSEMBLES = {"n_members=2 (seed+0, seed+100)": ("seed+0", "seed+100"),
             "n_members=3 (seed+0, +100, +200)": ("seed+0", "seed+100", "seed+200")}


def _load() -> dict[str, Any]:
    return load_fold_records(RESULTS)


def _save(res: dict[str, Any]) -> None:
    save_fold_records(RESULTS, res, indent=None)


def _fit(name: str, k: int, x: np.ndarray, y: np.ndarray) -> Any:
    import ecgclassify.signal_cnn as sc

    offset, params, _, aug = VARIANTS[name]
    original = sc.augment_signals
    if aug == "lead-dropout":
        sc.augment_signals = lead_dropout(original)
    try:
        return sc.SignalCNNPredictor(seed=k + offset, **params).fit_prepared(x, y)
    finally:
        sc.augment_signals = original


def run(variants: list[str], data: Path = DATA, fold_seeds: tuple[int, ...] = (0,)
        ) -> dict[str, Any]:
    """Train every (variant, fold seed, fold) not yet in the results file; returns the results.

    Fold seeds other than 0 confirm a variant on folds it was not chosen on
    (:func:`confirmation`).
    """
    from ecgclassify.datasets import ensure_reference_images, load_image_folder
    from ecgclassify.signal_cnn import SignalCNNPredictor
    from ecgclassify.splits import grouped_stratified_kfold

    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    ds = load_image_folder(ensure_reference_images(data))
    y = np.asarray(ds.labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signals = SignalCNNPredictor(verbose=True).preprocess(list(ds.paths))
    res = _load()
    done = {(r["variant"], r.get("fold_seed", 0), r["fold"]) for r in res["runs"]}
    for fold_seed in fold_seeds:
        folds = list(grouped_stratified_kfold(y, ds.content_hashes, N_SPLITS, fold_seed))
        for name in variants:
            _run_folds(name, fold_seed, folds, signals, y, res, done)
    return res


def _run_folds(name: str, fold_seed: int, folds: list[Any], signals: np.ndarray,
               y: np.ndarray, res: dict[str, Any], done: set[tuple[str, int, int]]) -> None:
    from benchmarks.signal_cnn_screen import rhythm_channel

    transforms = {"compact": compact_layout, "rhythm-channel": rhythm_channel, None: np.asarray}
    x_all = transforms[VARIANTS[name][2]](signals)
    for k, (tr, te) in enumerate(folds):
        if (name, fold_seed, k) in done:
            continue
        t0 = time.perf_counter()
        clf = _fit(name, k, x_all[tr], y[tr])
        train_s = time.perf_counter() - t0
        x_te = x_all[te]
        shifts = [round(s * float(clf.fs)) for s in TTA_SHIFTS_S]
        p_tta = np.mean([clf.predict_proba_prepared(np.roll(x_te, s, axis=1))
                         for s in shifts], axis=0)
        res["runs"].append({
            "variant": name, "fold_seed": fold_seed, "fold": k, "test_index": te.tolist(),
            "y_true": y[te].tolist(),
            "proba": np.round(clf.predict_proba_prepared(x_te), 4).tolist(),
            "proba_tta": np.round(p_tta, 4).tolist(), "train_time_s": train_s,
            "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
        _save(res)
        print(f"{name} fold seed {fold_seed} fold {k + 1}: {train_s:.0f} s", flush=True)


def _macro_f1(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, np.asarray(proba).argmax(axis=1), average="macro"))


def _cells(per_fold: list[float]) -> str:
    v = np.asarray(per_fold)
    sd = v.std(ddof=1) if v.size > 1 else 0.0
    return " ".join(f"{f:.3f}" for f in v) + f" | {v.mean():.3f} ± {sd:.3f}"


def report(res: dict[str, Any]) -> str:
    """Markdown: macro-F1 per fold and mean ± SD of each variant, with and without TTA,
    and of the seed ensembles (rows are left out where folds are missing)."""
    by = {(r["variant"], r["fold"]): r for r in res["runs"] if r.get("fold_seed", 0) == 0}
    if not by:
        raise ValueError("no fold records: run the study first")
    lines = ["| variant | macro-F1 per fold | mean ± SD | with test-time shifts | "
             "train time / fold (s, median) |", "|---|---|---|---|---|"]
    for name in VARIANTS:
        recs = [by[(name, k)] for k in range(N_SPLITS) if (name, k) in by]
        if len(recs) < N_SPLITS:
            continue
        plain = [_macro_f1(np.asarray(r["y_true"]), np.asarray(r["proba"])) for r in recs]
        tta = [_macro_f1(np.asarray(r["y_true"]), np.asarray(r["proba_tta"])) for r in recs]
        v = np.asarray(tta)
        lines.append(f"| {name} | {_cells(plain)} | {v.mean():.3f} ± "
                     f"{v.std(ddof=1):.3f} | "
                     f"{np.median([r['train_time_s'] for r in recs]):.0f} |")
    for label, members in ENSEMBLES.items():
        if not all((m, k) in by for m in members for k in range(N_SPLITS)):
            continue
        f1 = []
        for k in range(N_SPLITS):
            recs = [by[(m, k)] for m in members]
            if any(r["test_index"] != recs[0]["test_index"] for r in recs):
                raise ValueError(f"fold {k}: members were scored on different files")
            f1.append(_macro_f1(np.asarray(recs[0]["y_true"]),
                                np.mean([r["proba"] for r in recs], axis=0)))
        t = sum(np.median([by[(m, k)]["train_time_s"] for k in range(N_SPLITS)])
                for m in members)
        lines.append(f"| {label} | {_cells(f1)} | - | {t:.0f} |")
    m = res.get("machine", {})
    desc = m.get("description", "") if isinstance(m, dict) else str(m)
    return ("\n".join(lines) + "\n\nGrouped 5-fold CV, fold seed 0 (the CNN table's folds), "
            f"per file; {desc}. Command: `python -m benchmarks.signal_cnn_variants`.\n")


def confirmation(res: dict[str, Any], study: dict[str, Any] | None) -> str:
    """Markdown: variants run on other fold seeds, paired with the defaults on the same folds.

    The defaults' scores come from ``benchmarks.signal_cnn_study`` (``study``: its results,
    same folds and network seeds); fold seed 0 pairs with the ``seed+0`` variant. Empty when
    no variant ran on another fold seed.
    """
    other = sorted({(r["variant"], r.get("fold_seed", 0)) for r in res["runs"]
                    if r.get("fold_seed", 0) != 0})
    if not other:
        return ""
    base: dict[tuple[int, int], float] = {}
    for r in (study or {}).get("runs", []):
        base[(int(r["seed"]), int(r["fold"]))] = float(r["scores"]["signal-cnn"]["macro_f1"])
    for r in res["runs"]:
        if r["variant"] == "seed+0" and r.get("fold_seed", 0) == 0:
            base[(0, r["fold"])] = _macro_f1(np.asarray(r["y_true"]), np.asarray(r["proba"]))
    lines = ["| variant | fold seed | macro-F1 per fold | mean | defaults, same folds and seeds "
             "| paired difference (SD) |", "|---|---|---|---|---|---|"]
    diffs: dict[str, list[float]] = {}
    for name in sorted({v for v, _ in other}):
        for fs in sorted({0} | {f for v, f in other if v == name}):
            recs = sorted((r for r in res["runs"] if r["variant"] == name
                           and r.get("fold_seed", 0) == fs), key=lambda r: r["fold"])
            if len(recs) < N_SPLITS or any((fs, r["fold"]) not in base for r in recs):
                continue
            f1 = np.array([_macro_f1(np.asarray(r["y_true"]), np.asarray(r["proba"]))
                           for r in recs])
            ref = np.array([base[(fs, r["fold"])] for r in recs])
            diffs.setdefault(name, []).extend((f1 - ref).tolist())
            d = f1 - ref
            lines.append(f"| {name} | {fs} | " + " ".join(f"{v:.3f}" for v in f1)
                         + f" | {f1.mean():.3f} | {ref.mean():.3f} | {d.mean():+.3f} "
                         f"({d.std(ddof=1):.3f}) |")
    for name, d_all in diffs.items():
        d = np.asarray(d_all)
        lines.append(f"| {name} | all | {d.size} folds | | | {d.mean():+.3f} "
                     f"({d.std(ddof=1) if d.size > 1 else 0.0:.3f}); ahead on "
                     f"{int((d > 0).sum())}, behind on {int((d < 0).sum())} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--fold-seeds", type=int, nargs="+", default=[0],
                    help="fold assignments (0: the CNN table's; others confirm a variant on "
                    "folds it was not chosen on, paired with benchmarks.signal_cnn_study)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--report", action="store_true", help="only render the table")
    args = ap.parse_args(argv)
    res = _load() if args.report else run(args.variants, Path(args.data),
                                          tuple(args.fold_seeds))
    table = report(res)
    study = ROOT / "benchmarks" / "results" / "signal_cnn_study.json"
    confirm = confirmation(res, json.loads(study.read_text()) if study.is_file() else None)
    if confirm:
        table += ("\nOn other fold assignments, paired with the defaults on the same folds "
                  "and network seeds (`benchmarks.signal_cnn_study`):\n\n" + confirm)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
