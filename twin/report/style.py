"""Colours, fonts and the figure factory shared by every report figure.

Figures are plain :class:`matplotlib.figure.Figure` objects on an Agg canvas (no pyplot,
no global backend switch), so building a report leaves no state behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import matplotlib
import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

#: One colour per energy source / sink, used by every figure.
COLORS: dict[str, str] = {
    "pv": "#F4A300",
    "bess": "#2A9D8F",
    "bess_charge": "#8AD3C8",
    "grid": "#6C757D",
    "ev": "#7B2CBF",
    "mall": "#1D3557",
    "curtailed": "#E63946",
    "export": "#90BE6D",
    "losses": "#BBBBBB",
    "soc": "#0B6E4F",
    "cost": "#264653",
    "co2": "#5C677D",
    "accent": "#E76F51",
}

#: Shading of the site's most expensive tariff period (HP at the Iquitos site).
HP_SHADE = "#FDE2E4"

#: Matplotlib settings for the whole report (readable at 100 % zoom in a browser).
RC: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.framealpha": 0.9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.facecolor": "white",
    "axes.axisbelow": True,
}

#: Default figure size [in] (1100 × 480 px at 100 dpi).
WIDE = (11.0, 4.8)
TALL = (11.0, 7.0)


@contextmanager
def report_style() -> Iterator[None]:
    """Apply :data:`RC` for the duration of a report build."""
    with matplotlib.rc_context(cast(Any, RC)):
        yield


def new_figure(figsize: tuple[float, float] = WIDE, **subplots: Any) -> tuple[Figure, Any]:
    """A figure on an Agg canvas with constrained layout, and its axes.

    Parameters
    ----------
    figsize : size [in].
    **subplots : passed to :meth:`Figure.subplots` (``nrows``, ``ncols``, ``sharex`` ...).

    Returns
    -------
    (figure, axes) as :meth:`Figure.subplots` returns them.
    """
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(**subplots)
    return fig, axes


def thousands(ax: Axes, axis: str = "y", decimals: int = 0) -> None:
    """Format an axis' tick labels with thousands separators."""
    fmt = FuncFormatter(lambda v, _pos: f"{v:,.{decimals}f}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def empty_note(ax: Axes, text: str) -> None:
    """Write ``text`` in the middle of an axes that has nothing to show."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            fontsize=11, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def legend_below(ax: Axes, ncol: int = 4, **kw: Any) -> None:
    """A legend under the axes (keeps the plot area free)."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=ncol, frameon=False, **kw)


def date_axis(ax: Axes, span_days: float) -> None:
    """Date ticks suited to a span of ``span_days`` days (days, weeks or months)."""
    if span_days <= 10:
        ax.xaxis.set_major_locator(mdates.DayLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b"))
        ax.xaxis.set_minor_locator(mdates.HourLocator(byhour=[6, 12, 18]))
    elif span_days <= 62:
        ax.xaxis.set_major_locator(mdates.WeekdayLocator(byweekday=mdates.MO))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    else:
        ax.xaxis.set_major_locator(mdates.MonthLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b"))
