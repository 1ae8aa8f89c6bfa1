"""The report of ``benchmarks.signal_cnn_study``, on made-up fold records."""

from __future__ import annotations

import pytest

from benchmarks.signal_cnn_study import MODELS, report


def _run(seed: int, fold: int, sig: float, feat: float, fused: float) -> dict:
    scores = {name: {"macro_f1": f1, "accuracy": f1 + 0.01, "confusion": []}
              for name, f1 in zip(MODELS, (sig, feat, fused), strict=True)}
    return {"seed": seed, "fold": fold, "n_test_files": 10, "signal_train_s": 100.0 + fold,
            "signal_epochs": 60, "scores": scores}


def test_report_pairs_folds_and_summarises_per_seed() -> None:
    res = {"machine": {"description": "2-core CPU, no GPU"},
           "runs": [_run(0, 0, 0.90, 0.80, 0.95), _run(0, 1, 0.70, 0.80, 0.85),
                    _run(1, 0, 0.85, 0.80, 0.90)]}
    md = report(res)
    rows = {ln.split(" | ")[0].strip("| "): ln for ln in md.splitlines() if ln.startswith("| ")}
    assert "macro-F1, fold seed 0 | macro-F1, fold seed 1" in md
    # signal-cnn: seed 0 folds 0.90 and 0.70 -> 0.800 ± 0.141; all three -> 0.817 ± 0.104
    assert "| 0.800 ± 0.141 (2 folds) | 0.850 ± 0.000 (1 folds) | 0.817 ± 0.104 |" in rows["signal-cnn"]
    assert rows["features-ensemble"].count("0.800 ± 0.000") == 3
    # paired differences: signal - features = (+0.1, -0.1, +0.05); fusion - features +0.100
    assert "signal-cnn minus features +0.017 (SD 0.104)" in md
    assert "fusion minus features +0.100 (SD 0.050)" in md
    assert "median 100 s" in md and "2-core CPU, no GPU" in md


def test_report_needs_records() -> None:
    with pytest.raises(ValueError, match="no fold records"):
        report({"runs": []})


def test_reused_folds_take_only_default_grouped_records(tmp_path) -> None:
    import json

    from benchmarks.signal_cnn_study import reused_folds

    base = {"model": "sig", "protocol": "grouped", "proba": [[1, 0, 0, 0]], "test_index": [0],
            "params": {"predictor": "signal-cnn", "width": 32, "epochs": 60}}
    runs = [dict(base, fold=0), dict(base, fold=1, protocol="leaky"),
            dict(base, fold=2, params={"width": 64}), dict(base, fold=3, model="other"),
            {k: v for k, v in dict(base, fold=4).items() if k != "proba"}]
    f = tmp_path / "cnn_compare.json"
    f.write_text(json.dumps({"runs": runs}))
    assert list(reused_folds(f"{f}:sig")) == [0]
    assert reused_folds(None) == {} and reused_folds(f"{tmp_path / 'none.json'}:sig") == {}
