"""Use case 2, the patient table: a patient's list of per-report dicts -> one long row.

The study: "a patient is a list of key-value dictionaries, one per report"; the table a clinician
analyses has one row per patient. The rules, explicit because reports disagree:

* **diagnosis date** = the *earliest* date reported as a diagnosis date by a consultation (``CC``),
  a month-only date (``2015-11``) counting as the first of its month but giving way to a full date
  of the same month (more precise, same fact). Every distinct value is kept in
  ``date_diagnostic_values``; ``date_diagnostic_conflict`` is True when they disagree beyond that
  precision rule. With no consultation date, the earliest pathology sample (``CA date_creation``)
  is used and ``date_diagnostic_rule`` says so.
* **single-valued descriptors** (primary site, histology, grade) = the most frequent value over the
  reports (ties: the earliest report), disagreement counted in ``<col>_n_values``;
  **TNM and stage** = the *latest* consultation's (they evolve); **metastases** = ``présence`` if any
  report says so.
* **multi-valued fields** (metastatic sites, earlier cancers) = the union over reports, stored as a
  ``|``-joined sorted set, plus one 0/1 indicator column per metastatic site (``met_os``...).
* **provenance**: ``<col>_source`` holds the report id each value came from.
* flagged values (possible hallucinations) are **not** used; ``n_flagged`` counts them.

:func:`export_table` writes CSV, and Parquet when ``pyarrow`` is installed, each through a temporary file
renamed into place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from neuraltext.clinical.results import atomic_write
from neuraltext.clinical.schema import MET_SITES

__all__ = ["patient_of", "reconcile_dates", "patient_row", "patient_table", "export_table"]


def patient_of(report_id: str) -> str:
    """The patient of a report id: the part before the first ``_`` (the study's and our ids)."""
    return report_id.split("_", 1)[0]


def _date_key(iso: str) -> str:
    return iso if len(iso) == 10 else iso + "-01"


def reconcile_dates(values: list[tuple[str, str]]) -> tuple[str | None, str | None, list[str], bool]:
    """``[(iso, source id)]`` -> ``(date, source, distinct values, conflict)``: the earliest date,
    a month-only value yielding to a full date of the same month."""
    if not values:
        return None, None, [], False
    distinct = sorted({v for v, _ in values})
    full_months = {v[:7] for v in distinct if len(v) == 10}
    facts = [v for v in distinct if not (len(v) == 7 and v in full_months)]  # "2015-11" + "2015-11-26": one fact
    best = min(facts, key=_date_key)
    source = min(s for v, s in values if v == best)
    return best, source, distinct, len(facts) > 1


def _usable(record: dict) -> dict:
    """A record's values without the flagged ones (possible hallucinations, failures)."""
    if record.get("state") == "failed":
        return {}
    return {k: v for k, v in record.get("values", {}).items() if k not in record.get("flags", {})}


def _by_date(record: dict) -> str:
    v = _usable(record)
    return _date_key(v.get("date_consultation") or v.get("date_rcp") or v.get("date_creation") or "9999-12")


def _mode(pairs: list[tuple[object, str]]) -> tuple[object, str | None, int]:
    pairs = [(v, s) for v, s in pairs if v not in (None, "")]
    if not pairs:
        return None, None, 0
    counts = Counter(v for v, _ in pairs)
    top = max(counts.values())
    value, source = next((v, s) for v, s in pairs if counts[v] == top)
    return value, source, len(counts)


def patient_row(patient: str, records: list[dict]) -> dict:
    """The one row of ``patient`` from their report records (any order)."""
    records = sorted(records, key=_by_date)
    used = [(r["id"], r.get("type"), _usable(r)) for r in records]
    row: dict = {"patient": patient, "n_reports": len(records)}
    for t in ("CA", "CC", "RC"):
        row[f"n_{t}"] = sum(r.get("type") == t for r in records)
    row["n_failed"] = sum(r.get("state") == "failed" for r in records)
    row["n_flagged"] = sum(len(r.get("flags", {})) for r in records)

    diag = [(v["date_diagnostic"], rid) for rid, t, v in used if t == "CC" and v.get("date_diagnostic")]
    rule = "earliest CC date_diagnostic"
    if not diag:
        diag = [(v["date_creation"], rid) for rid, t, v in used if t == "CA" and v.get("date_creation")]
        rule = "earliest CA date_creation (no CC diagnosis date)" if diag else "none"
    date, source, distinct, conflict = reconcile_dates(diag)
    row |= {"date_diagnostic": date, "date_diagnostic_source": source, "date_diagnostic_values": "|".join(distinct),
            "date_diagnostic_conflict": conflict, "date_diagnostic_rule": rule}

    for col in ("site_primitif", "type_histologique", "grade_histologique"):
        value, source, n = _mode([(v.get(col), rid) for rid, _, v in used])
        row |= {col: value, f"{col}_source": source, f"{col}_n_values": n}
    for col in ("TNM", "stade_tumeur"):
        latest = [(v[col], rid) for rid, t, v in used if t == "CC" and v.get(col)]
        row |= {col: latest[-1][0] if latest else None, f"{col}_source": latest[-1][1] if latest else None}
    mets = [(v.get("metastases"), rid) for rid, _, v in used if v.get("metastases")]
    present = [rid for m, rid in mets if m == "présence"]
    row["metastases"] = "présence" if present else ("absence" if mets else None)
    row["metastases_source"] = present[0] if present else (mets[0][1] if mets else None)

    sites = sorted({s for _, _, v in used for s in (v.get("site_metastatique") or [])})
    row["site_metastatique"] = "|".join(sites)
    for site in MET_SITES:
        row[f"met_{site}"] = int(site in sites)
    cancers = sorted({c for _, _, v in used for c in (v.get("liste_cancers") or [])})
    row["liste_cancers"] = "|".join(cancers)
    row["n_cancers"] = len(cancers)
    return row


def patient_table(records: Iterable[dict], patient: Callable[[str], str] = patient_of) -> pd.DataFrame:
    """One row per patient (sorted by patient id) from report records."""
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(patient(record["id"]), []).append(record)
    return pd.DataFrame([patient_row(p, rs) for p, rs in sorted(groups.items())])


def export_table(table: pd.DataFrame, path: str | Path) -> list[Path]:
    """Write ``path.csv`` and, if ``pyarrow`` is installed, ``path.parquet``; return the files written.

    Each file is written through a unique temporary file in the same folder, then renamed
    (:func:`~neuraltext.clinical.results.atomic_write`): a reader never sees half a table, a crash
    leaves the previous table, and two runs writing at once never share a temporary file."""
    path = Path(path)
    written = [atomic_write(path.with_suffix(".csv"), lambda tmp: table.to_csv(tmp, index=False))]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return written  # CSV only: say so to the caller by the list's length
    written.append(atomic_write(path.with_suffix(".parquet"), lambda tmp: table.to_parquet(tmp, index=False)))
    return written
