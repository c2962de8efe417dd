"""A small hand-drawn Sankey (alluvial) diagram: nodes in columns, curved bands between them.

``matplotlib.sankey`` draws one node with in- and outflows; the energy cascade needs
several sources and sinks, so this module draws the bands itself (cubic Bézier paths).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path as MplPath

#: Node width and the gap between nodes of a column, as fractions of the axes.
NODE_W = 0.025
GAP = 0.05
#: Smallest drawn node height (so tiny nodes stay visible) [fraction of the axes].
MIN_H = 0.006


@dataclass(frozen=True)
class Flow:
    """One band: ``value`` [any energy unit] from node ``src`` to node ``dst``."""

    src: str
    dst: str
    value: float
    color: str


@dataclass
class _Node:
    name: str
    col: int
    value: float
    x: float = 0.0
    y0: float = 0.0  # bottom
    h: float = 0.0
    out_cursor: float = 0.0  # next free y (from the top) for outgoing bands
    in_cursor: float = 0.0


def _band(ax: Axes, x0: float, a0: float, a1: float, x1: float, b0: float, b1: float,
          color: str) -> None:
    """A band from the vertical segment (x0, a0..a1) to (x1, b0..b1), a0 > a1, b0 > b1."""
    xm = (x0 + x1) / 2.0
    verts = [(x0, a0), (xm, a0), (xm, b0), (x1, b0), (x1, b1), (xm, b1), (xm, a1), (x0, a1),
             (x0, a0)]
    codes = [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4, MplPath.LINETO,
             MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4, MplPath.CLOSEPOLY]
    ax.add_patch(PathPatch(MplPath(verts, codes), facecolor=color, edgecolor="none",
                           alpha=0.55, zorder=1))


def draw_sankey(ax: Axes, columns: Sequence[Sequence[str]], flows: Sequence[Flow],
                node_colors: dict[str, str], labels: dict[str, str]) -> None:
    """Draw the diagram into ``ax`` (axes limits 0-1, axis hidden).

    Parameters
    ----------
    ax : target axes.
    columns : node names per column, left to right, top to bottom.
    flows : the bands; zero or negative values are skipped.
    node_colors : fill colour of each node.
    labels : text written beside each node (left of the first column, right of the
        last, above the nodes of middle columns).
    """
    flows = [f for f in flows if f.value > 0]
    inflow: dict[str, float] = {}
    outflow: dict[str, float] = {}
    for f in flows:
        outflow[f.src] = outflow.get(f.src, 0.0) + f.value
        inflow[f.dst] = inflow.get(f.dst, 0.0) + f.value
    nodes: dict[str, _Node] = {}
    for c, names in enumerate(columns):
        for n in names:
            v = max(inflow.get(n, 0.0), outflow.get(n, 0.0))
            if v > 0:
                nodes[n] = _Node(n, c, v)
    ncol = len(columns)
    col_tot = [sum(nd.value for nd in nodes.values() if nd.col == c) for c in range(ncol)]
    col_n = [sum(1 for nd in nodes.values() if nd.col == c) for c in range(ncol)]
    usable = 0.92
    scale = min((usable - GAP * max(k - 1, 0)) / t for t, k in zip(col_tot, col_n, strict=True)
                if t > 0)
    for c in range(ncol):
        members = [nodes[n] for n in columns[c] if n in nodes]
        heights = [max(nd.value * scale, MIN_H) for nd in members]
        total = sum(heights) + GAP * max(len(members) - 1, 0)
        top = 0.5 + total / 2.0
        x = c / (ncol - 1) * (1 - NODE_W) if ncol > 1 else 0.5
        for nd, h in zip(members, heights, strict=True):
            nd.x, nd.h, nd.y0 = x, h, top - h
            nd.out_cursor = nd.in_cursor = top
            top -= h + GAP
    flows = [f for f in flows if f.src in nodes and f.dst in nodes]
    # bands leave a node in the (top-down) order of their destinations and enter in the
    # order of their sources, so that they cross as little as possible
    rank = {n: -(nd.y0 + nd.h / 2.0) for n, nd in nodes.items()}
    start: dict[int, float] = {}
    for k in sorted(range(len(flows)), key=lambda k: (flows[k].src, rank[flows[k].dst])):
        s = nodes[flows[k].src]
        hs = flows[k].value * s.h / s.value  # stretched with MIN_H
        start[k] = s.out_cursor
        s.out_cursor -= hs
    for k in sorted(range(len(flows)), key=lambda k: (flows[k].dst, rank[flows[k].src])):
        f = flows[k]
        s, d = nodes[f.src], nodes[f.dst]
        hs = f.value * s.h / s.value
        hd = f.value * d.h / d.value
        _band(ax, s.x + NODE_W, start[k], start[k] - hs, d.x, d.in_cursor, d.in_cursor - hd,
              f.color)
        d.in_cursor -= hd
    for nd in nodes.values():
        ax.add_patch(Rectangle((nd.x, nd.y0), NODE_W, nd.h, facecolor=node_colors.get(nd.name,
                     "#444444"), edgecolor="white", linewidth=0.5, zorder=3))
        text = labels.get(nd.name, nd.name)
        yc = nd.y0 + nd.h / 2.0
        if nd.col == 0:
            ax.text(nd.x - 0.01, yc, text, ha="right", va="center", fontsize=10, zorder=4)
        elif nd.col == ncol - 1:
            ax.text(nd.x + NODE_W + 0.01, yc, text, ha="left", va="center", fontsize=10,
                    zorder=4)
        else:
            ax.text(nd.x + NODE_W / 2, nd.y0 + nd.h + 0.012, text, ha="center", va="bottom",
                    fontsize=10, zorder=4,
                    bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
    ax.set_xlim(-0.28, 1.32)
    ax.set_ylim(0.0, 1.0)
    ax.axis("off")
