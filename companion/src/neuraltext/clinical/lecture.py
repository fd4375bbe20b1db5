"""The lecture's own examples of use case 2: its pathology (CA) and consultation (CC) reports and the
study's JSON answers, **unedited**, as package data (the chapter and its tests read them here, on
Colab too).

Copied from the course's slides on the clinical extraction study (``course-material/
000_20477971f080d78d.txt``, the lines in :data:`SOURCE_LINES`; ``tests/test_clinical_lecture.py``
checks every character against them when the course material is beside the checkout). The strings
are written line by line so that trailing spaces survive editors. The slides' JSON is not strict JSON
(comments after values, a line break inside a string): :func:`study_answers` reads its ``"key": "value"``
pairs as the study wrote them (dd/mm/yyyy dates, the study's words).

* ``LECTURE_CA``, ``LECTURE_CC`` -- the two reports as :class:`~neuraltext.clinical.reports.Report`
  (id: the study's ``CR``; ``truth``: the study's answers, raw);
* ``CA_REPORT_TEXT``, ``CA_ANSWER_TEXT``, ``CC_REPORT_TEXT``, ``CC_ANSWER_TEXT`` -- the texts.
"""

from __future__ import annotations

import re

from neuraltext.clinical.reports import Report

__all__ = ["SOURCE", "SOURCE_LINES", "CA_REPORT_TEXT", "CA_ANSWER_TEXT", "CC_REPORT_TEXT", "CC_ANSWER_TEXT",
           "study_answers", "LECTURE_CA", "LECTURE_CC"]

SOURCE = "course-material/000_20477971f080d78d.txt"
SOURCE_LINES = {  # first and last line (1-based, inclusive) of each text in SOURCE
    'CA_REPORT_TEXT': (717, 733),
    'CA_ANSWER_TEXT': (703, 714),
    'CC_REPORT_TEXT': (751, 773),
    'CC_ANSWER_TEXT': (736, 748),
}

CA_REPORT_TEXT = (
    'Prélevé le 01/12/2016\n'
    'Enregistré le 01/12/2016\n'
    '\n'
    'Examen n° [REDACTED]\n'
    '\n'
    'CR édité le : 05/12/2016\n'
    '\n'
    'PROTOCOLE MOSCATO\n'
    'ETUDE MORPHOLOGIQUE\n'
    '\n'
    'RENSEIGNEMENTS\n'
    '\n'
    "N° d'inclusion [REDACTED]\n"
    '\n'
    'Localisation du prélèvement : Biopsie du psoas droit\n'
    '\n'
    "Diagnostic : Métastase d'un carcinome épidermoïde bien différencié de l'exo col\n"
)

CA_ANSWER_TEXT = (
    '{  \n'
    '  "date_creation": "01/12/2016",  \n'
    '  "date_validation": "05/12/2016",  \n'
    '  "date_edition": "05/12/2016",  \n'
    '  "site_primitif": "exo col",  \n'
    '  "site_biopsie": "psoas droit",  \n'
    '  "type_histologique": "carcinome épidermoïde bien différencié",  \n'
    '  "grade_histologique": "bien différencié",  \n'
    '  "diagnostic": "Métastase d\'un carcinome épidermoïde bien différencié de l\'exo col",  \n'
    '  "CR": "201602493HD_CA_128838549_20161205_201602493HD_16H11578_2255398_20161205170208128838549.F",  \n'
    '  "document_type": "CA"  \n'
    '}\n'
)

CC_REPORT_TEXT = (
    'Vue après 4 cures de Taxol-Avastin en troisième ligne de traitement systémique, pour un adénocarcinome bronchique métastatique au niveau osseux, ganglionnaire, et pulmonaire.\n'
    '\n'
    'Au plan moléculaire, EGFR-, KRAS-, HER2-, BRAF - et MET non contributif.\n'
    '\n'
    'Immunohistochimie TRK-, ALK-, PD-L1-.\n'
    '\n'
    'Sur biopsie liquide (février 2017), aucune mutation trouvée.\n'
    '\n'
    'FISH ROS1 et RET : négatives\n'
    '\n'
    'Antécédents\n'
    '\n'
    'Néoplasie ORL diagnostiquée en janvier 2014, devant une adénopathie cervicale droite : carcinome épidermoïde classé Tx N3 M0, traité par 3 cycles de TPF, mandibulectomie droite et exérèse de la langue sub-linguale puis radio-chimiothérapie de clôture (CISPLATINE et 66 Gy du 10 juillet au 27 août 2014), réponse complète.\n'
    '\n'
    'Mode de vie\n'
    '\n'
    'Tabagisme à moins de 5 PA sevré en 2002.\n'
    '\n'
    'Histoire de la maladie\n'
    '\n'
    'Adénocarcinome pulmonaire lobaire supérieur droit de 3 cm de grand axe, traité par lobectomie et curage le 26 novembre 2015, pas de métastase ganglionnaire, coupes bronchiques et vasculaires saines. Classification T1b N0, stade IA.\n'
    '\n'
    "Elle a été revue en consultation anticipée le 24 février 2017, compte tenu des résultats d'un Pet Scan du 21 février, qui retrouvait l'apparition d'une lésion osseuse L5 et du fémur droit.\n"
)

CC_ANSWER_TEXT = (
    '{  \n'
    '  "TNM": "T1b N0 M1",  \n'
    '  "liste_cancers": "Carcinome épidermoïde ORL (2014),  \n'
    '    Adénocarcinome pulmonaire (2015)",  \n'
    '  "date_consultation": "24/08/2018", (date de dictée dans le CC)  \n'
    '  "date_diagnostic": "26/11/2015",  \n'
    '  "date_edition": "03/09/2018", (date de signature électronique)  \n'
    '  "metastases": "présence",  \n'
    '  "site_metastatique": "os (L5, fémur droit), ganglionnaire, pulmonaire",  \n'
    '  "stade_tumeur": "IV",  \n'
    '  "CR": "201400423TG_CC_125302080_20180824.pdf",  \n'
    '  "document_type": "CC"  \n'
    '},\n'
)


def study_answers(answer_text: str) -> dict[str, str]:
    """The ``"key": "value"`` pairs of one of the slides' JSON answers, values as written (a value may
    span lines, as the CC's ``liste_cancers`` does; the comments after a value are not part of it)."""
    pairs = dict(re.findall(r'"(\w+)":\s*"(.*?)"', answer_text, flags=re.S))
    if "CR" not in pairs or "document_type" not in pairs:
        raise ValueError(f"answer_text must hold the study's 'CR' and 'document_type' keys; got keys {sorted(pairs)}")
    return pairs


def _report(report_text: str, answer_text: str) -> Report:
    truth = study_answers(answer_text)
    return Report(id=truth["CR"], type=truth["document_type"], text=report_text, truth=truth)


LECTURE_CA = _report(CA_REPORT_TEXT, CA_ANSWER_TEXT)
LECTURE_CC = _report(CC_REPORT_TEXT, CC_ANSWER_TEXT)
