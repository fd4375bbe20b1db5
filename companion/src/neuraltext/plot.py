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
                  ax=None, figsize=(6, 5), fontsize: int = 9, title: str | None = None):
    """Scatter 2-D points with a word label next to each; ``groups`` (one name per point) colours
    them and adds a legend."""
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
    for (x, y), word in zip(points, labels):
        ax.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=fontsize)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


def heatmap(weights, xlabels: Sequence[str] | None = None, ylabels: Sequence[str] | None = None,
            ax=None, figsize=(5, 4), cmap: str = "viridis", title: str | None = None,
            xlabel: str = "source (key)", ylabel: str = "target (query)", colorbar: bool = True):
    """Draw a matrix of attention weights: one row per query/output step, one column per key/input."""
    w = weights.detach().cpu().numpy() if hasattr(weights, "detach") else np.asarray(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D matrix, got shape {w.shape}")
    if xlabels is not None and len(xlabels) != w.shape[1]:
        raise ValueError(f"{len(xlabels)} x labels for {w.shape[1]} columns")
    if ylabels is not None and len(ylabels) != w.shape[0]:
        raise ValueError(f"{len(ylabels)} y labels for {w.shape[0]} rows")
    ax = _axes(ax, figsize)
    image = ax.imshow(w, cmap=cmap, aspect="auto", vmin=0.0)
    if xlabels is not None:
        ax.set_xticks(range(len(xlabels)), labels=list(xlabels), rotation=90, fontsize=8)
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), labels=list(ylabels), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax
