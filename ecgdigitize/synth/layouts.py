"""Which lead is printed where and when: the standard sheet layouts.

A layout is a list of :class:`Cell` (lead, row, column, time window). Every
layout covers one 10 s recording; a column of an ``R x C`` layout shows
``10 / C`` seconds, and columns are consecutive windows of the same recording
(column 1 of a 3x4 sheet shows I/II/III over 0-2.5 s, column 2 aVR/aVL/aVF over
2.5-5 s...). Rhythm strips show their lead over the full 10 s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigurationError
from ..record import STANDARD_LEADS

__all__ = ["DEFAULT_RHYTHM_LEADS", "LAYOUTS", "Cell", "layout_cells", "layout_grid"]

#: The layouts every part of the project knows, with their default rhythm strips.
DEFAULT_RHYTHM_LEADS: dict[str, tuple[str, ...]] = {
    "3x4": (),
    "3x4+1": ("II",),
    "3x4+3": ("II", "V1", "V5"),
    "6x2": (),
    "12x1": (),
}
LAYOUTS: tuple[str, ...] = tuple(DEFAULT_RHYTHM_LEADS)

_LAYOUT_RE = re.compile(r"^(\d+)x(\d+)(?:\+(\d+))?$")


@dataclass(frozen=True)
class Cell:
    """One printed lead segment of a layout (no pixel geometry yet).

    Attributes
    ----------
    lead : str
        Lead name.
    row, col : int
        0-based position; rhythm strips take the rows below the grid, col 0.
    t0_s, t1_s : float
        Window of the record shown, s (time 0 = start of the first column).
    is_rhythm : bool
        True for a full-length rhythm strip.

    Examples
    --------
    >>> Cell("II", row=3, col=0, t0_s=0.0, t1_s=10.0, is_rhythm=True).t1_s
    10.0
    """

    lead: str
    row: int
    col: int
    t0_s: float
    t1_s: float
    is_rhythm: bool = False


def layout_grid(layout: str) -> tuple[int, int, int]:
    """Parse a layout name into ``(rows, columns, rhythm strips)``.

    Parameters
    ----------
    layout : str
        ``"3x4"``, ``"3x4+1"``, ``"3x4+3"``, ``"6x2"``, ``"12x1"``...

    Returns
    -------
    (int, int, int)
        Rows and columns of the 12-lead grid, and the number of rhythm strips.

    Examples
    --------
    >>> layout_grid("3x4+1")
    (3, 4, 1)
    >>> layout_grid("6x2")
    (6, 2, 0)

    Raises
    ------
    ConfigurationError
        If the name is not ``RxC`` or ``RxC+N`` with ``R * C == 12``.
    """
    m = _LAYOUT_RE.match(str(layout))
    if m is None:
        raise ConfigurationError(f"layout must look like '3x4+1'; got {layout!r}")
    rows, cols, n_rhythm = int(m[1]), int(m[2]), int(m[3] or 0)
    if rows * cols != 12:
        raise ConfigurationError(f"layout {layout!r} must hold 12 leads (rows x cols = 12)")
    return rows, cols, n_rhythm


def layout_cells(layout: str = "3x4+1", *, lead_order: Sequence[str] | None = None,
                 rhythm_leads: Sequence[str] | None = None,
                 duration_s: float = 10.0) -> tuple[Cell, ...]:
    """List the printed segments of a layout.

    Parameters
    ----------
    layout : str, default "3x4+1"
        ``"3x4"``, ``"3x4+1"``, ``"3x4+3"``, ``"6x2"``, ``"12x1"`` (or any
        ``RxC[+N]`` with ``R * C = 12``).
    lead_order : sequence of str, optional
        The 12 leads in reading order, filled column by column (default
        :data:`~ecgdigitize.record.STANDARD_LEADS`: I, II, III in column 1...).
    rhythm_leads : sequence of str, optional
        Leads of the rhythm strips; default from :data:`DEFAULT_RHYTHM_LEADS`
        (lead II for "RxC+1"). Its length must match the ``+N`` of the name.
    duration_s : float, default 10
        Total time shown across the columns, s.

    Returns
    -------
    tuple of Cell
        Grid cells (column-major order) followed by rhythm strips.

    Raises
    ------
    ConfigurationError
        If the layout, lead order or rhythm leads are invalid.

    Examples
    --------
    >>> cells = layout_cells("3x4+1")
    >>> [(c.lead, c.row, c.col, c.t0_s) for c in cells[3:5]]
    [('aVR', 0, 1, 2.5), ('aVL', 1, 1, 2.5)]
    >>> cells[-1]
    Cell(lead='II', row=3, col=0, t0_s=0.0, t1_s=10.0, is_rhythm=True)
    """
    rows, cols, n_rhythm = layout_grid(layout)
    order = tuple(STANDARD_LEADS if lead_order is None else lead_order)
    if len(order) != 12 or len(set(order)) != 12:
        raise ConfigurationError(f"lead_order must name 12 distinct leads; got {order}")
    if rhythm_leads is None:
        rhythm = DEFAULT_RHYTHM_LEADS.get(layout, ("II", "V1", "V5")[:n_rhythm])
    else:
        rhythm = tuple(rhythm_leads)
    if len(rhythm) != n_rhythm:
        raise ConfigurationError(
            f"layout {layout!r} has {n_rhythm} rhythm strip(s); got rhythm_leads={rhythm}")
    col_s = duration_s / cols
    cells = [Cell(order[c * rows + r], r, c, c * col_s, (c + 1) * col_s)
             for c in range(cols) for r in range(rows)]
    cells += [Cell(lead, rows + k, 0, 0.0, duration_s, True) for k, lead in enumerate(rhythm)]
    return tuple(cells)
