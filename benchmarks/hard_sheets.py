"""Where the 1-D CNN's grouped errors are: the sheets that (nearly) every network gets wrong.

The variant and recipe studies (``benchmarks.signal_cnn_variants``,
``benchmarks.signal_cnn_screen``) keep every test file's probabilities for each network
they trained: over 100 networks of the 1-D CNN, each sheet scored while it was in a test fold
(never while trained on). This script counts, for every distinct sheet (its byte-identical
copies taken together), the share of those networks that classified it wrongly, lists the
sheets wrong in at least :data:`HARD` of them, and shows how the grouped macro-F1 *per file*
weighs them: a myocardial-infarction sheet has 8 copies on average (26 distinct sheets carry
the class's 207 files), so each one weighs 8 files in the score.

The pool holds the 1-D ResNet of :class:`~ecgclassify.signal_cnn.SignalCNNPredictor` and
its variants; the screen's ``perlead`` network (one encoder per lead, a different network and
0.1 worse) is left out (:data:`OTHER_NETWORKS`). A recipe stopped part-way through a fold
assignment counts only with the fold seeds it finished (:func:`complete_runs`), so every
sheet is scored equally often. Each class and each hard sheet also shows which lead its
rhythm strip is (lead II on some sheet formats, lead III on others): if the format went
with the class, a network could learn the format instead of the ECG. Each hard sheet shows
the digitizer's quality score of its weakest lead, and where that falls among all distinct
sheets: a low one would point at a digitization failure rather than at the classifier.

The feature model (``FeaturePredictor(model="ensemble")``) is cross-validated on the same
grouped folds of fold seeds 0-2 (:data:`FEATURE_FOLD_SEEDS`), so each hard sheet also shows
whether a model of another kind gets it right.

The last table scores the default network's seed-0 folds once more per distinct sheet (each
sheet once, however many copies it has), then, as a post-hoc what-if and not a result, as if
the hard sheets had been classified right. The hard sheets are picked
on the same predictions, so it bounds what fixing those sheets alone would be worth.

Trains no CNN; the feature model's 15 fits take a few minutes once the sheets are in the
digitization cache::

    python -m benchmarks.hard_sheets

Writes ``docs/results/hard_sheets.md`` and ``benchmarks/results/hard_sheets.json``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "ecg-images"
SOURCES = (ROOT / "benchmarks" / "results" / "signal_cnn_variants.json",
           ROOT / "benchmarks" / "results" / "signal_cnn_screen.json")
RESULTS = ROOT / "benchmarks" / "results" / "hard_sheets.json"
DOC = ROOT / "docs" / "results" / "hard_sheets.md"
#: screen recipes that are not the 1-D ResNet, left out of the pool
OTHER_NETWORKS = ("perlead",)
#: share of the networks that must get a sheet wrong for it to count as hard
HARD = 0.8
#: the default network on the seed-0 folds (``signal_cnn_variants``), rescored by the what-if
WHAT_IF_VARIANTS = ("seed+0", "seed+100", "seed+200")
#: fold assignments of the feature model's cross-validation
FEATURE_FOLD_SEEDS = (0, 1, 2)
N_SPLITS = 5


def sheet_votes(runs: Iterable[dict[str, Any]], n_files: int, n_classes: int) -> np.ndarray:
    """Count the predicted classes of every file over all runs: (n_files, n_classes) int.

    ``runs`` are fold records with ``test_index`` and ``proba`` (one row per test file).
    """
    votes = np.zeros((n_files, n_classes), int)
    for r in runs:
        pred = np.asarray(r["proba"]).argmax(axis=1)
        np.add.at(votes, (np.asarray(r["test_index"], int), pred), 1)
    return votes


def hard_sheets(votes: np.ndarray, y: np.ndarray, groups: Sequence[str],
                threshold: float = HARD) -> list[dict[str, Any]]:
    """Distinct sheets wrong in at least ``threshold`` of the networks that scored them.

    Copies of a sheet pool their votes. Returns one dict per hard sheet, the most often
    wrong first: ``index`` (its first file), ``label``, ``copies``, ``n_networks`` (that
    scored its first file), ``error_rate`` and ``predicted`` (the wrong class most often
    given).
    """
    groups = np.asarray(groups)
    out = []
    for g in dict.fromkeys(groups.tolist()):
        idx = np.flatnonzero(groups == g)
        v = votes[idx].sum(axis=0)
        n = int(v.sum())
        if n == 0:
            continue
        label = int(y[idx[0]])
        rate = 1.0 - v[label] / n
        if rate >= threshold:
            out.append({"index": int(idx[0]), "label": label, "copies": int(idx.size),
                        "n_networks": int(votes[idx[0]].sum()), "error_rate": float(rate),
                        "predicted": int(np.argmax(np.where(np.arange(v.size) == label,
                                                            -1, v)))})
    return sorted(out, key=lambda d: (-d["error_rate"], d["index"]))


def rescore(runs: Iterable[dict[str, Any]], y: np.ndarray, right: set[int],
            groups: Sequence[str] | None = None) -> list[float]:
    """Macro-F1 per fold record with the files in ``right`` set to their true class.

    With ``groups``, each distinct sheet counts once (its first test file) instead of once
    per copy.
    """
    from sklearn.metrics import f1_score

    scores = []
    for r in runs:
        te = np.asarray(r["test_index"], int)
        pred = np.asarray(r["proba"]).argmax(axis=1)
        fix = np.isin(te, list(right))
        pred[fix] = y[te[fix]]
        if groups is not None:
            first = np.sort(np.unique(np.asarray(groups)[te], return_index=True)[1])
            te, pred = te[first], pred[first]
        scores.append(float(f1_score(y[te], pred, average="macro")))
    return scores


def feature_runs(paths: Sequence[Any], y: np.ndarray, groups: Sequence[str],
                 fold_seeds: Sequence[int] = FEATURE_FOLD_SEEDS) -> list[dict[str, Any]]:
    """Fold records (``test_index``, ``proba``) of the feature ensemble on the grouped folds."""
    import warnings

    from ecgclassify.feature_predictor import FeaturePredictor
    from ecgclassify.splits import grouped_stratified_kfold

    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in fold_seeds:
            for tr, te in grouped_stratified_kfold(y, groups, N_SPLITS, seed):
                clf = FeaturePredictor(model="ensemble").fit([paths[i] for i in tr], y[tr])
                proba = np.zeros((len(te), int(y.max()) + 1))
                proba[:, clf.classes_] = clf.predict_proba([paths[i] for i in te])
                runs.append({"test_index": te.tolist(), "proba": proba.tolist()})
    return runs


def sheet_facts(records: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per digitized record: the lead of its rhythm strip ("" if none) and the quality score of
    its weakest lead (0 for a sheet that could not be digitized), from ``lead_info``."""
    strip, weakest = [], []
    for rec in records:
        info = rec.lead_info if rec is not None else {}
        strip.append(next((lead for lead, i in info.items() if i.get("rhythm")), ""))
        weakest.append(min((float(i.get("quality", 0.0)) for i in info.values()), default=0.0))
    return np.array(strip, dtype=object), np.array(weakest)


