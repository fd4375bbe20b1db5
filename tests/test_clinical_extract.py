"""Validation, grounding, the two passes and the final states, with the rules backend and test doubles."""

from __future__ import annotations

import pytest

from neuraltext.clinical import Report, synthetic_reports
from neuraltext.clinical import field_scores, score_records
from neuraltext.clinical import RETRY_FACTOR, STUDY_CONTEXT, ContextTooLong, ExtractConfig, Extractor
from neuraltext.clinical import RulesBackend
from neuraltext.clinical import KEYS
from neuraltext.clinical import InvalidAnswer, grounding_problem, is_repetitive, parse_answer

CA_TEXT = ("Prélevé le 01/12/2016\nEnregistré le 01/12/2016\n\nExamen n° [REDACTED]\n\nCR édité le : 05/12/2016\n"
           "Validé le : 05/12/2016\n\nLocalisation du prélèvement : Biopsie du psoas droit\n\n"
           "Diagnostic : Métastase d'un carcinome épidermoïde bien différencié de l'exo col\n")
CA = Report(id="P1_CA_00_20161201", type="CA", text=CA_TEXT)


@pytest.mark.parametrize("key,raw,expected", [
    ("date_creation", "01/12/2016", "2016-12-01"),
    ("date_diagnostic", "le 26 novembre 2015", "2015-11-26"),
    ("date_diagnostic", '{"date_diagnostic": "novembre 2015"}', "2015-11"),
    ("TNM", "pT1b, N0, cM1", "T1b N0 M1"),
    ("stade_tumeur", "stade IIIA", "IIIA"),
    ("metastases", "oui", "présence"),
    ("decision", "Radio-chimiothérapie concomitante", "radio-chimiothérapie"),
    ("site_metastatique", "osseux, ganglionnaire et pulmonaire", ["ganglionnaire", "os", "poumon"]),
    ("liste_cancers", "Carcinome épidermoïde ORL (2014), Adénocarcinome pulmonaire (2015)",
     ["adénocarcinome pulmonaire", "carcinome épidermoïde orl"]),
    ("site_biopsie", "  Psoas   droit. ", "psoas droit"),
    ("date_edition", "non précisé", None),
])
def test_parse_answer(key, raw, expected):
    assert parse_answer(key, raw) == expected


@pytest.mark.parametrize("key,raw,reason", [
    ("date_creation", "31/02/2017", "not a valid date"),
    ("date_creation", "hier", "not a valid date"),
    ("TNM", "T1 N0", "not a TNM triple"),
    ("grade_histologique", "grade 7", "not one of"),
    ("stade_tumeur", "VII", "not a stage"),
    ("site_metastatique", "rate", "no known metastatic site"),
    ("diagnostic", "carcinome carcinome carcinome carcinome carcinome", "endless repetition"),
    ("diagnostic", None, "no answer"),
    ("diagnostic", 12, "answer of type int"),
])
def test_malformed_answers_are_invalid_with_a_reason(key, raw, reason):
    with pytest.raises(InvalidAnswer, match=reason):
        parse_answer(key, raw)


def test_repetition_detector():
    assert is_repetitive("T1 N0 M0 T1 N0 M0 T1 N0 M0 T1 N0 M0")
    assert not is_repetitive("Métastase d'un carcinome épidermoïde bien différencié de l'exo col")


def test_grounding_flags_values_absent_from_the_text():
    assert grounding_problem("date_creation", "2016-12-01", CA_TEXT) is None
    assert grounding_problem("date_creation", "2016-12-02", CA_TEXT) == "date not in the report"
    assert grounding_problem("site_biopsie", "psoas droit", CA_TEXT) is None
    assert grounding_problem("site_biopsie", "foie", CA_TEXT) == "text not in the report"
    assert grounding_problem("grade_histologique", "peu différencié", CA_TEXT) is not None
    assert grounding_problem("TNM", "T1b N0 M1", "Classification pT1b pN0 cM1, stade IV") is None
    assert grounding_problem("TNM", "T2 N0 M1", "Classification pT1b pN0 cM1, stade IV") is not None
    assert grounding_problem("site_metastatique", ["os", "foie"], "métastatique au niveau osseux") == \
        "site(s) not in the report: foie"


def test_rules_extract_the_lecture_example():
    record = Extractor(RulesBackend()).extract(CA)
    assert record["state"] == "extracted", record["flags"]
    assert record["values"] == {
        "date_creation": "2016-12-01", "date_validation": "2016-12-05", "date_edition": "2016-12-05",
        "site_primitif": "exo col", "site_biopsie": "psoas droit", "type_histologique": "carcinome épidermoïde",
        "grade_histologique": "bien différencié",
        "diagnostic": "métastase d'un carcinome épidermoïde bien différencié de l'exo col",
        "CR": CA.id, "document_type": "CA"}


def test_rules_are_exact_on_dev_styles_and_fail_on_held_out_styles():
    reports = synthetic_reports(40, seed=11)
    ex = Extractor(RulesBackend())
    records = [ex.extract(r) for r in reports]
    scores = score_records(records, reports, {"dev": ("A", "B"), "held-out": ("C",)})
    dev, held = scores[scores.group == "dev"], scores[scores.group == "held-out"]
    assert dev.exact.min() == 1.0
    assert held.exact.mean() < 0.2


class Scripted:
    """A backend double: answers from a dict; a list of answers is consumed one call at a time."""

    name = "scripted"

    def __init__(self, answers, max_context=None, prompt_tokens=0):
        self.answers, self.max_context, self.prompt_tokens = answers, max_context, prompt_tokens
        self.calls = []

    def answer(self, report, key, context):
        self.calls.append((key, context))
        if self.prompt_tokens > context:
            raise ContextTooLong(self.prompt_tokens, context)
        a = self.answers[key]
        if isinstance(a, list):
            a = a.pop(0)
        if isinstance(a, Exception):
            raise a
        return a, False


