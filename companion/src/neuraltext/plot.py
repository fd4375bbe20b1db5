"""The course's recurring pictures: loss curves, 2-D word maps, attention heatmaps.

Each function draws on a Matplotlib ``Axes`` (a new figure when ``ax`` is None) and returns it, so
a notebook cell can add a title or combine several plots in one figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["loss_curve", "embedding_map", "heatmap"]


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, dpi=100)
    return ax


def loss_curve(curves: dict[str, Sequence[float]] | Sequence[float], ax=None, smooth: int = 1,
               xlabel: str = "step", ylabel: str = "loss", logy: bool = False, figsize=(6, 3.5)):
    """Plot one or several loss curves (a dict ``label -> values``), optionally smoothed by a running
    mean over ``smooth`` points."""
    ax = _axes(ax, figsize)
    if not isinstance(curves, dict):
        curves = {"": curves}
    for label, values in curves.items():
        y = np.asarray(values, dtype=float)
        if y.size == 0:
            continue
        if smooth > 1 and y.size >= smooth:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
            x = np.arange(smooth - 1, smooth - 1 + y.size)
        else:
            x = np.arange(y.size)
        ax.plot(x, y, label=label or None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if any(curves):
        ax.legend()
    ax.grid(alpha=0.3)
    return ax


def embedding_map(points: np.ndarray, labels: Sequence[str], groups: Sequence[str] | None = None,
                  ax=None, figsize=(6, 5), fontsize: int = 9, title: str | None = None,
                  xlabel: str | None = None, ylabel: str | None = None, max_labels: int | None = None):
    """Scatter 2-D points with a word label next to each; ``groups`` (one name per point) colours
    them and adds a legend.

    Labels are placed one by one at the first of eight positions around their point whose box
    overlaps no label placed before (a greedy version of what adjustText does); a label that finds
    no free place is dropped rather than printed over another one. ``max_labels`` keeps only the
    labels of the points farthest from the centre (the crowded middle stays readable).
    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {points.shape}")
    if len(labels) != len(points):
        raise ValueError(f"{len(labels)} labels for {len(points)} points")
    ax = _axes(ax, figsize)
    if groups is None:
        ax.scatter(points[:, 0], points[:, 1], s=15)
    else:
        if len(groups) != len(points):
            raise ValueError(f"{len(groups)} group names for {len(points)} points")
        for name in dict.fromkeys(groups):
            idx = [i for i, g in enumerate(groups) if g == name]
            ax.scatter(points[idx, 0], points[idx, 1], s=15, label=name)
        ax.legend(fontsize=fontsize, loc="best")
    order = np.argsort(-np.linalg.norm(points - points.mean(0), axis=1), kind="stable")
    if max_labels is not None:
        order = order[:max_labels]
    _place_labels(ax, points, labels, order, fontsize)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


# offsets (points) tried around a marker, in this order: right, left, above, below, then diagonals
_OFFSETS = [(4, 0, "left", "center"), (-4, 0, "right", "center"), (0, 5, "center", "bottom"),
            (0, -5, "center", "top"), (4, 4, "left", "bottom"), (-4, 4, "right", "bottom"),
            (4, -4, "left", "top"), (-4, -4, "right", "top")]


def _place_labels(ax, points, labels, order, fontsize):
    """Greedy non-overlapping placement of text labels (display coordinates, Agg renderer)."""
    fig = ax.figure
    ax.relim()
    ax.autoscale_view()
    ax.margins(0.12)
    renderer = fig.canvas.get_renderer()
    taken = []  # bounding boxes of the labels already placed
    for i in order:
        for dx, dy, ha, va in _OFFSETS:
            text = ax.annotate(labels[i], points[i], xytext=(dx, dy), textcoords="offset points",
                               fontsize=fontsize, ha=ha, va=va)
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(other) for other in taken):
                taken.append(box)
                break
            text.remove()


def heatmap(weights, xlabels: Sequence[str] | None = None, ylabels: Sequence[str] | None = None,
            ax=None, figsize=(5, 4), cmap: str = "viridis", title: str | None = None,
            xlabel: str = "source (key)", ylabel: str = "target (query)", colorbar: bool = True,
            fontsize: float | None = None, vmax: float | None = None):
    """Draw a matrix of attention weights: one row per query/output step, one column per key/input.

    Tick labels are at least 8 points (``fontsize`` overrides); make the figure wide enough for
    long sources rather than shrinking the labels. The colour bar (on by default) gives the scale
    of the weights, from 0 to ``vmax`` (the largest weight when None).
    """
    w = weights.detach().cpu().numpy() if hasattr(weights, "detach") else np.asarray(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D matrix, got shape {w.shape}")
    if xlabels is not None and len(xlabels) != w.shape[1]:
        raise ValueError(f"{len(xlabels)} x labels for {w.shape[1]} columns")
    if ylabels is not None and len(ylabels) != w.shape[0]:
        raise ValueError(f"{len(ylabels)} y labels for {w.shape[0]} rows")
    ax = _axes(ax, figsize)
    size = fontsize if fontsize is not None else 9 if max(w.shape) <= 20 else 8
    image = ax.imshow(w, cmap=cmap, aspect="auto", vmin=0.0, vmax=vmax)
    if xlabels is not None:
        ax.set_xticks(range(len(xlabels)), labels=list(xlabels), rotation=90, fontsize=size)
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), labels=list(ylabels), fontsize=size)
    ax.set_xlabel(xlabel, fontsize=size + 1)
    ax.set_ylabel(ylabel, fontsize=size + 1)
    if title:
        ax.set_title(title, fontsize=size + 2)
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("attention weight", fontsize=size)
        bar.ax.tick_params(labelsize=size)
    return ax
