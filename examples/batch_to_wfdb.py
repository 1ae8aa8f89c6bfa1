"""Convert a folder of sheets to WFDB with the batch API, then read every record back.

Renders ``--n`` sheets (simulated ECGs in several layouts) into
``<work>/batch/sheets/``, converts them with
:func:`ecgdigitize.batch.digitize_many` into ``<work>/batch/wfdb/`` (resumable:
a second run skips what is done, see ``manifest.jsonl``), reads each record
with ``wfdb.rdrecord`` and plots lead II of every one into ``batch_to_wfdb.png``.

Run: ``python -m examples.batch_to_wfdb [--n 4] [--jobs 1] [--out docs/img/examples]`` (about 15 s).
"""

from __future__ import annotations

import shutil
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from examples._common import parser, sample_sheet, save_figure

LAYOUTS = ("3x4+1", "3x4", "6x2", "12x1", "3x4+3")


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=4, help="sheets to render and convert (4)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (1)")
    p.add_argument("--fresh", action="store_true",
                   help="delete earlier outputs first (else the run resumes and skips them)")
    args = p.parse_args(argv)

    import wfdb
    from PIL import Image

    from ecgdigitize.batch import digitize_many, find_inputs

    sheets, out = args.work / "batch" / "sheets", args.work / "batch" / "wfdb"
    if args.fresh:
        shutil.rmtree(out, ignore_errors=True)
    sheets.mkdir(parents=True, exist_ok=True)
    for i in range(args.n):
        layout = LAYOUTS[i % len(LAYOUTS)]
        path = sheets / f"sheet{i:02d}_{layout.replace('+', 'p')}.png"
        if not path.exists():
            sheet = sample_sheet(seed=100 + i, layout=layout, dpi=150, heart_rate=60 + 8 * i)
            Image.fromarray(sheet.image).save(path)

    summary = digitize_many(find_inputs(sheets), out, formats=("wfdb",), jobs=args.jobs,
                            progress=False)
    print(summary)
    ok = [r for r in summary.results if r.status in ("ok", "skipped") and r.outputs]
    for r in summary.results:
        if r.status == "failed":
            print(f"  failed: {r.input}: {r.error_type}: {r.error_message}")

    fig, ax = plt.subplots(max(1, len(ok)), 1, figsize=(11, 1.9 * max(1, len(ok))),
                           sharex=True, squeeze=False)
    for a, r in zip(ax[:, 0], sorted(ok, key=lambda r: r.stem), strict=False):
        rec = wfdb.rdrecord(str(out / r.stem))
        k = rec.sig_name.index("II")
        t = np.arange(rec.sig_len) / rec.fs
        a.plot(t, rec.p_signal[:, k], lw=0.8, color="tab:blue")
        a.set_ylabel("mV")
        a.set_title(f"{r.stem}: layout {r.layout}, {rec.fs:g} Hz, {rec.n_sig} leads, lead II "
                    f"({np.isfinite(rec.p_signal[:, k]).mean():.0%} of 10 s printed)",
                    fontsize=9, loc="left")
    ax[-1, 0].set_xlabel("time, s (read back with wfdb.rdrecord)")
    png = save_figure(fig, args.out / "batch_to_wfdb.png")
    print(f"wrote {png} ({png.stat().st_size // 1024} KB); records in {out}")
    return 0 if len(ok) == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
