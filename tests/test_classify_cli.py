"""Tests of the ecgclassify command line (in-process, with a fake digitizer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_feature_predictor import FakeDigitizer, write_sheets

import ecgdigitize
from ecgclassify.cli import main
from ecgclassify.splits import LEAKY_LABEL


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ecgdigitize, "digitize", FakeDigitizer(), raising=False)
    monkeypatch.setenv("ECGDIGITIZE_CACHE", str(tmp_path / "cache"))
    write_sheets(tmp_path / "data", 6)
    return tmp_path / "data"


def test_train_predict_evaluate(data: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.ecgmodel"
    assert main(["train", str(data), "--model", "features-logreg", "--out", str(model),
                 "--quiet"]) == 0
    assert model.is_file() and "12 files" in capsys.readouterr().out

    sheets = [str(data / "c0" / "s1.png"), str(data / "c1" / "s2.png")]
    assert main(["predict", str(model), *sheets]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split("\t")[1:3] for ln in lines] == [["0", "myocardial infarction"],
                                                     ["1", "abnormal heartbeat"]]
    assert all(0.5 < float(ln.split("\t")[3]) <= 1.0 for ln in lines)

    report = tmp_path / "report"
    assert main(["evaluate", str(model), str(data), "--report", str(report), "--json",
                 "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == 1.0 and result["n_samples"] == 12
    assert (report / "report.md").exists() and (report / "confusion_matrix.png").exists()


def test_compare_grouped_and_leaky(data: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    assert main(["compare", str(data), "--models", "features-logreg,features-rf",
                 "--folds", "3", "--report", str(out), "--quiet"]) == 0
    md = capsys.readouterr().out
    assert "GROUPED by content sha256" in md and "| features-rf |" in md
    assert (out / "comparison.json").exists() and (out / "confusion_features-logreg.png").exists()
    assert main(["compare", str(data), "--models", "features-logreg", "--folds", "3",
                 "--protocol", "leaky", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["protocol"] == LEAKY_LABEL


def test_project_errors_are_one_line_exit_2(data: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(tmp_path / "none.ecgmodel"), "x.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no such model file" in err and "\n" not in err
    assert main(["train", str(data), "--model", "nope", "--out", str(tmp_path / "m")]) == 2
    assert "known models" in capsys.readouterr().err
    assert main(["compare", str(data), "--groups", "printed_id", "--quiet"]) == 2
    assert "manifest" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["compare"])
    assert exc.value.code == 2


def test_train_and_predict_the_signal_cnn(data: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("keras")
    model = tmp_path / "s.ecgmodel"
    assert main(["train", str(data), "--model", "signal-cnn", "--out", str(model),
                 "--quiet"]) == 0
    assert "trained signal-cnn on 12 files" in capsys.readouterr().out
    assert main(["predict", str(model), str(data / "c0" / "s1.png"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["class"] in (0, 1) and 0.5 <= row["probability"] <= 1.0
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")
    lite = tmp_path / "s-f16.ecgmodel"
    assert main(["export", str(model), str(lite)]) == 0
    assert "float16" in capsys.readouterr().out
    assert main(["predict", str(lite), str(data / "c0" / "s1.png"), "--json"]) == 0
    lite_row = json.loads(capsys.readouterr().out)
    assert lite_row["class"] == row["class"]
    assert lite_row["probability"] == pytest.approx(row["probability"], abs=0.02)


def test_export_refuses_a_feature_model(data: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "f.ecgmodel"
    assert main(["train", str(data), "--model", "features-logreg", "--out", str(model),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["export", str(model), str(tmp_path / "f.tflite")]) == 2
    assert "only Keras predictors" in capsys.readouterr().err
