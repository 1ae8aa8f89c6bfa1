"""How far the printed header alone gets a classifier on the reference data set.

The reference sheets print a patient "ID" in their header. It is no patient key
(it recurs across sheets and classes), but byte-identical copies of a sheet share
it, so under a per-file (leaky) split it identifies the copy of a test sheet that
sits in the training set. This script measures the accuracy of classifiers that
see *only* the printed ID, under the grouped and the leaky protocol, and writes
``docs/results/header_shortcut.md`` + ``benchmarks/results/header_shortcut.json``.

Run: ``python -m benchmarks.header_shortcut`` (a few seconds; needs
``../shared/data/ecg-images-cardiac-patients/manifest.csv``).
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT.parent / "shared" / "data" / "ecg-images-cardiac-patients" / "manifest.csv"


def run(seeds: tuple[int, ...] = (0, 1, 2, 3, 4)) -> pd.DataFrame:
    """Return accuracy / macro-F1 of ID-only classifiers per protocol (mean, SD over seeds)."""
    m = pd.read_csv(MANIFEST)
    x = m[["printed_id"]].to_numpy(dtype=float)
    y = m["label"].to_numpy()
    groups = m["sha256"].factorize()[0]
    rows = []
    models = {"1-NN on ID": lambda: KNeighborsClassifier(1),
              "HGB on ID": lambda: HistGradientBoostingClassifier(random_state=0)}
    for protocol in ("grouped (by content)", "LEAKY (per file)"):
        for name, make in models.items():
            acc, f1 = [], []
            for seed in seeds:
                if protocol.startswith("grouped"):
                    cv = StratifiedGroupKFold(5, shuffle=True, random_state=seed)
                    pred = cross_val_predict(make(), x, y, cv=cv, groups=groups)
                else:
                    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
                    pred = cross_val_predict(make(), x, y, cv=cv)
                acc.append(accuracy_score(y, pred))
                f1.append(f1_score(y, pred, average="macro"))
            rows.append({"protocol": protocol, "model": name,
                         "accuracy_mean": np.mean(acc), "accuracy_sd": np.std(acc),
                         "macro_f1_mean": np.mean(f1), "macro_f1_sd": np.std(f1)})
    return pd.DataFrame(rows)


def main() -> int:
    if not MANIFEST.exists():
        print(f"manifest not found at {MANIFEST}", file=sys.stderr)
        return 1
    table = run()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Header shortcut: classifying by the printed ID alone",
        "",
        f"Measured {stamp} on {platform.machine()} ({platform.processor() or 'CPU'}), "
        "command `python -m benchmarks.header_shortcut`; 5-fold CV repeated with 5 seeds "
        "(mean ± SD), 793 files / 418 distinct sheets, chance level 25 %.",
        "",
        "| protocol | model | accuracy | macro-F1 |",
        "|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(f"| {r.protocol} | {r.model} | {r.accuracy_mean:.3f} ± {r.accuracy_sd:.3f} "
                     f"| {r.macro_f1_mean:.3f} ± {r.macro_f1_sd:.3f} |")
    out_md = ROOT / "docs" / "results" / "header_shortcut.md"
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text("\n".join(lines) + "\n")
    out_json = ROOT / "benchmarks" / "results" / "header_shortcut.json"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"date": stamp, "command": "python -m benchmarks.header_shortcut",
                                    "rows": table.to_dict(orient="records")}, indent=2))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