GOOD = {"date_creation": "01/12/2016", "date_validation": "05/12/2016", "date_edition": "05/12/2016",
        "site_primitif": "exo col", "site_biopsie": "psoas droit", "type_histologique": "carcinome épidermoïde",
        "grade_histologique": "bien différencié",
        "diagnostic": "Métastase d'un carcinome épidermoïde bien différencié de l'exo col"}


def test_retry_pass_asks_only_the_failed_keys_with_four_times_the_context():
    backend = Scripted(GOOD | {"date_edition": ["{{{ not json", "05/12/2016"]}, max_context=8192)
    ex = Extractor(backend)
    assert ex.contexts == (2048, 8192)
    record = ex.extract(CA)
    assert record["state"] == "extracted" and record["passes"] == 2
    assert backend.calls[-1] == ("date_edition", 8192)
    assert sum(c == 8192 for _, c in backend.calls) == 1


def test_too_long_report_moves_to_the_retry_pass_then_fails_with_a_reason():
    ex = Extractor(Scripted(GOOD, max_context=8192, prompt_tokens=3000))
    record = ex.extract(CA)
    assert record["state"] == "extracted" and record["passes"] == 2
    record = Extractor(Scripted(GOOD, max_context=8192, prompt_tokens=9000)).extract(CA)
    assert record["state"] == "failed"
    assert record["reason"] == "report of 9000 tokens does not fit the 8192-token context"


def test_malformed_outputs_and_backend_errors_are_recorded_never_raised():
    secret = "Madame [secret name] née le 01/01/1950"
    answers = GOOD | {"date_creation": "", "date_edition": "31/02/2016", "grade_histologique": 3.5,
                      "site_biopsie": ValueError(secret), "diagnostic": "bla " * 50,
                      "site_primitif": "foie"}
    record = Extractor(Scripted(answers)).extract(CA)
    assert record["state"] == "extracted_with_flags"
    flags = record["flags"]
    assert flags["date_creation"] == "not found in the report"
    assert flags["date_edition"] == "failed: not a valid date"
    assert flags["grade_histologique"] == "failed: answer of type float, expected str"
    assert flags["site_biopsie"] == "failed: backend error (ValueError)"  # not retryable: a bug or bad input
    assert flags["diagnostic"] == "failed: endless repetition"
    assert flags["site_primitif"].startswith("possible hallucination")
    assert secret not in repr(record) and "psoas" not in "".join(flags.values())
    assert record["values"]["date_validation"] == "2016-12-05"


@pytest.mark.parametrize("error", [ConnectionRefusedError("down"), TimeoutError(), RuntimeError("CUDA out of memory"),
                                   RuntimeError("server answered HTTP 503")])
def test_a_transient_backend_error_is_raised_for_the_whole_report_never_recorded(error):
    from neuraltext.clinical import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="site_biopsie") as info:
        Extractor(Scripted(GOOD | {"site_biopsie": error})).extract(CA)
    assert info.value.kind == type(error).__name__ and "down" not in str(info.value)


@pytest.mark.parametrize("error,retryable", [
    (ConnectionRefusedError(), True), (TimeoutError(), True), (RuntimeError("CUDA out of memory"), True),
    (RuntimeError("server answered HTTP 502"), True), (RuntimeError("server answered HTTP 429"), True),
    (RuntimeError("server answered HTTP 422"), False), (ValueError("bad input"), False), (KeyError("k"), False),
    (type("Flagged", (RuntimeError,), {"retryable": False})(), False),
])
def test_retryable_and_final_errors(error, retryable):
    from neuraltext.clinical import is_retryable

    assert is_retryable(error) is retryable


def test_every_report_ends_in_exactly_one_state():
    nothing = {k: "" for k in KEYS["CA"]}
    record = Extractor(Scripted(nothing)).extract(CA)
    assert record["state"] == "failed" and record["reason"].startswith("no key could be extracted")
    odd = Extractor(RulesBackend()).extract(Report(id="x", type="ZZ", text="..."))
    assert odd["state"] == "failed" and "unknown document type 'ZZ'" in odd["reason"]


def test_field_scores():
    assert field_scores("2016-12-01", "2016-12-01") == (1.0, 1.0)
    exact, f1 = field_scores("carcinome canalaire", "carcinome canalaire infiltrant")
    assert exact == 0.0 and f1 == pytest.approx(0.8)
    assert field_scores(["os", "foie"], ["os"]) == (0.0, pytest.approx(2 / 3))
    assert field_scores(None, "x") == (0.0, 0.0)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="retry_factor"):
        ExtractConfig(retry_factor=0)


def test_the_rules_backend_has_no_context_limit_and_no_token_count():
    rules = RulesBackend()
    assert rules.max_context is None and not hasattr(rules, "count_tokens")  # no fake "0 tokens"
    follow_up = "Scanner TAP du 03/02/2017 : stabilité.\n" * 3000  # ~120,000 characters: far past 4 x 3,072 tokens
    long = Report(id="P1_CA_00_20161201", type="CA", text=CA_TEXT.replace("Localisation", follow_up + "Localisation"))
    assert len(long.text) > 8 * RETRY_FACTOR * STUDY_CONTEXT
    record = Extractor(rules).extract(long)
    assert record["passes"] == 1 and record["state"] == "extracted"  # read whole: no context to exceed
    assert record["values"] == Extractor(rules).extract(CA)["values"]
