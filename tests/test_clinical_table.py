"""The patient table: date reconciliation rules, sets and indicators, provenance, export."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from neuraltext.clinical import synthetic_patients
from neuraltext.clinical import Extractor
from neuraltext.clinical import RulesBackend
from neuraltext.clinical import export_table, patient_table, reconcile_dates


def rec(rid, kind, flags=None, state="extracted", **values):
    return {"id": rid, "type": kind, "state": state, "values": values, "flags": flags or {}}


def test_reconcile_dates_earliest_with_precision_rule():
    assert reconcile_dates([]) == (None, None, [], False)
    assert reconcile_dates([("2015-11-26", "a"), ("2015-12-20", "b")]) == \
        ("2015-11-26", "a", ["2015-11-26", "2015-12-20"], True)
    # the month only and a full date of that month are one fact: no conflict, the full date wins
    assert reconcile_dates([("2015-11", "a"), ("2015-11-26", "b")]) == \
        ("2015-11-26", "b", ["2015-11", "2015-11-26"], False)
    assert reconcile_dates([("2015-10", "a"), ("2015-11-26", "b")])[:2] == ("2015-10", "a")


def test_patient_row_rules():
    records = [
        rec("P1_CC_01", "CC", date_consultation="2016-01-10", date_diagnostic="2015-12-20", TNM="T1 N0 M0",
            stade_tumeur="IA", metastases="absence", site_metastatique=[], liste_cancers=["adénocarcinome pulmonaire"]),
        rec("P1_CC_02", "CC", date_consultation="2017-03-01", date_diagnostic="2015-11-26", TNM="T1 N0 M1",
            stade_tumeur="IV", metastases="présence", site_metastatique=["os", "foie"],
            liste_cancers=["adénocarcinome pulmonaire", "mélanome cutané"]),
        rec("P1_CA_00", "CA", date_creation="2015-11-20", site_primitif="poumon", type_histologique="adénocarcinome"),
        rec("P1_CA_03", "CA", date_creation="2017-02-20", site_primitif="foie", type_histologique="adénocarcinome",
            flags={"site_primitif": "possible hallucination: text not in the report"}),
        rec("P1_RC_04", "RC", state="failed"),
        rec("P2_CA_00", "CA", date_creation="2018-05-02", site_primitif="rectum"),
    ]
    table = patient_table(records)
    assert list(table.patient) == ["P1", "P2"]
    p1, p2 = table.iloc[0], table.iloc[1]
    assert p1.date_diagnostic == "2015-11-26" and p1.date_diagnostic_source == "P1_CC_02"
    assert bool(p1.date_diagnostic_conflict) and p1.date_diagnostic_values == "2015-11-26|2015-12-20"
    assert p1.TNM == "T1 N0 M1" and p1.stade_tumeur == "IV" and p1.TNM_source == "P1_CC_02"  # latest CC
    assert p1.metastases == "présence" and p1.site_metastatique == "foie|os"
    assert (p1.met_os, p1.met_foie, p1.met_cerveau) == (1, 1, 0)
    assert p1.site_primitif == "poumon" and p1.site_primitif_n_values == 1  # the flagged "foie" is not used
    assert p1.liste_cancers == "adénocarcinome pulmonaire|mélanome cutané" and p1.n_cancers == 2
    assert (p1.n_reports, p1.n_CA, p1.n_CC, p1.n_RC, p1.n_failed, p1.n_flagged) == (5, 2, 2, 1, 1, 1)
    assert p2.date_diagnostic == "2018-05-02" and p2.date_diagnostic_rule.startswith("earliest CA")


def test_table_on_synthetic_patients_recovers_the_true_diagnosis_date(tmp_path):
    patients = synthetic_patients(60, seed=4, styles=("A", "B"))
    ex = Extractor(RulesBackend())
    records = [ex.extract(r) for p in patients for r in p.reports]
    table = patient_table(records).set_index("patient")
    with_cc = [p for p in patients if any(r.type == "CC" and r.truth["date_diagnostic"] == p.date_diagnostic.isoformat()
                                          for r in p.reports)]
    assert with_cc
    for p in with_cc:  # the true date is the earliest one any consultation gives
        assert table.loc[p.id, "date_diagnostic"] == p.date_diagnostic.isoformat()
    assert table.date_diagnostic_conflict.any()
    files = export_table(table.reset_index(), tmp_path / "patients")
    assert files[0].suffix == ".csv"
    back = pd.read_csv(files[0])
    assert len(back) == len(table)
    if len(files) == 2:
        assert pd.read_parquet(files[1]).shape == back.shape


def test_export_is_atomic_a_failed_write_leaves_the_previous_table(tmp_path, monkeypatch):
    table = pd.DataFrame({"patient": ["P1", "P2"], "n_reports": [2, 3]})
    (csv,) = [p for p in export_table(table, tmp_path / "patients") if p.suffix == ".csv"]
    before = csv.read_bytes()

    def half_then_crash(self, path, **kwargs):
        with open(path, "w", encoding="utf-8") as f:
            f.write("patient,n_rep")  # the disk filled up, or the process was killed
        raise OSError("no space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_crash)
    with pytest.raises(OSError, match="no space"):
        export_table(table.assign(n_reports=[9, 9]), tmp_path / "patients")
    assert csv.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [csv, csv.with_suffix(".parquet")]
                                                                if p.exists())  # no temporary file left


def test_two_writers_never_share_a_temporary_file(tmp_path):
    from neuraltext.clinical import atomic_write

    target, temps, barrier = tmp_path / "patients.csv", [], threading.Barrier(2)

    def writer(text):
        def write(tmp):
            temps.append(tmp)
            barrier.wait(timeout=10)  # both writers hold their temporary file at the same time
            tmp.write_text(text * 1000, encoding="utf-8")
        atomic_write(target, write)

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(temps)) == 2 and all(t.parent == tmp_path for t in temps)
    assert target.read_text(encoding="utf-8") in ("a" * 1000, "b" * 1000)  # one whole table, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["patients.csv"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # not mkstemp's private 0600


def _umask():
    import os

    mask = os.umask(0o22)
    os.umask(mask)
    return mask
