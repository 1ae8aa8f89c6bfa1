"""The example scripts run and write what the documentation shows.

Each fast example runs in a subprocess (as a user would, ``python -m
examples.NAME``) with ``--out`` and ``--work`` in a temporary folder; the test
checks the figures and files it promises. The slow ones (training models) are
only checked to start (``--help``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SHEET = (ROOT / "data" / "ecg-images" / "Normal Person ECG Images (284x12=3408)"
                   / "Normal(1).jpg")


def run_example(name: str, tmp_path: Path, *args: str, timeout: int = 300) -> tuple[Path, str]:
    """Run ``python -m examples.<name> --out OUT --work WORK ARGS``; return OUT and stdout."""
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-m", f"examples.{name}", "--out", str(out), "--work", str(work), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return out, proc.stdout


def assert_figure(path: Path, min_side: int = 300) -> None:
    """A readable PNG of a useful size, under the docs' 500 KB budget, not blank."""
    assert path.is_file(), path
    assert path.stat().st_size < 500 * 1024, f"{path.name}: {path.stat().st_size // 1024} KB"
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert min(im.size) >= min_side, im.size
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 5, f"{path.name} looks blank"


@pytest.mark.slow
def test_digitize_overlay(tmp_path: Path) -> None:
    out, stdout = run_example("digitize_overlay", tmp_path)
    assert_figure(out / "digitize_overlay.png")
    assert "SNR against the truth" in stdout
    import wfdb

    rec = wfdb.rdrecord(str(tmp_path / "work" / "rendered"))
    assert rec.n_sig == 12 and rec.fs == 500 and rec.sig_len == 5000
    assert np.isfinite(rec.p_signal).any(axis=0).all()  # every lead recovered somewhere


@pytest.mark.slow
def test_batch_to_wfdb(tmp_path: Path) -> None:
    out, stdout = run_example("batch_to_wfdb", tmp_path, "--n", "3")
    assert_figure(out / "batch_to_wfdb.png")
    records = sorted((tmp_path / "work" / "batch" / "wfdb").glob("*.hea"))
    assert len(records) == 3
    assert (tmp_path / "work" / "batch" / "wfdb" / "manifest.jsonl").is_file()
    assert "3 ok" in stdout
    _, again = run_example("batch_to_wfdb", tmp_path, "--n", "3")  # resumes: nothing to do
    assert "3 skipped" in again


@pytest.mark.slow
def test_feature_table(tmp_path: Path) -> None:
    from ecgclassify.features import feature_names

    out, _ = run_example("feature_table", tmp_path)
    assert_figure(out / "feature_table.png")
    table = (tmp_path / "work" / "feature_table.md").read_text("utf-8").splitlines()
    assert len(table) == 2 + len(feature_names())
    hr_row = next(row for row in table if row.startswith("| `hr_bpm`"))
    true_hr = float(hr_row.split("|")[3])
    assert 30 < true_hr < 200


@pytest.mark.slow
def test_stages(tmp_path: Path) -> None:
    out, _ = run_example("stages", tmp_path)
    sheets = ["rendered"] + (["reference"] if REFERENCE_SHEET.exists() else [])
    for sheet in sheets:
        for stage in ("1_grid", "2_deskew", "3_panels", "4_traces", "5_overlay"):
            assert_figure(out / f"{sheet}_{stage}.png")


def test_photo_lattice(tmp_path: Path) -> None:
    out, stdout = run_example("photo_lattice", tmp_path)
    assert_figure(out / "photo_lattice.png")
    snr = {line.split(":")[0]: float(line.rsplit("SNR", 1)[1].split()[0])
           for line in stdout.splitlines() if "mean SNR" in line}
    # measured 23.4 dB with the lattice step and 14.9 dB without
    assert snr["with the lattice step"] > snr["without it"] + 4.0
    assert "fold" in stdout


@pytest.mark.parametrize("name", ["compare_predictors", "tflite_inference", "stages",
                                  "digitize_overlay", "batch_to_wfdb", "feature_table",
                                  "photo_lattice"])
def test_every_example_documents_its_options(name: str) -> None:
    proc = subprocess.run([sys.executable, "-m", f"examples.{name}", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--out" in proc.stdout and "--work" in proc.stdout
