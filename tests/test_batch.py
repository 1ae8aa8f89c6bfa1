"""Tests for ecgdigitize/batch.py and ecgdigitize/convert.py: the batch machinery.

A cheap fake digitizer (module level, so worker processes can import it) makes
these tests independent of the real pipeline: it derives a signal from the
image pixels, refuses blank pages, and can crash its process or sleep on demand.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecgdigitize import batch
from ecgdigitize.batch import BatchSummary, digitize_many, find_inputs, read_manifest
from ecgdigitize.convert import FileResult, convert_file, output_stem, write_outputs
from ecgdigitize.errors import ConfigurationError, InputError, NoTracesFoundError
from ecgdigitize.record import STANDARD_LEADS, ECGRecord
from ecgdigitize.result import Calibration, DigitizedECG

CRASH_RGB = (1, 2, 3)  # top-left pixel colour that makes the fake kill its process
SLOW_RGB = (4, 5, 6)  # ... that makes it sleep 0.5 s


def fake_digitize(image: np.ndarray, *, fs: float = 500, config: object = None) -> DigitizedECG:
    """Deterministic stand-in for ecgdigitize.digitize."""
    img = np.asarray(image)
    corner = tuple(int(v) for v in img[0, 0, :3])
    if corner == CRASH_RGB:
        os._exit(3)  # a segfault-like death of the worker
    if corner == SLOW_RGB:
        time.sleep(0.5)
    if img.min() > 250:
        raise NoTracesFoundError("blank page: no ECG trace found")
    n = round(2.0 * fs)
    t = np.arange(n) / fs
    level = img.mean(axis=(0, 1))[:3] / 255.0
    sig = np.stack([np.sin(2 * np.pi * (1 + k) * t) * level[k % 3] for k in range(12)], axis=1)
    sig[: n // 4, 3] = np.nan
    return DigitizedECG(sig, fs=fs, lead_names=STANDARD_LEADS, layout="3x4",
                        calibration=Calibration(7.9, 7.8), quality=dict.fromkeys(STANDARD_LEADS, 0.8),
                        stage_times_s={"grid": 0.01})


def hanging_digitize(image: np.ndarray, *, fs: float = 500,
                     config: object = None) -> DigitizedECG:
    """The fake, hanging for 30 s on the sheet with the slow corner (a pathological input)."""
    if tuple(int(v) for v in np.asarray(image)[0, 0, :3]) == SLOW_RGB:
        time.sleep(30)
    return fake_digitize(image, fs=fs, config=config)


def slow_fake_digitize(image: np.ndarray, *, fs: float = 500,
                       config: object = None) -> DigitizedECG:
    """The fake, taking 0.3 s per sheet (to interrupt a run midway)."""
    time.sleep(0.3)
    return fake_digitize(image, fs=fs, config=config)


def threads_digitize(image: np.ndarray, *, fs: float = 500,
                     config: object = None) -> DigitizedECG:
    """The fake, warning with the thread settings of the process it runs in."""
    import warnings

    import cv2

    warnings.warn(f"cv2={cv2.getNumThreads()} omp={os.environ.get('OMP_NUM_THREADS')}",
                  UserWarning, stacklevel=1)
    return fake_digitize(image, fs=fs, config=config)


def trim_digitize(image: np.ndarray, *, fs: float = 500,
                  config: object = None) -> DigitizedECG:
    """The fake, warning with the malloc trim setting of the process it runs in."""
    import warnings

    warnings.warn(f"trim={os.environ.get('MALLOC_TRIM_THRESHOLD_')}", UserWarning, stacklevel=1)
    return fake_digitize(image, fs=fs, config=config)


def _sheet(path: Path, seed: int, corner: tuple[int, int, int] | None = None) -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(80, 96, 3), dtype=np.uint8)
    if corner is not None:
        arr[0, 0] = corner
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def sheets(tmp_path: Path) -> list[Path]:
    good = [_sheet(tmp_path / "in" / f"s{i}.png", i) for i in range(4)]
    blank = tmp_path / "in" / "blank.png"
    Image.new("RGB", (96, 80), "white").save(blank)
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return [*good, blank, broken]


def _run(paths: list[Path], out: Path, **kw: object) -> BatchSummary:
    kw.setdefault("progress", False)
    return digitize_many(paths, out, digitize=fake_digitize, **kw)  # type: ignore[arg-type]


def _manifest_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / batch.MANIFEST_NAME).read_text().splitlines()]


def _listing(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "manifest.jsonl"}


# --- one file --------------------------------------------------------------------
def test_output_stem_is_stable_unique_and_wfdb_safe(tmp_path: Path) -> None:
    a = output_stem(tmp_path / "a" / "scan 1.v2.png")
    b = output_stem(tmp_path / "b" / "scan 1.v2.png")
    assert a != b and a == output_stem(tmp_path / "a" / "scan 1.v2.png")
    assert a.startswith("scan_1_v2_") and len(a) == len("scan_1_v2_") + 8


def test_write_outputs_round_trips_every_format(tmp_path: Path) -> None:
    sig = np.random.default_rng(0).normal(0, 0.5, size=(500, 12))
    sig[:100, 2] = np.nan
    rec = ECGRecord(sig, fs=500)
    paths = write_outputs(rec, tmp_path, "r", ["wfdb", "csv", "npy"])
    assert [p.name for p in paths] == ["r.npy", "r.csv", "r.dat", "r.hea"]
    assert np.array_equal(np.load(paths[0]), sig, equal_nan=True)
    back = ECGRecord.from_wfdb(tmp_path / "r.hea")
    assert np.nanmax(np.abs(back.signal - sig)) <= 0.0005 + 1e-12  # 1 µV steps
    assert np.array_equal(np.isnan(back.signal), np.isnan(sig))
    assert not list(tmp_path.glob(".ecgdigitize-tmp-*"))


def test_failed_write_leaves_no_partial_output(tmp_path: Path, monkeypatch) -> None:
    def boom(self: ECGRecord, path: Path) -> Path:
        Path(path).write_text("half a csv")
        raise OSError("disk full")

    monkeypatch.setattr(ECGRecord, "to_csv", boom)
    with pytest.raises(OSError, match="disk full"):
        write_outputs(ECGRecord(np.zeros((10, 12)), fs=500), tmp_path, "r", ["npy", "csv"])
    assert list(tmp_path.iterdir()) == []


def test_write_outputs_refuses_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="formats"):
        write_outputs(ECGRecord(np.zeros((10, 12)), fs=500), tmp_path, "r", ["mat"])


def test_convert_file_reports_instead_of_raising(sheets: list[Path], tmp_path: Path) -> None:
    ok = convert_file(sheets[0], tmp_path / "o", digitize=fake_digitize, formats=["npy"])
    assert ok.status == "ok" and ok.layout == "3x4" and ok.leads_recovered == 12
    assert ok.sha256 == hashlib.sha256(sheets[0].read_bytes()).hexdigest()
    assert ok.mean_quality == pytest.approx(0.8)
    assert ok.peak_rss_mb is not None and ok.peak_rss_mb > 10
    blank = convert_file(sheets[4], tmp_path / "o", digitize=fake_digitize)
    assert (blank.status, blank.error_type) == ("failed", "NoTracesFoundError")
    assert blank.error_message == "blank page: no ECG trace found"
    missing = convert_file(tmp_path / "nope.png", tmp_path / "o", digitize=fake_digitize)
    assert (missing.error_type, missing.error_message) == ("UnreadableImageError", "no such file")


def test_convert_file_survives_a_bug_in_the_digitizer(sheets: list[Path], tmp_path: Path) -> None:
    def buggy(image: np.ndarray, **kw: object) -> DigitizedECG:
        raise IndexError("index 7 is out of bounds")

    res = convert_file(sheets[0], tmp_path, digitize=buggy)
    assert (res.status, res.error_type) == ("failed", "IndexError")
    assert "out of bounds" in (res.error_message or "")


def test_time_limit_fails_the_file_and_writes_nothing(tmp_path: Path) -> None:
    slow = _sheet(tmp_path / "in" / "slow.png", 5, corner=SLOW_RGB)
    t0 = time.perf_counter()
    res = convert_file(slow, tmp_path / "out", digitize=hanging_digitize, timeout_s=0.3)
    assert time.perf_counter() - t0 < 5
    assert (res.status, res.error_type) == ("failed", "ConversionTimeoutError")
    assert "longer than 0.3 s" in (res.error_message or "")
    ok = convert_file(_sheet(tmp_path / "in" / "ok.png", 6), tmp_path / "out",
                      digitize=hanging_digitize, timeout_s=5)
    assert ok.status == "ok" and ok.outputs
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {Path(p).name for p in ok.outputs} <= written
    assert not [n for n in written if n.startswith(output_stem(slow))]  # nothing of the slow one
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # no alarm left armed
    for bad in (0, -1.0, float("nan")):  # a bad argument raises, it is not a bad file
        with pytest.raises(ConfigurationError, match="positive"):
            convert_file(slow, tmp_path / "out", digitize=hanging_digitize, timeout_s=bad)
        with pytest.raises(ConfigurationError, match="positive"):
            digitize_many([slow], tmp_path / "out2", digitize=hanging_digitize, timeout_s=bad,
                          progress=False)


@pytest.mark.slow
def test_pool_worker_gives_up_on_a_hanging_file(sheets: list[Path], tmp_path: Path) -> None:
    slow = _sheet(tmp_path / "in" / "hang.png", 7, corner=SLOW_RGB)
    t0 = time.perf_counter()
    s = digitize_many([*sheets[:3], slow], tmp_path / "out", digitize=hanging_digitize, jobs=2,
                      scheduler="processes", progress=False, formats=("npy",), timeout_s=1.0)
    assert time.perf_counter() - t0 < 20
    status = {Path(r.input).name: (r.status, r.error_type) for r in s.results}
    assert status["hang.png"] == ("failed", "ConversionTimeoutError")
    assert s.n_ok == 3


# --- inputs ------------------------------------------------------------------------
def test_find_inputs_directory_glob_csv_and_missing(tmp_path: Path) -> None:
    a = _sheet(tmp_path / "d" / "a.PNG", 0)
    b = _sheet(tmp_path / "d" / "sub" / "b.jpg", 1)
    (tmp_path / "d" / "notes.txt").write_text("x")
    _sheet(tmp_path / "d" / "out" / "o.png", 2)
    assert find_inputs(tmp_path / "d", exclude=tmp_path / "d" / "out") == [a, b]
    assert find_inputs(str(tmp_path / "d" / "**" / "*.jpg")) == [b]
    lst = tmp_path / "d" / "list.csv"
    lst.write_text(f"path,label\nsub/b.jpg,1\n{a},0\n")
    assert find_inputs(lst) == [a, tmp_path / "d" / "sub" / "b.jpg"]
    lst.write_text("file\nx.png\n")
    with pytest.raises(InputError, match="'path' column"):
        find_inputs(lst)
    with pytest.raises(InputError, match="no such"):
        find_inputs(tmp_path / "absent")


# --- the driver ----------------------------------------------------------------------
def test_batch_writes_outputs_and_manifest(sheets: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    s = _run(sheets, out, formats=("wfdb", "csv"))
    assert (s.n_ok, s.n_failed, s.n_skipped) == (4, 2, 0)
    assert str(s).startswith("4 ok, 2 failed, 0 skipped in ")
    lines = _manifest_lines(out)
    assert len(lines) == 6 and len({d["run"] for d in lines}) == 1
    by_name = {Path(d["input"]).name: d for d in lines}
    assert by_name["broken.png"]["error_type"] == "UnreadableImageError"
    assert by_name["blank.png"]["error_type"] == "NoTracesFoundError"
    for i in range(4):
        d = by_name[f"s{i}.png"]
        assert d["status"] == "ok" and d["time_s"] > 0 and d["peak_rss_mb"] > 10
        assert [Path(p).suffix for p in d["outputs"]] == [".csv", ".dat", ".hea"]
        assert all(Path(p).exists() for p in d["outputs"])
    assert len(list(out.glob("*.hea"))) == 4 and not list(out.glob(".ecgdigitize-tmp-*"))


def test_rerun_skips_done_and_failed_then_retries(sheets: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(sheets, out)
    before = _listing(out)
    again = _run(sheets, out)
    assert (again.n_ok, again.n_failed, again.n_skipped) == (0, 0, 6)
    assert _listing(out) == before
    retry = _run(sheets, out, retry_failed=True)
    assert (retry.n_ok, retry.n_failed, retry.n_skipped) == (0, 2, 4)
    # a deleted output or a changed input is converted again
    stem = output_stem(sheets[1])
    (out / f"{stem}.dat").unlink()
    _sheet(sheets[2], 99)
    os.utime(sheets[2], ns=(1, 1))
    redo = _run(sheets, out)
    assert sorted(Path(r.input).name for r in redo.results if r.status == "ok") == ["s1.png",
                                                                                   "s2.png"]
    assert (out / f"{stem}.dat").exists()
    latest = read_manifest(out / batch.MANIFEST_NAME)
    assert latest[str(sheets[2])].sha256 == hashlib.sha256(sheets[2].read_bytes()).hexdigest()


def test_new_format_on_rerun_converts_again(sheets: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(sheets[:2], out, formats=("npy",))
    s = _run(sheets[:2], out, formats=("npy", "csv"))
    assert s.n_ok == 2 and len(list(out.glob("*.csv"))) == 2


def test_equal_stems_in_different_folders_do_not_collide(tmp_path: Path) -> None:
    a = _sheet(tmp_path / "x" / "scan.png", 1)
    b = _sheet(tmp_path / "y" / "scan.png", 2)
    s = _run([a, b, a], tmp_path / "out", formats=("npy",))
    assert s.n_ok == 2 and s.n_inputs == 2
    arrays = [np.load(p) for p in sorted((tmp_path / "out").glob("scan_*.npy"))]
    assert len(arrays) == 2 and not np.array_equal(arrays[0], arrays[1], equal_nan=True)


def test_torn_manifest_line_is_ignored_and_repaired(sheets: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(sheets[:2], out)
    with open(out / batch.MANIFEST_NAME, "a") as fh:
        fh.write('{"input": "/x.png", "sta')  # a run killed mid-line
    s = _run(sheets[:3], out)
    assert (s.n_ok, s.n_skipped) == (1, 2)
    assert len(read_manifest(out / batch.MANIFEST_NAME)) == 3


def test_second_run_on_the_same_folder_is_refused(sheets: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    holder = batch.Manifest(out / batch.MANIFEST_NAME)
    try:
        with pytest.raises(ConfigurationError, match="another batch run"):
            _run(sheets[:1], out)
    finally:
        holder.close()


def test_interrupt_stops_cleanly_and_resume_completes(sheets: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    seen: list[FileResult] = []

    def stop_after_two(res: FileResult) -> None:
        seen.append(res)
        if len(seen) == 2:
            raise KeyboardInterrupt

    s = _run(sheets, out, on_result=stop_after_two)
    assert s.interrupted and len(s.results) == 2
    assert "interrupted: 4 of 6 files not done" in str(s)
    rest = _run(sheets, out)
    assert (rest.n_skipped, rest.n_ok + rest.n_failed) == (2, 4)
    assert len(list(out.glob("*.hea"))) == 4


def test_stale_temp_folders_of_dead_processes_are_removed(sheets: list[Path],
                                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    dead = out / ".ecgdigitize-tmp-999999999-abc"
    alive = out / f".ecgdigitize-tmp-{os.getpid()}-abc"
    for d in (dead, alive):
        d.mkdir(parents=True)
        (d / "x.dat").write_bytes(b"partial")
    _run(sheets[:1], out)
    assert not dead.exists() and alive.exists()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="formats"):
        _run([], tmp_path, formats=("edf",))
    with pytest.raises(ConfigurationError, match="jobs"):
        _run([], tmp_path, jobs=0)
    with pytest.raises(ConfigurationError, match="scheduler"):
        _run([], tmp_path, scheduler="slurm")


# --- process pool ------------------------------------------------------------------------
@pytest.mark.slow
def test_process_pool_matches_serial_and_survives_a_crash(sheets: list[Path],
                                                          tmp_path: Path) -> None:
    crash = _sheet(tmp_path / "in" / "crash.png", 7, corner=CRASH_RGB)
    serial = _run(sheets, tmp_path / "serial", formats=("npy",))
    pooled = _run([*sheets, crash], tmp_path / "pool", formats=("npy",), jobs=2)
    assert (pooled.n_ok, pooled.n_failed) == (4, 3)
    status = {Path(r.input).name: (r.status, r.error_type) for r in pooled.results}
    assert status["crash.png"] == ("failed", "WorkerCrashedError")
    workers = {r.worker for r in pooled.results if r.status == "ok"}
    assert all(w and not w.endswith(f":{os.getpid()}") for w in workers)
    assert _listing(tmp_path / "serial") == _listing(tmp_path / "pool")
    assert serial.n_ok == 4


@pytest.mark.slow
def test_pool_workers_run_one_thread_each(sheets: list[Path], tmp_path: Path) -> None:
    before = os.environ.get("OMP_NUM_THREADS")
    s = digitize_many(sheets[:3], tmp_path, digitize=threads_digitize, jobs=2,
                      scheduler="processes", progress=False, formats=("npy",))
    assert [r.warnings for r in s.results] == [("cv2=1 omp=1",)] * 3
    assert os.environ.get("OMP_NUM_THREADS") == before  # the driver's setting is restored


# --- Dask --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.slow
def test_own_local_cluster_drops_the_malloc_trim_setting(sheets: list[Path],
                                                          tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    s = digitize_many(sheets[:2], tmp_path, digitize=trim_digitize, jobs=2, scheduler="dask",
                      progress=False, formats=("npy",))
    # Dask's default MALLOC_TRIM_THRESHOLD_=65536 doubled the CPU time of every sheet
    assert [r.warnings for r in s.results] == [("trim=None",)] * 2
    assert s.n_ok == 2


def test_dask_worker_setup_restores_malloc_thresholds(monkeypatch) -> None:
    from ecgdigitize._workers import dask_worker_setup

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))  # undone after the test
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert dask_worker_setup() is False  # nothing to undo: glibc keeps its adaptive threshold
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    import platform

    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert dask_worker_setup() is glibc
    assert os.environ["OMP_NUM_THREADS"] == "1"


@pytest.mark.slow
def test_dask_client_and_address_give_the_same_outputs(sheets: list[Path], tmp_path: Path,
                                                       dask_client) -> None:
    local = _run(sheets, tmp_path / "local", formats=("npy", "wfdb"))
    on_client = _run(sheets, tmp_path / "client", formats=("npy", "wfdb"), client=dask_client)
    address = dask_client.scheduler.address.replace("tcp://", "dask://")
    by_addr = _run(sheets, tmp_path / "addr", formats=("npy", "wfdb"), scheduler=address)
    for s in (on_client, by_addr):
        assert (s.n_ok, s.n_failed) == (4, 2)
        assert {r.worker for r in s.results if r.status == "ok"}.isdisjoint({local.results[0].worker})
    assert _listing(tmp_path / "local").keys() == _listing(tmp_path / "client").keys()
    assert _listing(tmp_path / "client") == _listing(tmp_path / "addr")
    assert {d["status"] for d in _manifest_lines(tmp_path / "client")} == {"ok", "failed"}
    again = _run(sheets, tmp_path / "client", client=dask_client, formats=("npy", "wfdb"))
    assert again.n_skipped == 6
    threads = digitize_many(sheets[:2], tmp_path / "threads", digitize=threads_digitize,
                            client=dask_client, progress=False, formats=("npy",))
    assert [r.warnings for r in threads.results] == [("cv2=1 omp=1",)] * 2


def test_nan_scale_and_quality_still_give_valid_json(sheets: list[Path], tmp_path: Path) -> None:
    def no_scale(image: np.ndarray, **kw: object) -> DigitizedECG:
        res = fake_digitize(image)
        return DigitizedECG(res.signal, fs=res.fs, calibration=None,
                            quality={"I": float("nan"), "II": 0.4})

    s = digitize_many(sheets[:1], tmp_path, digitize=no_scale, progress=False)
    line = (tmp_path / batch.MANIFEST_NAME).read_text()
    entry = json.loads(line)  # strict JSON: no NaN tokens
    assert "NaN" not in line and entry["px_per_mm"] is None
    assert entry["quality"] == {"I": None, "II": 0.4} and entry["mean_quality"] == 0.4
    assert s.results[0].describe().endswith("s") and "? px/mm" in s.results[0].describe()
