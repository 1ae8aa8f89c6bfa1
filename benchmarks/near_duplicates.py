"""Near-duplicates in the reference data set: the same ECG saved twice, not byte for byte.

Grouping the folds by SHA-256 keeps byte-identical copies of a sheet on one
side of every split. It would not catch the same recording saved twice in
different bytes (re-encoded, re-scanned, cropped): such a pair could still
sit on both sides of a "grouped" split, and if its two sheets carry
different classes it caps the accuracy any model can reach. Images are a
poor witness here (every sheet shares the grid, the layout and the labels),
the signals are not: two digitizations of one recording agree beat for beat,
two recordings do not, whatever their rhythm.

For every distinct sheet the 12 digitized leads (from the digitization
cache; see :mod:`benchmarks.warm_cache`) are high-passed, decimated to
100 Hz and compared with every other sheet's: the similarity of a pair is
the largest normalised cross-correlation of the 12 leads together over time
shifts of up to 0.3 s. Positive controls calibrate the scale: a few sheets
rotated by 0.8 degrees, shifted, shrunk by 8 % and re-saved as JPEG quality
60, then digitized afresh, must find their original.

Writes ``docs/results/near_duplicates.md`` and
``benchmarks/results/near_duplicates.json``.

Run: ``python -m benchmarks.near_duplicates`` (about a minute once the cache
is warm; it digitizes the sheets that are not cached, about 1 s each).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import uniform_filter1d

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT.parent / "shared" / "data" / "ecg-images-cardiac-patients" / "manifest.csv"
FS_OUT = 100.0         # Hz, the rate the leads are compared at
MAX_LAG_S = 0.3        # largest time shift tried between two sheets, s
HIGH_PASS_S = 0.6      # length of the moving mean removed from each lead, s
CONTROL_SHEETS = 6     # perturbed copies digitized afresh


def lead_matrix(signal: np.ndarray, fs: float, fs_out: float = FS_OUT) -> np.ndarray:
    """The leads of one record, ready for comparison: (n_leads, n) float64, unit norm.

    Each lead is resampled to ``fs_out`` by block means, has its moving
    mean over :data:`HIGH_PASS_S` removed (baseline wander, offsets) where
    it was printed, and is 0 where it was not (NaN). The whole matrix is
    scaled to unit Frobenius norm, so the inner product of two matrices is
    a correlation in [-1, 1].

    Parameters
    ----------
    signal : ndarray of shape (n_samples, n_leads)
        mV, NaN where a lead was not printed.
    fs : float
        Sampling rate of ``signal``, Hz.
    fs_out : float, default 100
        Rate of the result, Hz (``fs`` must be a multiple of it).

    Returns
    -------
    ndarray of shape (n_leads, n_samples * fs_out / fs)

    Examples
    --------
    >>> t = np.arange(1000) / 500
    >>> sig = np.column_stack([np.sin(2 * np.pi * 1.3 * t), np.full(1000, np.nan)])
    >>> m = lead_matrix(sig, 500)
    >>> m.shape, round(float(np.linalg.norm(m)), 6), float(np.abs(m[1]).max())
    ((2, 200), 1.0, 0.0)
    """
    step = round(fs / fs_out)
    if step < 1 or abs(fs / step - fs_out) > 1e-6:
        raise ValueError(f"fs ({fs} Hz) must be a multiple of fs_out ({fs_out} Hz)")
    n = signal.shape[0] // step
    x = signal[:n * step].reshape(n, step, -1)
    ok = np.isfinite(x).all(axis=1)
    x = np.where(ok, np.nanmean(np.where(np.isfinite(x), x, 0.0), axis=1), 0.0).T
    ok = ok.T.astype(float)
    size = max(3, round(HIGH_PASS_S * fs_out))
    mean = uniform_filter1d(x * ok, size, axis=1, mode="nearest")
    weight = uniform_filter1d(ok, size, axis=1, mode="nearest")
    x = np.where(ok > 0, x - mean / np.maximum(weight, 1e-9), 0.0)
    norm = np.linalg.norm(x)
    return x / norm if norm > 0 else x


def similarity_matrix(mats: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest correlation of every pair of lead matrices over shifts up to ``max_lag``.

    Parameters
    ----------
    mats : ndarray of shape (n_sheets, n_leads, n)
        Outputs of :func:`lead_matrix`.
    max_lag : int
        Largest shift tried, samples (either way).

    Returns
    -------
    sim : ndarray of shape (n_sheets, n_sheets)
        Correlation in [-1, 1] (diagonal 1 for non-empty sheets).
    lag : ndarray of shape (n_sheets, n_sheets), int
        Shift of the best match, samples (sheet j later than sheet i when positive).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(3, 400)); b = np.roll(a, 7, axis=1)
    >>> mats = np.stack([a / np.linalg.norm(a), b / np.linalg.norm(b), rng.normal(size=(3, 400)) / 35])
    >>> sim, lag = similarity_matrix(mats, 20)
    >>> round(float(sim[0, 1]), 2), int(lag[0, 1]), bool(abs(sim[0, 2]) < 0.2)
    (0.99, 7, True)
    """
    n_sheets, _, n = mats.shape
    nfft = 1 << int(np.ceil(np.log2(n + max_lag)))
    spec = np.fft.rfft(mats, nfft, axis=2)
    lags = np.r_[0:max_lag + 1, -max_lag:0]
    sim = np.empty((n_sheets, n_sheets))
    lag = np.empty((n_sheets, n_sheets), dtype=int)
    for i in range(n_sheets):
        # sum over leads of the cross-correlation of sheet i with every sheet
        xc = np.fft.irfft(np.einsum("lf,jlf->jf", np.conj(spec[i]), spec), nfft, axis=1)
        window = xc[:, lags]
        best = np.argmax(window, axis=1)
        sim[i] = window[np.arange(n_sheets), best]
        lag[i] = lags[best]
    return sim, lag