def complete_runs(runs: Iterable[dict[str, Any]], n_splits: int = N_SPLITS
                  ) -> list[dict[str, Any]]:
    """The records of every (source, variant, fold seed) that has all ``n_splits`` folds.

    A recipe stopped part-way through a fold assignment would score some sheets once more
    than others; leaving its unfinished fold seed out keeps every sheet scored equally often.
    """
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return r.get("source"), r.get("variant"), r.get("fold_seed", 0)

    runs = list(runs)
    folds: dict[tuple[Any, ...], set[int]] = {}
    for r in runs:
        folds.setdefault(key(r), set()).add(int(r["fold"]))
    return [r for r in runs if len(folds[key(r)]) == n_splits]


def _load_runs(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    runs, used = [], []
    for p in paths:
        if p.is_file():
            runs += [dict(r, source=p.name) for r in json.loads(p.read_text())["runs"]
                     if "test_index" in r and r.get("variant") not in OTHER_NETWORKS]
            used.append(p.name)
    if not runs:
        raise SystemExit(f"no fold records in {[str(p) for p in paths]}: run "
                         "benchmarks.signal_cnn_variants or benchmarks.signal_cnn_screen first")
    return runs, used


def study(data: Path = DATA, sources: Sequence[Path] = SOURCES) -> dict[str, Any]:
    """Votes, hard sheets and what-if scores; the dict written to :data:`RESULTS`."""
    from ecgclassify import CLASS_NAMES
    from ecgclassify.datasets import ensure_reference_images, load_image_folder
    from ecgclassify.feature_predictor import digitize_records

    ds = load_image_folder(ensure_reference_images(data))
    y = np.asarray(ds.labels)
    groups = list(ds.content_hashes)
    runs, used = _load_runs(sources)
    n_loaded = len(runs)
    runs = complete_runs(runs)
    votes = sheet_votes(runs, len(y), len(CLASS_NAMES))
    hard = hard_sheets(votes, y, groups)
    fvotes = sheet_votes(feature_runs(list(ds.paths), y, groups), len(y), len(CLASS_NAMES))
    for h in hard:
        h["features_right"] = int(fvotes[h["index"], h["label"]])
        h["features_scored"] = int(fvotes[h["index"]].sum())
    g = np.asarray(groups)
    hard_files = {int(i) for h in hard for i in np.flatnonzero(g == g[h["index"]])}
    hard_mi = {i for i in hard_files if y[i] == 0}
    first = np.unique(g, return_index=True)[1]  # one file per distinct sheet
    per_sheet = votes.sum(axis=1)[first]  # networks per sheet
    what_if = {}
    for name in WHAT_IF_VARIANTS:
        recs = [r for r in runs if r.get("variant") == name and r.get("fold_seed", 0) == 0
                and "proba_tta" in r]  # signal_cnn_variants' records
        if len(recs) == 5:
            what_if[name] = {"as scored": rescore(recs, y, set()),
                             "as scored, per distinct sheet": rescore(recs, y, set(), groups),
                             "hard MI sheets right": rescore(recs, y, hard_mi),
                             "all hard sheets right": rescore(recs, y, hard_files)}
    strip, weakest = sheet_facts(digitize_records(list(ds.paths)))
    classes = [{"class": CLASS_NAMES[c], "files": int((y == c).sum()),
                "distinct": len(set(g[y == c].tolist())),
                "strip_lead_ii": int(((y[first] == c) & (strip[first] == "II")).sum()),
                "hard": sum(h["label"] == c for h in hard)} for c in range(len(CLASS_NAMES))]
    for h in hard:
        h["strip_lead"] = str(strip[h["index"]])
        h["weakest_quality"] = float(weakest[h["index"]])
        h["weakest_quality_pct"] = float((weakest[first] < weakest[h["index"]]).mean())
    return {"sources": used, "n_runs": len(runs), "n_left_out": n_loaded - len(runs),
            "threshold": HARD,
            "votes_per_sheet_median": float(np.median(per_sheet)),
            "votes_per_sheet_min": int(per_sheet.min()), "classes": classes,
            "hard": [dict(h, file=Path(ds.paths[h["index"]]).name,
                          label_name=CLASS_NAMES[h["label"]],
                          predicted_name=CLASS_NAMES[h["predicted"]]) for h in hard],
            "what_if": what_if}


def report(res: dict[str, Any]) -> str:
    """Markdown of :func:`study`'s results."""
    pct = f"{res['threshold']:.0%}"
    left = res.get("n_left_out", 0)
    lines = [f"{res['n_runs']} fold records ({', '.join(res['sources'])}"
             + (f"; {left} of fold seeds a recipe did not finish left out" if left else "")
             + f"); each distinct sheet was scored by {res['votes_per_sheet_median']:.0f} "
             f"networks (median; at least {res['votes_per_sheet_min']}).", "",
             f"| class | files | distinct sheets | files per sheet | rhythm strip lead II (of "
             f"the distinct sheets; else lead III) | sheets wrong in >= {pct} of networks |",
             "|---|---|---|---|---|---|"]
    for c in res["classes"]:
        ii = (f"{c['strip_lead_ii']} ({c['strip_lead_ii'] / max(c['distinct'], 1):.0%})"
              if "strip_lead_ii" in c else "-")
        lines.append(f"| {c['class']} | {c['files']} | {c['distinct']} | "
                     f"{c['files'] / max(c['distinct'], 1):.1f} | {ii} | {c['hard']} |")
    lines += ["", "| sheet | class | copies | rhythm strip | weakest lead's quality "
              "(percentile of all sheets) | 1-D CNN wrong in | most often called | feature "
              "model right in |", "|---|---|---|---|---|---|---|---|"]
    for h in res["hard"]:
        q = (f"{h['weakest_quality']:.3f} ({h['weakest_quality_pct']:.0%})"
             if "weakest_quality" in h else "-")
        lines.append(f"| {h['file']} | {h['label_name']} | {h['copies']} | "
                     f"{h.get('strip_lead', '-')} | {q} | "
                     f"{h['error_rate']:.0%} of {h['n_networks']} | {h['predicted_name']} | "
                     f"{h['features_right']} of {h['features_scored']} |")
    if res["what_if"]:
        cols = list(next(iter(res["what_if"].values())))
        lines += ["", "Grouped macro-F1 of the default network on the seed-0 folds, mean of 5 "
                  "folds: per file, per distinct sheet, and the post-hoc what-if (not a "
                  "result; per file) with the hard sheets counted right.", "",
                  "| network seeds | " + " | ".join(cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for name, d in res["what_if"].items():
            lines.append(f"| {name} | " + " | ".join(f"{np.mean(d[c]):.3f}" for c in cols)
                         + " |")
    return "\n".join(lines) + "\n\nCommand: `python -m benchmarks.hard_sheets`.\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args(argv)
    res = study(Path(args.data))
    RESULTS.write_text(json.dumps(res, indent=1))
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(report(res))
    print(report(res))


if __name__ == "__main__":
    main()
