"""Grounding: whole-word spans, negation (sentences written both ways), inferred values, and a backend
that always answers présence/oui flagged on every report that says the opposite."""

from __future__ import annotations

import pytest

from neuraltext.clinical import Extractor, KEYS, RulesBackend, grounding_problem, synthetic_reports


@pytest.mark.parametrize("key,value,positive,negated", [
    ("metastases", "présence", "Adénocarcinome métastatique au niveau osseux.", "Pas de métastase."),
    ("metastases", "présence", "Métastases : oui (hépatique)", "Métastases : non"),
    ("metastases", "présence", "Extension : osseux+ / hépatique+", "Extension : pas de MT"),
    ("metastases", "présence", "Lésions secondaires hépatiques.", "Absence de lésion secondaire."),
    ("metastases", "présence", "Carcinome bronchique non à petites cellules métastatique.",
     "Carcinome sans localisation secondaire."),
    ("essai_clinique", "oui", "Essai clinique proposé : oui", "Essai clinique proposé : non"),
    ("essai_clinique", "oui", "Inclusion proposée dans un essai clinique.", "Pas d'essai clinique disponible."),
    ("essai_clinique", "oui", "Essai : OUI", "Essai : NON"),
    ("decision", "chimiothérapie", "Décision de la RCP : chimiothérapie.", "Décision : surveillance, sans chimiothérapie."),
    ("site_metastatique", ["foie"], "Métastases hépatiques.", "Pas de métastase hépatique."),
])
def test_negated_evidence_does_not_ground(key, value, positive, negated):
    assert grounding_problem(key, value, positive) is None
    assert grounding_problem(key, value, negated) is not None


@pytest.mark.parametrize("key,value,positive,negated", [
    ("metastases", "absence", "Pas de métastase.", "Adénocarcinome métastatique au niveau osseux."),
    ("metastases", "absence", "Classification T2 N0 M0.", "Classification T2 N0 M1."),
    ("essai_clinique", "non", "Essai clinique proposé : non", "Essai clinique proposé : oui"),
    ("essai_clinique", "non", "Pas d'essai clinique disponible.", "Inclusion proposée dans un essai clinique."),
])
def test_the_opposite_value_is_grounded_by_the_negation(key, value, positive, negated):
    assert grounding_problem(key, value, positive) is None
    assert grounding_problem(key, value, negated) is not None


def test_free_text_is_a_whole_word_span_with_a_content_word():
    text = "Diagnostic : carcinome épidermoïde bien différencié de l'exo col\nBiopsie du psoas droit"
    assert grounding_problem("site_biopsie", "psoas droit", text) is None
    assert grounding_problem("site_biopsie", "a", text) == "text not in the report"        # inside "carcinome"
    assert grounding_problem("site_biopsie", "de l'", text) == "text not in the report"     # no content word
    assert grounding_problem("type_histologique", "carcinome épi", text) == "text not in the report"
    assert grounding_problem("type_histologique", "carcinome épidermoïde", text) is None
    assert grounding_problem("grade_histologique", "différencié", "indifférencié") is not None
    assert grounding_problem("decision", "chimiothérapie", "Décision : radio-chimiothérapie") is not None
    assert grounding_problem("liste_cancers", ["mélanome", "a"], "Antécédent : mélanome cutané") == \
        "1 item(s) not in the report"
    assert grounding_problem("stade_tumeur", "I", "Classification T1b N0, stade IA") is not None
    assert grounding_problem("stade_tumeur", "IA", "Classification T1b N0, stade IA") is None


class AlwaysYes:
    """A hostile backend: every metastasis is present, every trial proposed, every stage IV; else the rules."""

    name = "always-yes"
    max_context = None

    def __init__(self):
        self.rules = RulesBackend()

    def answer(self, report, key, context=None):
        forced = {"metastases": "présence", "essai_clinique": "oui", "stade_tumeur": "IV"}
        if key in forced:
            return forced[key], False
        return self.rules.answer(report, key, context)


def test_a_backend_that_always_says_yes_is_flagged_on_every_report_that_says_no():
    reports = synthetic_reports(60, seed=3)
    ex = Extractor(AlwaysYes())
    wrong = {"metastases": 0, "essai_clinique": 0, "stade_tumeur": 0}
    for report in reports:
        record = ex.extract(report)
        for key, forced in (("metastases", "présence"), ("essai_clinique", "oui"), ("stade_tumeur", "IV")):
            if key in KEYS[report.type] and report.truth[key] != forced:
                wrong[key] += 1
                assert record["flags"].get(key, "").startswith("possible hallucination"), (report.id, key)
            elif key in KEYS[report.type]:  # the truth: grounded in every style, A, B and the held-out C
                assert key not in record["flags"], (report.id, key, record["flags"][key])
    assert min(wrong.values()) >= 5  # the test saw reports of each kind
