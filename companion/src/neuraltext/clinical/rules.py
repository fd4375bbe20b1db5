"""Use case 2, the baseline: regular expressions + the chapter 5 date normaliser, one rule per key.

:class:`RulesBackend` answers one key of one report the way a careful engineer would after reading
the **development styles** (``A`` and ``B`` of :mod:`neuraltext.clinical.reports`): an anchor
phrase (``Prélevé le``, ``CR édité le :``, ``Classification``) and what follows it. It is fast,
exact where its anchors match, and silent (``""``, "not found") where they do not -- which is the
point of the held-out style ``C``: a template-bound method fails on the next hospital's layout.
It is also the pipeline's test double: deterministic, no model, no network.
"""

from __future__ import annotations

import re

from neuraltext.clinical.schema import KEYS

__all__ = ["RULES", "RulesBackend"]

_DATE = r"([^\n;]{4,40})"
# key -> list of patterns (first match wins); group 1 is the answer. Written on styles A and B only.
RULES: dict[str, dict[str, list[str]]] = {
    "CA": {
        "date_creation": [r"Prélevé le\s*" + _DATE, r"Date du prélèvement\s*:\s*" + _DATE],
        "date_validation": [r"Validé le\s*:?\s*" + _DATE, r"validé le\s*" + _DATE],
        "date_edition": [r"CR édité le\s*:\s*" + _DATE, r"édité le\s*" + _DATE],
        "site_biopsie": [r"(?:Localisation du prélèvement\s*:\s*Biopsie|Nature du prélèvement\s*:\s*biopsie)"
                         r"\s+(?:du|de la|de l'|d'un|des)\s*([^\n]+)"],
        "site_primitif": [r"(?:Diagnostic|CONCLUSION)\s*:[^\n]*?différencié\s+(?:du|de la|de l')\s*([^\n.]+)"],
        "type_histologique": [r"(?:Diagnostic|CONCLUSION)\s*:\s*(?:Métastase d'un\s+)?([^\n]+?)\s+"
                              r"(?:bien|moyennement|peu) différencié"],
        "grade_histologique": [r"(?:Diagnostic|CONCLUSION)\s*:[^\n]*?((?:bien|moyennement|peu) différencié)"],
        "diagnostic": [r"(?:Diagnostic|CONCLUSION)\s*:\s*([^\n]+?)\.?\n"],
    },
    "CC": {
        "TNM": [r"Classification\s*:?\s*(p?T\w+ p?N\w+ c?M\w+)"],
        "liste_cancers": [],  # several anchors: see RulesBackend._cancers
        "date_consultation": [r"Consultation du\s*" + _DATE, r"Date de consultation\s*:\s*" + _DATE],
        "date_diagnostic": [r"diagnostiqué le\s*" + _DATE, r"date du diagnostic\s*:\s*" + _DATE],
        "date_edition": [r"Signé électroniquement le\s*" + _DATE, r"Courrier édité le\s*" + _DATE],
        "metastases": [r"(métastatique au niveau|Métastases : oui)", r"(sans localisation secondaire|Métastases : non)"],
        "site_metastatique": [r"métastatique au niveau ([^\n.]+)", r"Métastases : oui \(([^)]+)\)"],
        "stade_tumeur": [r"stade (I[ABC]?|II[ABC]?|III[ABC]?|IV)\b"],
    },
    "RC": {
        "date_rcp": [r"RCP du\s*" + _DATE, r"présenté en RCP le\s*" + _DATE],
        "site_primitif": [r"Organe\s*:\s*([^\n]+)", r"suivi\(e\) pour un .+? (?:du|de la|de l')\s*(.+?) classé"],
        "type_histologique": [r"Histologie\s*:\s*([^\n]+)", r"suivi\(e\) pour un (.+?) (?:du|de la|de l')"],
        "TNM": [r"TNM\s*:\s*(T\w+ N\w+ M\w+)", r"classé (T\w+ N\w+ M\w+)"],
        "decision": [r"(?:Proposition thérapeutique|Décision de la RCP)\s*:\s*([^\n]+?)\.?\n"],
        "essai_clinique": [r"Essai clinique proposé\s*:\s*(oui|non)", r"(Inclusion proposée)", r"(Pas d'essai)"],
    },
}
_COMPILED = {t: {k: [re.compile(p) for p in ps] for k, ps in keys.items()} for t, keys in RULES.items()}
_ANSWER_MAP = {"métastatique au niveau": "présence", "Métastases : oui": "présence",
               "sans localisation secondaire": "absence", "Métastases : non": "absence",
               "Inclusion proposée": "oui", "Pas d'essai": "non"}


class RulesBackend:
    """Answers a key with the first matching rule; ``""`` (not found) when none matches."""

    name = "rules"
    #: No model, so no context: a report of any length is read whole, and ``context`` is ignored (the
    #: backend interface of :mod:`~neuraltext.clinical.extract`: ``max_context = None``). It has no
    #: token count either: "0 tokens" would be a count, and a wrong one.
    max_context = None

    def _cancers(self, text: str) -> str:
        current = re.search(r"(?:Histoire de la maladie\s+|Diagnostic initial\s*:\s*)(.+?)(?: diagnostiqué|,)", text)
        earlier = re.findall(r"^- (.+?) \(\d{4}\)$", text, flags=re.M)
        return ", ".join(([current.group(1)] if current else []) + earlier)

    def answer(self, report, key: str, context: int | None = None) -> tuple[str, bool]:
        """``(raw answer, truncated)`` for ``key`` of ``report`` (``truncated`` is always False)."""
        if key not in KEYS.get(report.type, ()):
            raise KeyError(f"key {key!r} is not a key of report type {report.type!r}; allowed: {KEYS.get(report.type)}")
        if report.type == "CC" and key == "liste_cancers":
            return self._cancers(report.text), False
        for pattern in _COMPILED[report.type][key]:
            m = pattern.search(report.text)
            if m:
                return _ANSWER_MAP.get(m.group(1), m.group(1)), False
        return "", False