def _perturbed(path: str, seed: int) -> np.ndarray:
    """A sheet rotated, shifted, shrunk and re-saved as JPEG: a stand-in for a re-scan."""
    import cv2

    rng = np.random.default_rng(seed)
    rgb = np.asarray(Image.open(path).convert("RGB"))
    h, w = rgb.shape[:2]
    m = np.asarray(cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.choice([-0.8, 0.8])), 0.92),
                   dtype=float)
    m[:, 2] += rng.uniform(-6, 6, 2)
    warped = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_AREA,
                            borderValue=(255, 255, 255))
    buf = io.BytesIO()
    Image.fromarray(warped).save(buf, "JPEG", quality=60)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def run(data: Path, cache_dir: str | None, n_controls: int = CONTROL_SHEETS,
        limit: int | None = None) -> dict:
    """Compare every distinct sheet with every other (the first ``limit`` only, if given)."""
    from ecgclassify.cache import DigitizationCache
    from ecgclassify.datasets import load_image_folder
    from ecgclassify.feature_predictor import FeaturePredictor
    from ecgclassify.splits import grouped_stratified_kfold
    from ecgdigitize import digitize
    from ecgdigitize.record import ECGRecord

    ds = load_image_folder(data, manifest=MANIFEST if MANIFEST.exists() else None)
    first: dict[str, int] = {}
    for i, h in enumerate(ds.content_hashes):
        first.setdefault(h, i)
    idx = np.array(list(first.values()))[:limit]
    paths = [ds.paths[i] for i in idx]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        FeaturePredictor(cache_dir=cache_dir, verbose=True).features(paths)  # fills the cache
    cache = DigitizationCache(cache_dir, digitize_kwargs={"fs": 500})
    mats, keep = [], []
    for k, i in enumerate(idx):
        rec = cache.get(cache.key(ds.content_hashes[i]))
        if isinstance(rec, ECGRecord):
            mats.append(lead_matrix(rec.signal, rec.fs))
            keep.append(k)
    n = min(m.shape[1] for m in mats)
    stack = np.stack([m[:, :n] for m in mats])
    max_lag = round(MAX_LAG_S * FS_OUT)
    sim, lag = similarity_matrix(stack, max_lag)
    np.fill_diagonal(sim, -np.inf)
    idx = idx[keep]
    labels = ds.labels[idx]
    ids = [ds.printed_ids[i] if ds.printed_ids else "" for i in idx]
    # the seed-0 grouped folds of the CV tables
    fold = np.empty(len(ds.labels), dtype=int)
    for f, (_, test) in enumerate(grouped_stratified_kfold(ds.labels, ds.groups, 5, 0)):
        fold[test] = f
    best = sim.max(axis=1)
    iu = np.triu_indices(len(idx), 1)
    order = np.argsort(-sim[iu])
    top = []
    for o in order[:15]:
        a, b = int(iu[0][o]), int(iu[1][o])
        top.append({"sim": float(sim[a, b]), "lag_s": float(lag[a, b] / FS_OUT),
                    "files": [Path(ds.paths[idx[a]]).name, Path(ds.paths[idx[b]]).name],
                    "classes": [int(labels[a]), int(labels[b])],
                    "printed_ids": [ids[a], ids[b]],
                    "folds": [int(fold[idx[a]]), int(fold[idx[b]])]})
    same_id = [float(sim[a, b]) for a, b in zip(*iu, strict=True) if ids[a] and ids[a] == ids[b]]
    # positive controls: perturbed copies digitized afresh must find their originals
    controls = []
    pick = np.linspace(0, len(idx) - 1, n_controls).round().astype(int)
    for c, k in enumerate(pick):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec = digitize(_perturbed(ds.paths[idx[k]], c), fs=500)
        m = lead_matrix(rec.signal, rec.fs)[:, :n]
        s, _ = similarity_matrix(np.concatenate([m[None], stack]), max_lag)
        row = s[0, 1:]
        controls.append({"file": Path(ds.paths[idx[k]]).name, "own": float(row[k]),
                         "best_other": float(np.delete(row, k).max()),
                         "found": bool(np.argmax(row) == k)})
    return {"n_files": len(ds.labels), "n_distinct": len(idx),
            "best_match_quantiles": {q: float(np.percentile(best, q)) for q in (5, 50, 95, 99, 100)},
            "pairs_above": {t: int((sim[iu] > t).sum()) for t in (0.3, 0.5, 0.7, 0.9)},
            "same_printed_id_pairs": len(same_id),
            "same_printed_id_sim_quantiles": ({q: float(np.percentile(same_id, q))
                                               for q in (50, 95, 100)} if same_id else {}),
            "top_pairs": top, "controls": controls}


