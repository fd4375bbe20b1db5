"""The lecture's own CA and CC reports and the study's JSON answers, unedited (issue 24, section 2).

The texts live in the package (``neuraltext.clinical.lecture``, so that the chapter reads them on Colab
too), copied verbatim from ``course-material/000_20477971f080d78d.txt`` and checked against it here.
Grounding on the *original* texts must accept the study's
correct answers, including the inferred ones (``TNM "T1b N0 M1"`` and ``stade "IV"``: the report writes
"Classification T1b N0, stade IA" at diagnosis, then a metastatic progression), and the rules baseline
is shown as it is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neuraltext.clinical import KEYS, Extractor, Report, RulesBackend, grounding_problem, parse_answer
from neuraltext.clinical import lecture as lecture_data

SOURCE = Path(__file__).resolve().parents[2] / "shared" / lecture_data.SOURCE


def lecture(kind: str) -> tuple[Report, dict[str, str]]:
    """The report and the study's raw answers (the slides' JSON is not strict JSON: read its pairs)."""
    report = {"CA": lecture_data.LECTURE_CA, "CC": lecture_data.LECTURE_CC}[kind]
    return report, report.truth


def test_the_package_texts_are_the_lecture_verbatim():
    if not SOURCE.exists():
        pytest.skip("the course material is not beside this checkout")
    lines = SOURCE.read_text(encoding="utf-8").splitlines(keepends=True)
    assert set(lecture_data.SOURCE_LINES) == {"CA_REPORT_TEXT", "CA_ANSWER_TEXT", "CC_REPORT_TEXT", "CC_ANSWER_TEXT"}
    for name, (first, last) in lecture_data.SOURCE_LINES.items():
        assert getattr(lecture_data, name) == "".join(lines[first - 1:last]), name


def test_the_lecture_reports_and_answers():
    assert lecture_data.LECTURE_CA.type == "CA" and lecture_data.LECTURE_CC.type == "CC"
    assert lecture_data.LECTURE_CC.id == "201400423TG_CC_125302080_20180824.pdf"
    cc = lecture_data.LECTURE_CC.truth
    assert (cc["TNM"], cc["stade_tumeur"], cc["date_diagnostic"]) == ("T1b N0 M1", "IV", "26/11/2015")
    assert "M1" not in lecture_data.CC_REPORT_TEXT  # the report never writes the M1 the study infers
    assert lecture_data.LECTURE_CA.truth["date_creation"] == "01/12/2016"  # the study's dd/mm/yyyy
    with pytest.raises(ValueError, match="answer_text must hold"):
        lecture_data.study_answers('{"TNM": "T1 N0 M0"}')


def test_grounding_accepts_the_studys_answers_on_the_original_ca():
    report, answers = lecture("CA")
    for key in KEYS["CA"]:
        value = parse_answer(key, answers[key])
        assert grounding_problem(key, value, report.text) is None, (key, value)


def test_grounding_accepts_the_studys_answers_on_the_original_cc_inferred_ones_included():
    report, answers = lecture("CC")
    values = {key: parse_answer(key, answers[key]) for key in KEYS["CC"]}
    assert values["TNM"] == "T1b N0 M1" and values["stade_tumeur"] == "IV"
    assert values["liste_cancers"] == ["adénocarcinome pulmonaire", "carcinome épidermoïde orl"]
    assert values["site_metastatique"] == ["ganglionnaire", "os", "poumon"]
    problems = {key: grounding_problem(key, value, report.text) for key, value in values.items()}
    # The slide shows an excerpt of the consultation: its dictation and signature dates are not in it
    # (the study annotates them "date de dictée", "date de signature électronique"), so they are flagged.
    assert problems == {**{key: None for key in KEYS["CC"]},
                        "date_consultation": "date not in the report", "date_edition": "date not in the report"}
    # inferred values need their evidence: without the metastatic progression, neither is grounded
    at_diagnosis = report.text.replace("métastatique au niveau osseux, ganglionnaire, et pulmonaire", "")
    assert grounding_problem("TNM", "T1b N0 M1", at_diagnosis) == "TNM not in the report"
    assert grounding_problem("stade_tumeur", "IV", at_diagnosis) is not None
    assert grounding_problem("TNM", "T1b N1 M1", report.text) == "TNM not in the report"  # N is not inferred


def test_the_rules_baseline_on_the_lecture_reports():
    """What the rules (written on our synthetic styles A and B) really do on the lecture's texts."""
    ca, answers = lecture("CA")
    record = Extractor(RulesBackend()).extract(ca)
    study = {key: parse_answer(key, answers[key]) for key in KEYS["CA"]}
    assert {k: v for k, v in record["values"].items() if k in KEYS["CA"] and v == study[k]}.keys() == \
        set(KEYS["CA"]) - {"date_validation", "type_histologique"}
    assert record["values"]["date_validation"] is None  # the excerpt has no "Validé le" line
    assert record["values"]["type_histologique"] == "carcinome épidermoïde"  # our schema: the grade apart
    assert record["flags"] == {"date_validation": "not found in the report"}

    cc, _ = lecture("CC")
    record = Extractor(RulesBackend()).extract(cc)
    values = record["values"]
    assert values["metastases"] == "présence" and values["site_metastatique"] == ["ganglionnaire", "os", "poumon"]
    assert values["stade_tumeur"] == "IA"  # the stage written at diagnosis, not the study's inferred IV
    assert values["TNM"] is None  # no complete triple is written: the rule needs one
    assert values["liste_cancers"] == ["adénocarcinome pulmonaire lobaire supérieur droit de 3 cm de grand axe"]
    assert {k for k, v in values.items() if v is None} == {"TNM", "date_consultation", "date_diagnostic",
                                                           "date_edition"}
