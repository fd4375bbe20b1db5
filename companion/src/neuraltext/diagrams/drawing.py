"""The drawing helpers of the book's diagrams: one palette, boxes and arrows in data coordinates."""

from __future__ import annotations

__all__ = ["COLORS", "FONTSIZE", "new_figure", "box", "arrow"]

# one palette for the whole book: inputs, states, gates/operations, attention, outputs
COLORS = {"input": "#dbe9f6", "state": "#fde7c8", "gate": "#d9f0d3", "op": "#f2f2f2",
          "attention": "#f6d5e5", "output": "#e5dcf2", "norm": "#fff5b8"}
FONTSIZE = 11


def new_figure(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]):
    """A figure with one axis-free drawing area in data coordinates ``xlim`` x ``ylim``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def box(ax, center: tuple[float, float], text: str, width: float = 1.4, height: float = 0.6,
        kind: str = "op", fontsize: float = FONTSIZE, round_: bool = False):
    """A labelled box (``kind`` picks the colour from `COLORS`); returns its (x, y, w, h)."""
    from matplotlib.patches import Circle, FancyBboxPatch

    x, y = center
    if round_:
        ax.add_patch(Circle((x, y), height / 2, facecolor=COLORS[kind], edgecolor="black", lw=1.2))
    else:
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                    boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor=COLORS[kind], edgecolor="black", lw=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return (x, y, width, height)


def arrow(ax, start: tuple[float, float], end: tuple[float, float], text: str | None = None,
          color: str = "black", style: str = "-|>", rad: float = 0.0, fontsize: float = FONTSIZE - 1,
          text_offset: tuple[float, float] = (0.08, 0.0), lw: float = 1.3):
    """An arrow from ``start`` to ``end`` (data coordinates), optionally labelled at its middle."""
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=14, color=color, lw=lw,
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0))
    if text:
        mx, my = (start[0] + end[0]) / 2 + text_offset[0], (start[1] + end[1]) / 2 + text_offset[1]
        ax.text(mx, my, text, fontsize=fontsize, ha="left", va="center", color=color)
