"""The synthetic oncology reports: determinism, schema, lengths, disagreeing dates; the loaders."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from neuraltext.data.dates import find_dates
from neuraltext.clinical import (HELD_OUT_STYLES, ReportFileError, read_report_csv, read_report_folder,
                                 synthetic_patients, synthetic_reports)
from neuraltext.clinical import (DATE_KEYS, ENUMS, ISO_DATE_PATTERN, KEYS, LIST_KEYS, MET_SITES,
                                 normalize_text, normalize_tnm)


@pytest.fixture(scope="module")
def reports():
    return synthetic_reports(150, seed=3)


def test_seeded_and_deterministic():
    a, b, c = synthetic_reports(20, seed=1), synthetic_reports(20, seed=1), synthetic_reports(20, seed=2)
    assert [(r.id, r.text, r.truth) for r in a] == [(r.id, r.text, r.truth) for r in b]
    assert [r.text for r in a] != [r.text for r in c]


def test_truth_follows_the_schema(reports):
    assert {r.type for r in reports} == {"CA", "CC", "RC"}
    assert len({r.id for r in reports}) == len(reports)
    for r in reports:
        assert set(r.truth) == set(KEYS[r.type]) | {"CR", "document_type"}
        assert r.truth["CR"] == r.id and r.truth["document_type"] == r.type
        for key, value in r.truth.items():
            if key in DATE_KEYS:
                assert re.fullmatch(ISO_DATE_PATTERN, value), (key, value)
            elif key in ENUMS:
                assert value in ENUMS[key], (key, value)
            elif key == "TNM":
                assert normalize_tnm(value) == value
            elif key == "site_metastatique":
                assert set(value) <= set(MET_SITES)
            elif key in LIST_KEYS:
                assert isinstance(value, list) and value


def test_every_true_value_is_in_its_report(reports):
    """The ground truth never asks for something the report does not say (dates after normalisation)."""
    for r in reports:
        text, dates = normalize_text(r.text), {iso for _, _, iso in find_dates(r.text)}
        for key in KEYS[r.type]:
            value = r.truth[key]
            if key in DATE_KEYS:
                assert value in dates, (r.id, key, value)
            elif key in ("site_primitif", "type_histologique", "diagnostic", "site_biopsie"):
                assert normalize_text(value) in text, (r.id, key, value)


def test_styles_and_held_out_styles_differ(reports):
    held = [r for r in reports if r.style in HELD_OUT_STYLES]
    assert 0 < len(held) < len(reports)
    only_dev = synthetic_reports(30, seed=3, styles=("A", "B"))
    assert {r.style for r in only_dev} == {"A", "B"}
    ca_a = next(r for r in reports if r.type == "CA" and r.style == "A").text
    ca_c = next(r for r in reports if r.type == "CA" and r.style == "C").text
    assert "Diagnostic :" in ca_a and "Diagnostic :" not in ca_c


def test_about_one_percent_of_reports_are_long():
    reports = synthetic_reports(600, seed=0)
    long = [r for r in reports if len(r.text) > 7_000]  # > 3,072 SmolLM2 tokens (measured: 1.0% > 3,072)
    assert 0.002 < len(long) / len(reports) < 0.03


def test_diagnosis_dates_sometimes_disagree_within_a_patient():
    patients = synthetic_patients(200, seed=0)
    disagree = 0
    for p in patients:
        said = {r.truth["date_diagnostic"] for r in p.reports if r.type == "CC"}
        disagree += len(said) > 1
        for d in said:  # the truth, its month only, or a later date (the surgery) within 40 days
            gap = (dt.date.fromisoformat(d if len(d) == 10 else d + "-01") - p.date_diagnostic).days
            assert -31 < gap <= 40, (p.id, d, p.date_diagnostic)
    assert disagree > 5


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="styles"):
        synthetic_reports(2, styles=("Z",))
    with pytest.raises(ValueError, match="p_long"):
        synthetic_reports(2, p_long=2.0)


def test_read_folder_and_csv(tmp_path):
    (tmp_path / "123_CA_2016.txt").write_text("Prélevé le 01/12/2016", encoding="utf-8")
    (tmp_path / "9_CC_x.txt").write_text("Consultation du 24/08/2018", encoding="utf-8")
    got = read_report_folder(tmp_path)
    assert [(r.id, r.type) for r in got] == [("123_CA_2016", "CA"), ("9_CC_x", "CC")]
    (tmp_path / "nodtype.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ReportFileError, match="nodtype.txt.*document type"):
        read_report_folder(tmp_path)
    good = tmp_path / "r.csv"
    good.write_text('id,type,text\na1,CA,"Prélevé le 01/12/2016"\na2,RC,"RCP du 3 mars 2017"\n', encoding="utf-8")
    assert [r.id for r in read_report_csv(good)] == ["a1", "a2"]
    bad = tmp_path / "bad.csv"
    bad.write_text('id,type,text\na1,CA,"x"\na2,XX,"y"\n', encoding="utf-8")
    with pytest.raises(ReportFileError, match=r"bad.csv, row 3: document type 'XX'"):
        read_report_csv(bad)
    bad.write_text('id,text\na1,"x"\n', encoding="utf-8")
    with pytest.raises(ReportFileError, match="missing column"):
        read_report_csv(bad)
    bad.write_text('id,type,text\na1,CA,"x"\na1,CA,"y"\n', encoding="utf-8")
    with pytest.raises(ReportFileError, match="row 3: duplicate id 'a1'"):
        read_report_csv(bad)


def test_every_report_respects_the_tumour_table():
    """Clinically coherent: histology and grade allowed for the site, the site's treatments only, a
    hormonotherapy only for a hormone-sensitive cancer (issue 24: no "de haut grade ... bien différencié",
    no FOLFIRINOX for an ovarian or prostate cancer)."""
    from neuraltext.clinical import TUMOUR_TYPES, tumour_table

    all_drugs = {d for t in TUMOUR_TYPES.values() for d in t.treatments}
    assert "FOLFIRINOX" not in TUMOUR_TYPES["ovaire droit"].treatments + TUMOUR_TYPES["prostate"].treatments
    assert len(tumour_table()) == sum(len(t.histologies) for t in TUMOUR_TYPES.values())
    seen_drugs = set()
    for p in synthetic_patients(300, seed=5):
        kind = TUMOUR_TYPES[p.site]
        assert p.grade in kind.histologies[p.histology], (p.id, p.histology, p.grade)
        assert not ("haut grade" in p.histology and p.grade == "bien différencié")
        for r in p.reports:
            drugs = re.findall(r"Cure n°\d+ de (.+?) le ", r.text)
            assert set(drugs) <= set(kind.treatments), (r.id, p.site, drugs)
            seen_drugs |= set(drugs)
            for drug in all_drugs - set(kind.treatments):
                assert not re.search(rf"(?<![\w-]){re.escape(drug)}(?![\w-])", r.text), (r.id, p.site, drug)
            if r.type == "RC":
                assert r.truth["decision"] != "hormonothérapie" or kind.hormone_sensitive, (r.id, p.site)
    assert len(seen_drugs) > len(all_drugs) // 2  # the test saw most of the table
