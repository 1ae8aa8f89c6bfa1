"""Overlay of a digitization on its input image, to check it by eye.

:func:`trace_polylines` turns a :class:`~ecgdigitize.result.DigitizedECG`
back into pixel polylines: every panel's recovered samples are placed at
``x = box_x0 + (t - t0) * px_per_s`` and ``y = baseline - mV * px_per_mv`` in
the working image, then mapped to input pixels through the inverse of
``result.transform``. :func:`plot_overlay` draws them over the input with
matplotlib (imported lazily).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigurationError
from .io import ImageSource, load_image
from .result import DigitizedECG

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["plot_overlay", "trace_polylines"]


def trace_polylines(result: DigitizedECG, *, working: bool = False
                    ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Pixel polylines of the recovered signal, one per panel.

    Parameters
    ----------
    result : DigitizedECG
        A digitization with panels and a calibration.
    working : bool, default False
        Return working-image px instead of input px.

    Returns
    -------
    list of (str, ndarray, ndarray)
        ``(lead, x_px, y_px)``; NaN where the lead was not recovered.

    Raises
    ------
    ConfigurationError
        If the result has no calibration.

    Examples
    --------
    >>> import numpy as np
    >>> from ecgdigitize.result import Calibration, DigitizedECG, Panel
    >>> p = Panel("I", (100.0, 0.0, 592.5, 300.0), 0.0, 2.5, 150.0, 0, 0)
    >>> sig = np.full((5000, 12), np.nan); sig[:1250, 0] = 1.0
    >>> res = DigitizedECG(sig, 500, panels=(p,), calibration=Calibration(7.88, 7.88))
    >>> lead, x, y = trace_polylines(res)[0]
    >>> lead, round(float(x[0]), 1), round(float(y[0]), 1)
    ('I', 100.0, 71.2)
    """
    cal = result.calibration
    if cal is None:
        raise ConfigurationError("the result has no calibration; nothing to draw")
    inv = np.linalg.inv(np.asarray(result.transform, dtype=float))
    out = []
    for p in result.panels:
        if p.lead not in result.lead_names:
            continue
        i0 = int(np.ceil(p.t0_s * result.fs - 1e-9))
        i1 = min(result.n_samples, int(np.ceil(p.t1_s * result.fs - 1e-9)))
        idx = np.arange(i0, max(i0, i1))
        mv = result.lead(p.lead)[idx]
        x = p.box_px[0] + (idx / result.fs - p.t0_s) * cal.px_per_s
        y = p.baseline_y_px - mv * cal.px_per_mv
        if not working:
            pts = np.stack([x, np.nan_to_num(y), np.ones_like(x)])
            q = inv @ pts
            x, y = q[0] / q[2], np.where(np.isnan(y), np.nan, q[1] / q[2])
        out.append((p.lead, x, y))
    return out


def plot_overlay(image: ImageSource, result: DigitizedECG, ax: Axes | None = None, *,
                 colour: str = "#00b4d8", linewidth: float = 1.0, labels: bool = True,
                 **imshow_kwargs: Any) -> Axes:
    """Draw the recovered traces over the input image.

    Parameters
    ----------
    image : path-like, bytes, PIL.Image.Image or ndarray
        The image that was digitized (input pixels).
    result : DigitizedECG
        Its digitization.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure sized to the image).
    colour : str, default "#00b4d8"
        Trace colour; unrecovered leads are marked with a red label.
    linewidth : float, default 1.0
        Trace line width, points.
    labels : bool, default True
        Write each lead's name and quality at its panel start.
    **imshow_kwargs
        Passed to :meth:`matplotlib.axes.Axes.imshow`.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from ecgdigitize.result import Calibration, DigitizedECG, Panel
    >>> p = Panel("I", (10.0, 0.0, 60.0, 80.0), 0.0, 2.5, 40.0, 0, 0)
    >>> res = DigitizedECG(np.zeros((5000, 12)), 500, panels=(p,),
    ...                    calibration=Calibration(0.8, 0.8))
    >>> ax = plot_overlay(np.full((80, 100, 3), 255, np.uint8), res)
    >>> len(ax.lines)
    1
    """
    import matplotlib.pyplot as plt

    rgb = load_image(image)
    if ax is None:
        h, w = rgb.shape[:2]
        _, ax = plt.subplots(figsize=(w / 100, h / 100), dpi=100)
        ax.set_position((0, 0, 1, 1))
    ax.imshow(rgb, **imshow_kwargs)
    for lead, x, y in trace_polylines(result):
        ax.plot(x, y, color=colour, linewidth=linewidth)
        if labels and x.size:
            q = float(result.quality.get(lead, np.nan))
            ok = np.isfinite(y).any()
            ax.text(x[0], np.nanmin(y) - 4 if ok else float(np.mean(ax.get_ylim())),
                    f"{lead} {q:.2f}", color=colour if ok else "red", fontsize=7,
                    va="bottom")
    ax.set_axis_off()
    return ax
