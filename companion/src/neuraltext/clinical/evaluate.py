"""Use case 2, evaluation: per-field exact match and F1 against the synthetic ground truth.

For a single value, **exact match** is 1 when the extracted value equals the truth in the key's
canonical form (ISO dates, enumeration words, ``T1b N0 M1``, lower-cased text) and **F1** is the
token-overlap F1 of the two strings (SQuAD's: precision and recall over words), which gives partial
credit to ``carcinome canalaire`` against ``carcinome canalaire infiltrant``. For a list key, exact
match is set equality and F1 the set F1. A missing value (failed key, failed report) scores 0 against
a true value. Scores are averaged per ``(type, key)``, optionally split by style group (development
vs held-out styles).
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from neuraltext.clinical.schema import KEYS, normalize_text

__all__ = ["field_scores", "score_records"]


def _tokens(value) -> list[str]:
    return normalize_text(str(value)).split() if value not in (None, "") else []


def field_scores(pred, truth) -> tuple[float, float]:
    """``(exact, f1)`` of one predicted value against the true value."""
    if isinstance(truth, list) or isinstance(pred, list):
        p, t = set(pred or []), set(truth or [])
        if not p and not t:
            return 1.0, 1.0
        common = len(p & t)
        f1 = 0.0 if common == 0 else 2 * common / (len(p) + len(t))
        return float(p == t), f1
    if pred is None or truth is None:
        same = float(pred is None and truth is None)
        return same, same
    exact = float(normalize_text(str(pred)) == normalize_text(str(truth)))
    pt, tt = _tokens(pred), _tokens(truth)
    common = sum((Counter(pt) & Counter(tt)).values())
    if common == 0:
        return exact, exact
    precision, recall = common / len(pt), common / len(tt)
    return exact, max(exact, 2 * precision * recall / (precision + recall))


def score_records(records: list[dict], reports, by_style: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    """A table with one row per ``(group, type, key)``: ``n``, ``exact`` and ``f1`` (means in [0, 1]).

    ``records`` are :meth:`Extractor.extract` outputs, ``reports`` the synthetic reports (with
    ``truth``); ``by_style`` maps a group name to styles, e.g. ``{"dev": ("A", "B"), "held-out": ("C",)}``
    (default: one group ``"all"``).
    """
    by_id = {r["id"]: r for r in records}
    groups = by_style or {"all": None}
    rows = []
    for group, styles in groups.items():
        for report in reports:
            if styles is not None and report.style not in styles:
                continue
            values = by_id.get(report.id, {}).get("values", {})
            for key in KEYS[report.type]:
                exact, f1 = field_scores(values.get(key), report.truth[key])
                rows.append((group, report.type, key, exact, f1))
    frame = pd.DataFrame(rows, columns=["group", "type", "key", "exact", "f1"])
    return (frame.groupby(["group", "type", "key"], sort=False)
            .agg(n=("exact", "size"), exact=("exact", "mean"), f1=("f1", "mean")).reset_index())