def render(res: dict, stamp: str) -> list[str]:
    q = res["best_match_quantiles"]
    lines = ["# Near-duplicates in the reference data set", "",
             f"Measured {stamp} on {platform.machine()}, command "
             "`python -m benchmarks.near_duplicates`: the 12 digitized leads of every distinct "
             f"sheet ({res['n_distinct']} of {res['n_files']} files) against every other's, "
             f"largest correlation over shifts up to {MAX_LAG_S:g} s (1 = the same signals).", "",
             "| statistic | value |", "|---|---|",
             *(f"| best match of a sheet, {k}th percentile | {v:.3f} |" for k, v in q.items()),
             *(f"| pairs above {t} | {v} |" for t, v in res["pairs_above"].items()),
             f"| pairs sharing a printed ID | {res['same_printed_id_pairs']} |"]
    if res["same_printed_id_sim_quantiles"]:
        s = res["same_printed_id_sim_quantiles"]
        lines.append(f"| their similarity: median / p95 / max | {s[50]:.3f} / {s[95]:.3f} / "
                     f"{s[100]:.3f} |")
    lines += ["", "Positive controls (a sheet rotated 0.8°, shifted, shrunk 8 %, re-saved as "
              "JPEG 60 and digitized afresh):", "",
              "| sheet | similarity to its original | best other sheet | original found |",
              "|---|---|---|---|"]
    lines += [f"| {c['file']} | {c['own']:.3f} | {c['best_other']:.3f} | {c['found']} |"
              for c in res["controls"]]
    lines += ["", "Most similar pairs of distinct sheets (classes: 0 MI, 1 abnormal heartbeat, "
              "2 normal, 3 history of MI; folds: the seed-0 grouped folds of the CV tables):", "",
              "| similarity | shift (s) | files | classes | printed IDs | folds |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {p['sim']:.3f} | {p['lag_s']:+.2f} | {' / '.join(p['files'])} | "
              f"{p['classes'][0]} / {p['classes'][1]} | {' / '.join(map(str, p['printed_ids']))} | "
              f"{p['folds'][0]} / {p['folds'][1]} |" for p in res["top_pairs"]]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT / "data" / "ecg-images"))
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--controls", type=int, default=CONTROL_SHEETS)
    p.add_argument("--limit", type=int, default=None, help="first N distinct sheets only")
    args = p.parse_args(argv)
    if not Path(args.data).is_dir():
        from ecgclassify.datasets import ensure_reference_images
        try:
            ensure_reference_images(args.data)
        except Exception as exc:  # no archive beside the project
            print(f"reference sheets not available: {exc}", file=sys.stderr)
            return 1
    res = run(Path(args.data), args.cache_dir, args.controls, args.limit)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = render(res, stamp)
    out_md = ROOT / "docs" / "results" / "near_duplicates.md"
    out_md.write_text("\n".join(lines) + "\n")
    out_json = ROOT / "benchmarks" / "results" / "near_duplicates.json"
    out_json.write_text(json.dumps({"date_utc": stamp, "command":
                                    "python -m benchmarks.near_duplicates", **res}, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
