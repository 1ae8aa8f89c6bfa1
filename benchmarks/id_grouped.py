"""The best CNN and the best feature model under the second grouping: by printed sheet ID.

The main comparison groups the reference sheets by content (SHA-256: all byte-identical
copies of a sheet on one side of every split). The printed "ID" in the sheet header recurs
across distinct sheets, and even across classes (274 IDs on the 418 distinct sheets of the
copy here), so it is no patient key; but if it marks one patient or one session, sheets
sharing it may be more alike than strangers, and a model could profit from seeing a
sibling in training. This script scores the 1-D CNN on the digitized leads (``signal-cnn``)
and the feature ensemble (``features-ensemble``) with every printed ID on one side of each
split, on fold seeds 0, 1 and 2, and sets them beside the same two models under content
grouping (``benchmarks.signal_cnn_study``, the same fold seeds).

Each fold seed is one run of the command line's comparison, unchanged::

    ecgclassify compare data/ecg-images --models signal-cnn,features-ensemble \\
        --groups printed_id --manifest ../shared/data/ecg-images-cardiac-patients/manifest.csv \\
        --seed S --report benchmarks/results/id_grouped/seedS --quiet

About 14 minutes a fold seed on the 2-core CPU with the digitization cache warm (the
network trains five times; the feature model takes seconds). Resumable: a fold seed whose
``comparison.json`` exists is not run again::

    nice -n 10 .venv/bin/python -m benchmarks.id_grouped [--seeds 0 1 2] [--report]

Writes ``benchmarks/results/id_grouped/seedS/`` (the comparison's JSON, Markdown and
confusion matrices) and ``docs/results/id_grouped.md``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "ecg-images"
MANIFEST = ROOT.parent / "shared" / "data" / "ecg-images-cardiac-patients" / "manifest.csv"
OUT = ROOT / "benchmarks" / "results" / "id_grouped"
CONTENT = ROOT / "benchmarks" / "results" / "signal_cnn_study.json"
DOC = ROOT / "docs" / "results" / "id_grouped.md"
MODELS = ("signal-cnn", "features-ensemble")
SEEDS = (0, 1, 2)


def compare_argv(seed: int, data: Path = DATA, manifest: Path = MANIFEST,
                 out: Path = OUT) -> list[str]:
    """Arguments of ``ecgclassify`` for the ID-grouped comparison of one fold seed."""
    return ["compare", str(data), "--models", ",".join(MODELS), "--groups", "printed_id",
            "--manifest", str(manifest), "--seed", str(seed),
            "--report", str(out / f"seed{seed}"), "--quiet"]


def run(seeds: Sequence[int], data: Path = DATA, manifest: Path = MANIFEST,
        out: Path = OUT) -> None:
    """Run the comparison of every fold seed whose results are not there yet."""
    from ecgclassify.cli import main as cli

    if not manifest.is_file():
        raise SystemExit(f"manifest not found at {manifest} (needed for the printed IDs)")
    for seed in seeds:
        if (out / f"seed{seed}" / "comparison.json").is_file():
            continue
        print(f"fold seed {seed}: ecgclassify {' '.join(compare_argv(seed, data, manifest, out))}",
              flush=True)
        status = cli(compare_argv(seed, data, manifest, out))
        if status != 0:
            raise SystemExit(f"ecgclassify compare failed for fold seed {seed} (exit {status})")


def load(out: Path = OUT) -> dict[int, dict[str, Any]]:
    """The comparisons found under ``out``, by fold seed."""
    found = {}
    for path in sorted(out.glob("seed*/comparison.json")):
        found[int(path.parent.name.removeprefix("seed"))] = json.loads(path.read_text())
    return found


def fold_f1(comparisons: dict[int, dict[str, Any]], model: str) -> dict[tuple[int, int], float]:
    """Macro-F1 of every (fold seed, fold) of one model."""
    return {(seed, k): float(fold["macro_f1"])
            for seed, comp in comparisons.items()
            for k, fold in enumerate(comp["folds"][model])}


def content_f1(study: dict[str, Any], model: str, seeds: Sequence[int]
               ) -> dict[tuple[int, int], float]:
    """The same model's macro-F1 under content grouping (``signal_cnn_study`` records)."""
    return {(int(r["seed"]), int(r["fold"])): float(r["scores"][model]["macro_f1"])
            for r in study["runs"] if int(r["seed"]) in seeds}


