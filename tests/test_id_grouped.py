"""The command and the report of ``benchmarks.id_grouped``."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.id_grouped import MODELS, compare_argv, fold_f1, load, report
from ecgclassify.cli import build_parser

NAMES = ["myocardial infarction", "abnormal heartbeat", "normal", "history of MI"]


def _comparison(cnn: list[float], feats: list[float]) -> dict:
    conf = [[5, 0, 0, 1], [0, 4, 1, 0], [0, 0, 6, 0], [1, 0, 0, 3]]
    return {"class_names": NAMES,
            "folds": {MODELS[0]: [{"macro_f1": f} for f in cnn],
                      MODELS[1]: [{"macro_f1": f} for f in feats]},
            "pooled": {m: {"confusion": conf} for m in MODELS},
            "fit_time_s": {MODELS[0]: [100.0, 120.0, 140.0], MODELS[1]: [2.0, 2.0, 2.0]}}


def test_the_command_is_the_cli_comparison_grouped_by_printed_id(tmp_path: Path) -> None:
    args = build_parser().parse_args(compare_argv(2, tmp_path / "data", tmp_path / "m.csv",
                                                  tmp_path / "out"))
    assert args.groups == "printed_id" and args.seed == 2 and args.quiet
    assert args.models.split(",") == list(MODELS)
    assert args.report == str(tmp_path / "out" / "seed2")
    assert args.manifest == str(tmp_path / "m.csv")


def test_report_pairs_the_models_and_sets_them_beside_content_grouping() -> None:
    comps = {0: _comparison([0.9, 0.8, 1.0], [0.85, 0.85, 0.95]),
             1: _comparison([0.7, 0.9, 0.8], [0.8, 0.8, 0.8])}
    study = {"runs": [{"seed": s, "fold": k,
                       "scores": {MODELS[0]: {"macro_f1": 0.9}, MODELS[1]: {"macro_f1": 0.88}}}
                      for s in (0, 1, 5) for k in range(3)]}  # seed 5 is not in the view
    assert fold_f1(comps, MODELS[0])[(1, 0)] == 0.7
    md = report(comps, study)
    rows = [ln for ln in md.splitlines() if ln.startswith(f"| {MODELS[0]} |")]
    assert rows[0] == f"| {MODELS[0]} | printed ID | 0.900 | 0.800 | 0.850 ± 0.105 (6 folds) |"
    assert rows[1] == f"| {MODELS[0]} | content (SHA-256) | 0.900 | 0.900 | 0.900 ± 0.000 (6 folds) |"
    # differences 0.05, -0.05, 0.05, -0.1, 0.1, 0: mean 0.008, ahead 3, behind 2
    assert "minus features-ensemble +0.008 (SD 0.074), ahead on 3 and behind on 2." in md
    assert "on its own 6 folds: +0.020 (SD 0.000), ahead on 6 and behind on 0." in md
    # pooled confusion matrices summed over the two fold seeds
    assert "| myocardial infarction | 10 | 0 | 0 | 2 |" in md
    assert "median 120 s, p95 140 s a fold" in md


def test_report_without_the_content_study_or_results(tmp_path: Path) -> None:
    md = report({0: _comparison([0.9, 0.9, 0.9], [0.8, 0.8, 0.8])})
    assert "content (SHA-256)" not in md and "+0.100 (SD 0.000)" in md
    with pytest.raises(ValueError, match="run the benchmark first"):
        report({})
    assert load(tmp_path) == {}
