"""Vote counting, hard-sheet selection and the what-if rescoring of ``benchmarks.hard_sheets``."""

from __future__ import annotations

import numpy as np

from benchmarks.hard_sheets import complete_runs, hard_sheets, report, rescore, sheet_votes


def _run(test_index: list[int], pred: list[int], n_classes: int = 3) -> dict:
    return {"test_index": test_index, "proba": np.eye(n_classes)[pred].tolist()}


def test_hard_sheets_pool_copies_and_need_the_threshold() -> None:
    y = np.array([0, 0, 1, 2, 2])
    groups = ["a", "a", "b", "c", "d"]  # files 0 and 1 are copies of one sheet
    runs = [_run([0, 1, 2, 3], [1, 1, 1, 0]), _run([0, 1, 2, 3, 4], [1, 1, 1, 2, 0]),
            _run([0, 1, 3, 4], [2, 2, 0, 2]), _run([0, 1, 3], [1, 1, 0])]
    votes = sheet_votes(runs, len(y), 3)
    np.testing.assert_array_equal(votes[0], [0, 3, 1])
    np.testing.assert_array_equal(votes[2], [0, 2, 0])
    hard = hard_sheets(votes, y, groups, threshold=0.75)
    # sheet a: wrong in all 4 networks (8 votes over 2 copies), mostly called 1;
    # sheet c: wrong in 3 of 4; sheet d: 1 of 2, not hard; sheet b: always right
    assert [(h["index"], h["copies"], h["n_networks"], h["predicted"]) for h in hard] == \
        [(0, 2, 4, 1), (3, 1, 4, 0)]
    assert hard[0]["error_rate"] == 1.0 and hard[1]["error_rate"] == 0.75
    assert [h["index"] for h in hard_sheets(votes, y, groups, threshold=0.8)] == [0]


def test_rescore_sets_only_the_given_files_right() -> None:
    y = np.array([0, 1, 1, 0])
    run = _run([0, 1, 2, 3], [1, 1, 1, 0], n_classes=2)  # file 0 wrong: macro-F1 0.733
    assert rescore([run], y, set()) == [np.float64(0.7333333333333334)]
    assert rescore([run], y, {0}) == [1.0]
    assert rescore([run], y, {1, 3}) == rescore([run], y, set())  # already right
    # files 0 and 1 copies of one sheet (its first file, 0, is wrong), 2 and 3 distinct:
    # per sheet the predictions are [1, 1, 0] against [0, 1, 0]: F1 (0.667 + 0.667) / 2
    assert rescore([run], y, set(), ["a", "a", "b", "c"]) == [np.float64(2 / 3)]


def test_report_lists_classes_sheets_and_the_what_if() -> None:
    res = {"sources": ["x.json"], "n_runs": 30, "n_left_out": 2, "threshold": 0.8,
           "votes_per_sheet_median": 16.0, "votes_per_sheet_min": 15,
           "classes": [{"class": "myocardial infarction", "files": 207, "distinct": 26,
                        "strip_lead_ii": 22, "hard": 3}],
           "hard": [{"file": "MI(13).jpg", "label_name": "myocardial infarction",
                     "copies": 8, "strip_lead": "II", "weakest_quality": 0.9634,
                     "weakest_quality_pct": 0.15, "error_rate": 1.0, "n_networks": 16,
                     "predicted_name": "normal", "features_right": 1, "features_scored": 3}],
           "what_if": {"seed+0": {"as scored": [0.9, 0.94], "all hard sheets right": [1.0, 1.0]}}}
    md = report(res)
    assert md.startswith("30 fold records (x.json; 2 of fold seeds a recipe did not finish")
    assert "| myocardial infarction | 207 | 26 | 8.0 | 22 (85%) | 3 |" in md
    assert ("| MI(13).jpg | myocardial infarction | 8 | II | 0.963 (15%) | 100% of 16 | normal "
            "| 1 of 3 |") in md
    assert "| network seeds | as scored | all hard sheets right |" in md
    assert "| seed+0 | 0.920 | 1.000 |" in md


def test_complete_runs_leave_out_an_unfinished_fold_seed() -> None:
    runs = ([{"source": "a", "variant": "v", "fold_seed": 0, "fold": k} for k in range(5)]
            + [{"source": "a", "variant": "v", "fold_seed": 1, "fold": k} for k in range(2)]
            + [{"source": "b", "variant": "v", "fold": k} for k in range(5)])  # seed 0 implied
    kept = complete_runs(runs)
    assert len(kept) == 10
    assert {(r["source"], r.get("fold_seed", 0)) for r in kept} == {("a", 0), ("b", 0)}


def test_the_pool_leaves_out_other_networks(tmp_path) -> None:
    import json

    from benchmarks.hard_sheets import _load_runs

    rec = {"fold": 0, "test_index": [0], "proba": [[1.0, 0.0]]}
    (tmp_path / "a.json").write_text(json.dumps({"runs": [
        dict(rec, variant="base"), dict(rec, variant="perlead"), {"variant": "x", "fold": 0}]}))
    runs, used = _load_runs([tmp_path / "a.json", tmp_path / "missing.json"])
    assert [r["variant"] for r in runs] == ["base"] and runs[0]["source"] == "a.json"
    assert used == ["a.json"]


def test_sheet_facts_read_the_strip_and_the_weakest_lead_from_lead_info() -> None:
    from benchmarks.hard_sheets import sheet_facts
    from ecgdigitize import ECGRecord

    def rec(info: dict) -> ECGRecord:
        return ECGRecord(np.zeros((10, 12)), fs=1.0, lead_info=info)

    strip, weakest = sheet_facts([
        rec({"I": {"quality": 0.99, "rhythm": False}, "III": {"quality": 0.95, "rhythm": True}}),
        rec({"II": {"quality": 0.97}}),  # no rhythm strip (a 6x2 sheet, say)
        None])  # a sheet that could not be digitized
    assert strip.tolist() == ["III", "", ""]
    np.testing.assert_allclose(weakest, [0.95, 0.97, 0.0])
