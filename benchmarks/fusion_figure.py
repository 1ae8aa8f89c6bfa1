"""Figure for the docs: limb leads as read from their panels and after limb-lead fusion.

Renders shared records as clean 3x4+1 sheets at 200 dpi and digitizes each twice,
with ``DigitizeConfig(fuse_limb_leads=False)`` (every lead as read from its own
panel) and with the default (the limb leads fitted to all simultaneous readings,
:mod:`ecgdigitize.fusion`). Left: one record's lead III around a QRS complex at the
end of column 1, true, as read and fused. Right: the SNR of each lead (dB,
:func:`ecgdigitize.metrics.score_record`), mean over the records, both ways; the
precordial leads are not fused and must not move.

Run: ``python -m benchmarks.fusion_figure [--n 12] [--record E10256] [--lead III]``;
writes ``docs/img/fusion.png`` and prints the per-lead means.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from benchmarks.runner import save_figure
from ecgdigitize import digitize
from ecgdigitize.config import DigitizeConfig
from ecgdigitize.metrics import score_record
from ecgdigitize.record import STANDARD_LEADS
from ecgdigitize.synth import SheetStyle, load_record, render_sheet

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT.parent / "shared" / "data" / "ecg-records"
OUT = ROOT / "docs" / "img" / "fusion.png"


def both_ways(stem: str):
    """The rendered sheet's truth and its digitization without and with fusion."""
    sheet = render_sheet(load_record(RECORDS / stem), "3x4+1", SheetStyle(dpi=200.0), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = digitize(sheet.image, config=DigitizeConfig(fuse_limb_leads=False))
        fused = digitize(sheet.image)
    return sheet.truth.reference, raw, fused


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="records for the per-lead means")
    ap.add_argument("--record", default="E10256")
    ap.add_argument("--lead", default="III")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    heads = sorted(RECORDS.glob("*.hea"))
    if not heads or not (RECORDS / f"{args.record}.hea").exists():
        print(f"records not found in {RECORDS}", file=sys.stderr)
        return 1
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stems = [h.stem for h in heads[:: max(1, len(heads) // args.n)][: args.n]]
    snr = {"as read": [], "fused": []}
    for stem in stems:
        ref, raw, fused = both_ways(stem)
        snr["as read"].append(score_record(ref, raw)["snr_db"].to_numpy())
        snr["fused"].append(score_record(ref, fused)["snr_db"].to_numpy())
    means = {k: np.mean(np.minimum(v, 60.0), axis=0) for k, v in snr.items()}
    for k, v in means.items():
        print(f"{k:8s} " + " ".join(f"{lead}={x:.2f}" for lead, x in zip(STANDARD_LEADS, v,
                                                                          strict=True))
              + f"  mean={v.mean():.2f}")

    ref, raw, fused = both_ways(args.record)
    j = STANDARD_LEADS.index(args.lead)
    truth = ref.signal[:, j]
    window = np.flatnonzero(np.isfinite(truth))
    end = int(window[-1]) + 1
    seg = slice(max(int(window[0]), end - 150), end)
    t = np.arange(ref.signal.shape[0])[seg] / ref.fs
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1, 1.4]})
    ax.plot(t, truth[seg], color="black", lw=2.2, label="true")
    ax.plot(t, raw.lead(args.lead)[seg], color="#d62828", lw=1.2, label="read from its panel")
    ax.plot(t, fused.lead(args.lead)[seg], color="#1d70b8", lw=1.2, ls="--", label="fused")
    ax.set(xlabel="time (s)", ylabel="mV",
           title=f"{args.record} lead {args.lead}: the last 0.3 s of column 1")
    ax.legend(fontsize=8)
    x = np.arange(len(STANDARD_LEADS))
    bx.bar(x - 0.2, means["as read"], 0.4, color="#d62828", label="read from its panel")
    bx.bar(x + 0.2, means["fused"], 0.4, color="#1d70b8", label="fused")
    bx.set_xticks(x, STANDARD_LEADS)
    lo = float(min(means["as read"].min(), means["fused"].min()))
    bx.set_ylim(max(0.0, lo - 3.0), None)
    bx.set(ylabel="SNR (dB)", title=f"mean over {len(stems)} clean renders "
           f"({means['as read'].mean():.2f} -> {means['fused'].mean():.2f} dB, all leads)")
    bx.legend(fontsize=8, loc="lower right")
    save_figure(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
