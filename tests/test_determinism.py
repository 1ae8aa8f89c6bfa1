"""Determinism: the same input and version give bit-identical output.

Digitizing twice in one process, and in two fresh processes (different hash
seeds and thread counts), must give the same arrays and the same bytes in
every written file (WFDB ``.hea``/``.dat``, CSV, NumPy).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecgdigitize.convert import _default_digitize
from ecgdigitize.errors import MissingDependencyError
from ecgdigitize.io import load_image
from ecgdigitize.record import ECGRecord

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::ecgdigitize.pipeline.DigitizationWarning")


@pytest.fixture(scope="module")
def digitize():
    try:
        return _default_digitize()
    except MissingDependencyError:
        pytest.skip("ecgdigitize.digitize is not available yet")


@pytest.fixture(scope="module")
def sheet_png(tmp_path_factory: pytest.TempPathFactory, sim_record: ECGRecord) -> Path:
    from ecgdigitize.synth import Degradation, SheetStyle, render_sheet

    sheet = render_sheet(sim_record, "3x4+1", SheetStyle(dpi=100),
                         Degradation(rotation_deg=1.5, gaussian_noise_std=4.0), seed=3)
    path = tmp_path_factory.mktemp("det") / "sheet.png"
    Image.fromarray(sheet.image).save(path)
    return path


def test_two_calls_in_one_process_are_bit_identical(digitize, sheet_png: Path) -> None:
    image = load_image(sheet_png)
    a = digitize(image, fs=500)
    b = digitize(image.copy(), fs=500)
    assert a.signal.tobytes() == b.signal.tobytes()
    assert a.lead_names == b.lead_names and a.layout == b.layout
    assert dict(a.quality) == dict(b.quality)
    assert np.array_equal(a.transform, b.transform)
    assert [p.box_px for p in a.panels] == [p.box_px for p in b.panels]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_processes_write_identical_bytes(digitize, sheet_png: Path, tmp_path: Path) -> None:
    outs = []
    for i, (seed, threads) in enumerate([("1", "1"), ("2", "2")]):
        out = tmp_path / f"run{i}"
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": threads,
               "OPENBLAS_NUM_THREADS": threads}
        res = subprocess.run([sys.executable, "-m", "ecgdigitize", "digitize", str(sheet_png),
                              "-o", str(out), "--format", "wfdb,csv,npy", "-q"],
                             capture_output=True, text=True, env=env, cwd=ROOT, timeout=500)
        assert res.returncode == 0, res.stderr
        outs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert sorted(outs[0]) == sorted(outs[1])
    assert {p.rsplit(".", 1)[1] for p in outs[0]} == {"hea", "dat", "csv", "npy"}
    for name in outs[0]:
        assert outs[0][name] == outs[1][name], f"{name} differs between processes"
    in_process = digitize(load_image(sheet_png), fs=500)
    npy = next(tmp_path.glob("run0/*.npy"))
    assert np.load(npy).tobytes() == in_process.to_numpy().tobytes()
