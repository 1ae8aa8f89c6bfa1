"""Tests for ecgdigitize/cli.py: commands, messages, exit status, interruption and resume.

The machinery is tested with the fake digitizer of ``test_batch`` plugged in
through ``--digitizer``; the last test runs the real pipeline on rendered sheets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecgdigitize import __version__
from ecgdigitize.cli import main
from ecgdigitize.convert import output_stem

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
FAKE = "test_batch:fake_digitize"
SLOW_FAKE = "test_batch:slow_fake_digitize"


def _sheet(path: Path, seed: int) -> Path:
    arr = np.random.default_rng(seed).integers(0, 255, size=(80, 96, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _folder(root: Path, n_sheets: int) -> tuple[list[Path], list[Path]]:
    """``n_sheets`` fake sheets plus 3 hostile files (empty, truncated, blank page)."""
    sheets = [_sheet(root / f"{'ab'[i % 2]}" / f"sheet{i:02d}.png", i) for i in range(n_sheets)]
    bad = [root / "empty.png", root / "trunc.png", root / "b" / "blank.png"]
    bad[0].write_bytes(b"")
    bad[1].write_bytes(sheets[0].read_bytes()[:200])
    Image.new("RGB", (96, 80), "white").save(bad[2])
    return sheets, bad


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]),
            "PYTHONUNBUFFERED": "1"}


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecgdigitize", *args], capture_output=True,
                          text=True, env=_env(), cwd=ROOT, timeout=timeout)


def _latest(out: Path) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for line in (out / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["status"] != "skipped":
            latest[entry["input"]] = entry
    return latest


# --- commands and messages ------------------------------------------------------------------
def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--version"], ["--help"], ["digitize", "--help"], ["batch", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"ecgdigitize {__version__}" in out
    assert "--retry-failed" in out and "--overlay" in out and "dask://HOST:PORT" in out


def test_options_reach_the_digitizer_config() -> None:
    from ecgdigitize.cli import _config, build_parser

    for cmd in (["digitize", "a.png"], ["batch", "scans"]):
        base = _config(build_parser().parse_args([*cmd, "-o", "out"]))
        assert base.fit_ink and not base.remove_baseline and base.notch_hz is None
        assert base.fuse_limb_leads
        cfg = _config(build_parser().parse_args(
            [*cmd, "-o", "out", "--no-ink-fit", "--clean", "--notch", "50", "--fs", "250",
             "--no-lead-fusion"]))
        assert (cfg.fit_ink, cfg.remove_baseline, cfg.notch_hz, cfg.fs) == (False, True, 50.0,
                                                                           250.0)
        assert not cfg.fuse_limb_leads
        assert base.orientation is None
        turned = _config(build_parser().parse_args([*cmd, "-o", "out", "--orientation", "180"]))
        assert turned.orientation == 180


def test_module_and_console_script_run() -> None:
    res = _cli("--version")
    assert (res.returncode, res.stdout.strip()) == (0, f"ecgdigitize {__version__}")
    script = Path(sys.executable).with_name("ecgdigitize")
    if script.exists():
        res = subprocess.run([str(script), "--version"], capture_output=True, text=True)
        assert res.stdout.strip() == f"ecgdigitize {__version__}"


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["digitize", "x.png", "-o", str(tmp_path), "--format", "wfdb,edf"])
    assert info.value.code == 2 and "unknown format" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o"), "-q"]) == 2
    assert "error: " in capsys.readouterr().err
    (tmp_path / "empty_dir").mkdir()
    assert main(["batch", str(tmp_path / "empty_dir"), "-o", str(tmp_path / "o"), "-q"]) == 2
    assert "no sheet images found" in capsys.readouterr().err
    for bad in ("0", "-3", "soon"):
        with pytest.raises(SystemExit) as info:
            main(["batch", str(tmp_path), "-o", str(tmp_path / "o"), "--timeout", bad])
        assert info.value.code == 2 and "positive number of seconds" in capsys.readouterr().err


def test_digitize_prints_one_line_per_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    sheets, bad = _folder(tmp_path / "in", 2)
    out = tmp_path / "out"
    rc = main(["digitize", *map(str, sheets), str(bad[0]), "-o", str(out), "--format",
               "wfdb,csv,npy", "--overlay", "--digitizer", FAKE, "-q"])
    captured = capsys.readouterr()
    assert rc == 1
    lines = captured.out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("sheet00.png: layout 3x4, 7.85 px/mm, "
                                                   "12/12 leads, quality 0.80, ")
    assert f"error: {bad[0]}: file is empty" in captured.err
    assert "Traceback" not in captured.err
    assert "2 ok, 1 failed, 0 skipped in " in captured.err
    stem = output_stem(sheets[0])
    for suffix in (".hea", ".dat", ".csv", ".npy", "_overlay.png"):
        assert (out / f"{stem}{suffix}").exists(), suffix
    assert Image.open(out / f"{stem}_overlay.png").size == (96, 80)


def test_batch_summary_rerun_and_retry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, bad = _folder(tmp_path / "in", 4)
    out = tmp_path / "out"
    args = ["batch", str(tmp_path / "in"), "-o", str(out), "--digitizer", FAKE, "-q"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "4 ok, 3 failed, 0 skipped in " in err
    assert {line.split(": ")[1] for line in err.splitlines() if line.startswith("error:")} \
        == {str(p) for p in bad}
    assert "Traceback" not in err
    assert main(args) == 1  # nothing new, but failures remain
    assert "0 ok, 0 failed, 7 skipped (3 failed earlier) in " in capsys.readouterr().err
    assert main([*args, "--retry-failed"]) == 1
    assert "0 ok, 3 failed, 4 skipped in " in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "in" / "a" / "*.png"), "-o", str(out),
                 "--digitizer", FAKE, "-q"]) == 0
    assert "0 ok, 0 failed, 2 skipped in " in capsys.readouterr().err


def test_batch_reads_a_csv_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheets, _ = _folder(tmp_path / "in", 3)
    listing = tmp_path / "in" / "list.csv"
    listing.write_text("path,label\n" + "".join(f"{p.relative_to(listing.parent)},2\n"
                                                for p in sheets[:2]))
    rc = main(["batch", str(listing), "-o", str(tmp_path / "out"), "--format", "csv",
               "--digitizer", FAKE, "-q", "-v"])
    err = capsys.readouterr().err
    assert rc == 0 and "2 ok, 0 failed, 0 skipped" in err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.csv")) == sorted(
        f"{output_stem(p)}.csv" for p in sheets[:2])


# --- interruption and resume ---------------------------------------------------------------
def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_lines(manifest: Path, n: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if manifest.exists() and len(manifest.read_text().splitlines()) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the batch made no progress")


def _assert_complete_outputs(out: Path) -> None:
    assert not list(out.glob(".ecgdigitize-tmp-*"))
    heads = {p.stem for p in out.glob("*.hea")}
    assert heads == {p.stem for p in out.glob("*.dat")}, "a .dat without .hea or vice versa"
    for head in out.glob("*.hea"):
        assert head.read_text().startswith(head.stem)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(("sig", "jobs"), [(signal.SIGINT, 1), (signal.SIGKILL, 1),
                                           (signal.SIGTERM, 2), (signal.SIGKILL, 2)])
def test_killed_batch_resumes_without_duplicates(tmp_path: Path, sig: signal.Signals,
                                                 jobs: int) -> None:
    sheets, bad = _folder(tmp_path / "in", 12)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ecgdigitize", "batch", str(tmp_path / "in"), "-o", str(out),
           "--digitizer", SLOW_FAKE, "--jobs", str(jobs), "-q"]
    # default SIGINT disposition in the child: a suite started as a background job
    # (`make test &`, nohup) has SIGINT ignored, and children inherit that
    proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    _wait_for_lines(out / "manifest.jsonl", 4, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err
        assert "interrupted: " in err and "re-run the same command to resume" in err
        assert "Traceback" not in err
    done_before = len(_latest(out))
    assert 4 <= done_before < 15
    if sig != signal.SIGKILL:
        _assert_complete_outputs(out)
    rerun = _cli(*cmd[3:], timeout=240)
    assert rerun.returncode == 1, rerun.stderr
    latest = _latest(out)
    assert len(latest) == 15
    assert sorted(e["status"] for e in latest.values()).count("ok") == 12
    assert {Path(e["input"]).name for e in latest.values() if e["status"] == "failed"} == {
        p.name for p in bad}
    _assert_complete_outputs(out)
    assert {p.stem for p in out.glob("*.hea")} == {output_stem(p) for p in sheets}
    assert len(list(out.iterdir())) == 2 * 12 + 1


# --- the real pipeline ------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_batch_of_rendered_sheets_with_hostile_files(tmp_path: Path, sim_record) -> None:
    from ecgdigitize.convert import _default_digitize
    from ecgdigitize.errors import MissingDependencyError
    from ecgdigitize.synth import SheetStyle, render_sheet, simulate_record

    try:
        _default_digitize()
    except MissingDependencyError:
        pytest.skip("ecgdigitize.digitize is not available yet")
    folder = tmp_path / "in"
    folder.mkdir()
    layouts = ["3x4+1", "3x4", "6x2", "12x1"]
    for i in range(12):
        rec = sim_record if i == 0 else simulate_record(seed=i, heart_rate=60 + 3 * i)
        img = render_sheet(rec, layouts[i % 4], SheetStyle(dpi=100)).image
        Image.fromarray(img).save(folder / f"sheet{i:02d}.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "trunc.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    Image.new("RGB", (1100, 850), "white").save(folder / "blank.png")
    out = tmp_path / "out"
    res = _cli("batch", str(folder), "-o", str(out), "--jobs", "2", "--format", "wfdb",
               "-q", timeout=580)
    assert res.returncode == 1, res.stderr
    latest = _latest(out)
    failed = {Path(k).name: v for k, v in latest.items() if v["status"] == "failed"}
    assert {"empty.png", "trunc.jpg", "blank.png"} <= set(failed)
    assert failed["blank.png"]["error_type"] in ("NoGridFoundError", "NoTracesFoundError",
                                                 "LayoutNotFoundError")
    ok = [v for v in latest.values() if v["status"] == "ok"]
    assert len(ok) == 12, {k: v["error_message"] for k, v in failed.items()}
    assert all(v["peak_rss_mb"] < 1024 for v in ok)
    _assert_complete_outputs(out)