def _ms(v: np.ndarray) -> str:
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if v.size > 1 else f"{v.mean():.3f}"


def report(comparisons: dict[int, dict[str, Any]], study: dict[str, Any] | None = None) -> str:
    """Markdown: both models per fold seed and over all folds, ID-grouped and content-grouped,
    the paired difference of the two models on the same folds, and the pooled confusion
    matrices of the ID-grouped folds."""
    if not comparisons:
        raise ValueError("no comparison found: run the benchmark first")
    seeds = sorted(comparisons)
    lines = ["| model | grouping | " + " | ".join(f"fold seed {s}" for s in seeds)
             + " | all folds, mean ± SD |", "|---" * (len(seeds) + 3) + "|"]
    by_id = {m: fold_f1(comparisons, m) for m in MODELS}
    by_content = ({m: content_f1(study, m, seeds) for m in MODELS} if study else {})
    for model in MODELS:
        for grouping, scores in (("printed ID", by_id[model]),
                                 ("content (SHA-256)", by_content.get(model, {}))):
            if not scores:
                continue
            cells = []
            for s in seeds:
                v = np.array([f for (seed, _), f in sorted(scores.items()) if seed == s])
                cells.append(f"{v.mean():.3f}" if v.size else "-")
            allf = np.array(list(scores.values()))
            lines.append(f"| {model} | {grouping} | " + " | ".join(cells) + f" | {_ms(allf)} "
                         f"({allf.size} folds) |")
    keys = sorted(by_id[MODELS[0]])
    diff = np.array([by_id[MODELS[0]][k] - by_id[MODELS[1]][k] for k in keys])
    text = ["", f"Paired over the {diff.size} ID-grouped folds (same test files): {MODELS[0]} "
            f"minus {MODELS[1]} {diff.mean():+.3f} (SD {diff.std(ddof=1) if diff.size > 1 else 0:.3f}), "
            f"ahead on {int((diff > 0).sum())} and behind on {int((diff < 0).sum())}."]
    if by_content:
        ck = sorted(set(by_content[MODELS[0]]) & set(by_content[MODELS[1]]))
        cd = np.array([by_content[MODELS[0]][k] - by_content[MODELS[1]][k] for k in ck])
        if cd.size:
            text.append(f"Under content grouping, on its own {cd.size} folds: {cd.mean():+.3f} "
                        f"(SD {cd.std(ddof=1) if cd.size > 1 else 0:.3f}), ahead on "
                        f"{int((cd > 0).sum())} and behind on {int((cd < 0).sum())}.")
    names = comparisons[seeds[0]]["class_names"]
    for model in MODELS:
        conf = sum(np.array(c["pooled"][model]["confusion"]) for c in comparisons.values())
        text += ["", f"Confusion matrix of `{model}`, ID-grouped, summed over the "
                 f"{len(seeds)} fold seeds (each file {len(seeds)} times; rows true, columns "
                 "predicted):", "",
                 "| true \\ predicted | " + " | ".join(names) + " |",
                 "|---" * (len(names) + 1) + "|"]
        text += [f"| {names[i]} | " + " | ".join(str(int(v)) for v in row) + " |"
                 for i, row in enumerate(conf)]
    fit = np.array([t for c in comparisons.values() for t in c["fit_time_s"][MODELS[0]]])
    text += ["", f"{MODELS[0]} training: median {np.median(fit):.0f} s, p95 "
             f"{np.percentile(fit, 95):.0f} s a fold (2-core CPU, no GPU). Command: "
             "`python -m benchmarks.id_grouped` (`ecgclassify compare ... --groups printed_id "
             "--seed S` for each fold seed).", ""]
    return "\n".join(lines + text)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--manifest", default=str(MANIFEST))
    ap.add_argument("--report", action="store_true", help="only render the table")
    args = ap.parse_args(argv)
    if not args.report:
        run(args.seeds, Path(args.data), Path(args.manifest))
    comparisons = {s: c for s, c in load().items() if s in args.seeds}
    study = json.loads(CONTENT.read_text()) if CONTENT.is_file() else None
    table = report(comparisons, study)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
