"""Use case 2, the schema: which keys each report type yields, and what a valid value is.

The study (lecture notes, second use case) extracts three report types from oncology records:

* ``CA`` -- pathology report (compte rendu d'anatomopathologie): ``date_creation, date_validation,
  date_edition, site_primitif, site_biopsie, type_histologique, grade_histologique, diagnostic``;
* ``CC`` -- consultation report: ``TNM, liste_cancers, date_consultation, date_diagnostic,
  date_edition, metastases, site_metastatique, stade_tumeur``;
* ``RC`` -- multidisciplinary tumour board (réunion de concertation pluridisciplinaire, RCP). The study
  does not list its keys; **our documented choice** is what a board report is for: ``date_rcp`` (the
  meeting), ``site_primitif``, ``type_histologique``, ``TNM``, ``decision`` (one of
  :data:`DECISIONS`) and ``essai_clinique`` (``oui``/``non``: a trial was proposed).

Every record also carries ``CR`` (the source report id) and ``document_type``.

Value conventions (one form per key, so that exact match means something):

* dates are ISO 8601, ``YYYY-MM-DD`` or ``YYYY-MM`` when the report gives no day (the chapter 5
  normaliser :func:`neuraltext.data.dates.normalize_date` produces both);
* enumerations are lower-case French words from the lists below;
* ``TNM`` is written ``T.. N.. M..`` with single spaces, prefixes (c/p/yp) dropped: ``T1b N0 M1``;
* multi-valued keys (``liste_cancers``, ``site_metastatique``) are lists of canonical names;
* free-text keys (``site_primitif``, ``site_biopsie``, ``type_histologique``, ``diagnostic``) are the
  words of the report, lower-cased, whitespace collapsed.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "DOCUMENT_TYPES",
    "KEYS",
    "DATE_KEYS",
    "LIST_KEYS",
    "ENUMS",
    "GRADES",
    "STAGES",
    "DECISIONS",
    "MET_SITES",
    "TNM_PATTERN",
    "ISO_DATE_PATTERN",
    "normalize_text",
    "normalize_tnm",
]

DOCUMENT_TYPES = ("CA", "CC", "RC")

KEYS: dict[str, tuple[str, ...]] = {
    "CA": ("date_creation", "date_validation", "date_edition", "site_primitif", "site_biopsie",
           "type_histologique", "grade_histologique", "diagnostic"),
    "CC": ("TNM", "liste_cancers", "date_consultation", "date_diagnostic", "date_edition", "metastases",
           "site_metastatique", "stade_tumeur"),
    "RC": ("date_rcp", "site_primitif", "type_histologique", "TNM", "decision", "essai_clinique"),
}
DATE_KEYS = frozenset({"date_creation", "date_validation", "date_edition", "date_consultation",
                       "date_diagnostic", "date_rcp"})
LIST_KEYS = frozenset({"liste_cancers", "site_metastatique"})

GRADES = ("bien différencié", "moyennement différencié", "peu différencié", "indifférencié")
STAGES = ("I", "IA", "IB", "II", "IIA", "IIB", "III", "IIIA", "IIIB", "IIIC", "IV")
DECISIONS = ("chirurgie", "chimiothérapie", "radiothérapie", "radio-chimiothérapie", "hormonothérapie",
             "surveillance", "soins de support")
#: Canonical metastatic sites; each comes with the words reports use for it (the "dictionary").
MET_SITES: dict[str, tuple[str, ...]] = {
    "os": ("osseux", "osseuse", "osseuses", "os", "rachis", "vertébral", "fémur"),
    "foie": ("hépatique", "hépatiques", "foie"),
    "poumon": ("pulmonaire", "pulmonaires", "poumon"),
    "cerveau": ("cérébral", "cérébrale", "cérébrales", "cerveau", "encéphalique"),
    "ganglionnaire": ("ganglionnaire", "ganglionnaires", "adénopathies"),
    "surrénale": ("surrénalien", "surrénalienne", "surrénale"),
    "plèvre": ("pleural", "pleurale", "plèvre"),
    "péritoine": ("péritonéal", "péritonéale", "carcinose"),
}
ENUMS: dict[str, tuple[str, ...]] = {
    "grade_histologique": GRADES,
    "stade_tumeur": STAGES,
    "metastases": ("présence", "absence"),
    "decision": DECISIONS,
    "essai_clinique": ("oui", "non"),
}

#: T, N and M with their usual sub-categories; prefixes (c, p, yp) and separators allowed on input.
TNM_PATTERN = r"(?:y?[cp])?T(?:is|x|[0-4][abc]?)\s*,?\s*(?:y?[cp])?N(?:x|[0-3][abc]?)\s*,?\s*(?:y?[cp])?M(?:x|[01][abc]?)"
_TNM_PARTS = re.compile(r"T(is|x|[0-4][abc]?)\s*,?\s*(?:y?[cp])?N(x|[0-3][abc]?)\s*,?\s*(?:y?[cp])?M(x|[01][abc]?)")
ISO_DATE_PATTERN = r"(19|20)\d\d-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?"


def normalize_text(text: str) -> str:
    """Lower case, NFC, whitespace collapsed, surrounding punctuation stripped: the comparison form."""
    text = unicodedata.normalize("NFC", text).lower()
    text = re.sub(r"\s+", " ", text)
    return text.strip(" .,;:'\"-")


def normalize_tnm(text: str) -> str | None:
    """``"pT1b, N0, cM1"`` -> ``"T1b N0 M1"``; ``None`` when ``text`` holds no complete TNM triple."""
    m = _TNM_PARTS.search(text)
    if m is None:
        return None
    return f"T{m.group(1)} N{m.group(2)} M{m.group(3)}"
