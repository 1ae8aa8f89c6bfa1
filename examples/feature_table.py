"""The feature table of one record: the true signal against its digitized sheet.

Simulates a 10 s 12-lead ECG, draws it on a 3x4+1 sheet, digitizes the sheet,
and computes :func:`ecgclassify.features.extract_features` on both the true
record and the digitized one. Writes ``feature_table.png`` (lead II with its R
peaks, and the global features side by side) to ``--out`` and
``feature_table.md`` (every feature, with unit, true and digitized value) to ``--work``.

Run: ``python -m examples.feature_table [--out docs/img/examples]`` (about 10 s).
"""

from __future__ import annotations

import math
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from examples._common import parser, sample_sheet, save_figure

#: Global features shown in the figure.
SHOWN = ("hr_bpm", "rr_mean_s", "rr_sd_s", "pr_s", "qrs_s", "qt_s", "qtc_s", "axis_deg",
         "st_max_mv", "st_min_mv", "n_q_waves", "n_t_inverted")


def _fmt(v: float) -> str:
    return "NaN" if not math.isfinite(v) else f"{v:.3g}"


def feature_markdown(truth: dict[str, float], digitized: dict[str, float]) -> str:
    """Markdown table: name | unit | true | digitized, in feature order."""
    from ecgclassify.features import FEATURES

    rows = ["| feature | unit | true signal | digitized sheet |", "|---|---|---|---|"]
    for name, value in truth.items():
        key = name if name in FEATURES else "{lead}_" + name.split("_", 1)[1]
        unit = FEATURES.get(key, ("", ""))[0]
        rows.append(f"| `{name}` | {unit} | {_fmt(value)} | {_fmt(digitized[name])} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)

    import neurokit2 as nk

    from ecgclassify.features import extract_features, feature_names
    from ecgdigitize import digitize

    sheet = sample_sheet(seed=11, dpi=150, heart_rate=64)
    result = digitize(sheet.image, fs=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NeuroKit2's own warnings on short segments
        truth = extract_features(sheet.truth.reference)
        digitized = extract_features(result)
    md = args.work / "feature_table.md"
    md.write_text(feature_markdown(truth, digitized), encoding="utf-8")
    print(f"{len(feature_names())} features; finite: true {np.isfinite(list(truth.values())).sum()}"
          f", digitized {np.isfinite(list(digitized.values())).sum()}")
    for name in SHOWN:
        print(f"  {name:14s} true {_fmt(truth[name]):>8s}   digitized {_fmt(digitized[name]):>8s}")

    fig, ax = plt.subplots(2, 1, figsize=(11, 8), gridspec_kw={"height_ratios": [1, 1.25]})
    ii = result.lead("II")
    ok = np.isfinite(ii)
    t = result.time_s
    ax[0].plot(t, ii, color="tab:blue", lw=0.9, label="digitized lead II")
    if ok.sum() > result.fs:
        seg = ii[ok]
        _, info = nk.ecg_peaks(nk.ecg_clean(seg, sampling_rate=result.fs),
                               sampling_rate=result.fs)
        peaks = np.flatnonzero(ok)[np.asarray(info["ECG_R_Peaks"], dtype=int)]
        ax[0].plot(t[peaks], ii[peaks], "v", color="tab:red", label="R peaks (NeuroKit2)")
    ax[0].set_xlabel("time, s")
    ax[0].set_ylabel("mV")
    ax[0].legend(loc="upper right", fontsize=8)
    ax[0].set_title("the rhythm lead of the digitized sheet")
    cells = [[name, _fmt(truth[name]), _fmt(digitized[name])] for name in SHOWN]
    fig.subplots_adjust(hspace=0.3)
    ax[1].axis("off")
    table = ax[1].table(cellText=cells, colLabels=["feature", "true signal", "digitized sheet"],
                        loc="center", cellLoc="center")
    table.scale(1, 1.45)
    ax[1].set_title(f"global features (all {len(feature_names())} in feature_table.md)")
    png = save_figure(fig, args.out / "feature_table.png")
    print(f"wrote {md} and {png} ({png.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
