"""Use case 1, pictures of the labels: which labels come together, and what a classifier mistakes
one label for.

* :func:`cooccurrence` -- ``C = Y^T Y`` for the ``(n, 11)`` 0/1 label matrix ``Y``: ``C[i, j]`` counts
  the sentences that carry both labels ``i`` and ``j``; the diagonal is each label's support.
* :func:`label_confusion` -- the multilabel analogue of a confusion matrix: among the sentences that
  truly carry label ``i``, the share in which label ``j`` was predicted,
  ``M[i, j] = #{n : Y[n, i] = 1 and P[n, j] = 1} / #{n : Y[n, i] = 1}``. The diagonal is each label's
  recall; an off-diagonal cell says which other label the classifier put on those sentences (a
  neutral sentence read as positive shows at ``M[0, +]``). Rows need not sum to 1: several labels
  can be predicted, or none.
* :func:`label_map` -- draws either table as an annotated heatmap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from neuraltext.family.data import LABELS

__all__ = ["cooccurrence", "label_confusion", "label_map"]


def _labels_matrix(name: str, y, labels: Sequence[str]) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] != len(labels):
        raise ValueError(f"{name} must be an (n, {len(labels)}) 0/1 matrix (one column per label), got shape {y.shape}")
    bad = sorted(set(np.unique(y).tolist()) - {0, 1})
    if bad:
        raise ValueError(f"{name} must hold 0/1 labels, got the values {bad[:5]}")
    return y.astype(np.int64)


def cooccurrence(y, labels: Sequence[str] = LABELS) -> pd.DataFrame:
    """``Y^T Y``: how many sentences carry both labels of each pair (labels x labels, ints)."""
    y = _labels_matrix("y", y, labels)
    return pd.DataFrame(y.T @ y, index=list(labels), columns=list(labels))


def label_confusion(y_true, y_pred, labels: Sequence[str] = LABELS) -> pd.DataFrame:
    """``M[i, j]``: the share of the sentences truly labelled ``i`` on which ``j`` was predicted
    (rows: true label, columns: predicted label; NaN for a label with no sentence)."""
    t, p = _labels_matrix("y_true", y_true, labels), _labels_matrix("y_pred", y_pred, labels)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {t.shape} and {p.shape}")
    support = t.sum(axis=0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (t.T @ p) / support[:, None]
    return pd.DataFrame(m, index=list(labels), columns=list(labels))


def label_map(table: pd.DataFrame, ax=None, fmt: str = "{:.2f}", title: str | None = None,
              xlabel: str = "label", ylabel: str = "label", vmax: float | None = None, figsize=(5, 4.2)):
    """Draw a labels x labels table as a heatmap with its value written in each cell."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, dpi=100)
    values = table.to_numpy(dtype=float)
    top = np.nanmax(values) if vmax is None else vmax
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=top)
    ax.set_xticks(range(table.shape[1]), labels=list(table.columns))
    ax.set_yticks(range(table.shape[0]), labels=list(table.index))
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):  # dark text on light cells, light on dark
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                    color="white" if v > 0.6 * top else "black")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax
