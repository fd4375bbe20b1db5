"""Use case 2, grounding: is an extracted value supported by the report's text?

A value that is not is kept but **flagged as a possible hallucination**. Three kinds of evidence:

* **written**: the value is in the report as a *whole-word span* (after lower-casing and whitespace
  folding): ``psoas droit`` in "Biopsie du psoas droit", but the answer ``a`` is not grounded by the
  "a" inside "carcinome", and a value with no content word (``a``, ``de la``) is never grounded. A
  date is grounded when some date expression of the report normalises to it; a TNM when some TNM of
  the report normalises to it.
* **affirmed, not negated**: an enumeration's evidence (``métastase``, ``essai``...) counts only
  where the report does *not* negate it. A mention is negated when one of the cues
  :data:`NEGATION_CUES` (``pas de``, ``absence de``, ``sans``, ``aucun``, ``ni``, ``non``...) is among
  the four words before it in its clause, or when the clause answers it with ``: non`` /
  ``négatif`` / ``absent`` after it (a NegEx-style window, Chapman et al. 2001). So "Pas de
  métastase" grounds ``metastases = absence`` and not ``présence``; "Essai clinique proposé : non"
  grounds ``essai_clinique = non`` and not ``oui``.
* **inferred** (the lecture's CC example: the report says "Classification T1b N0, stade IA" at
  diagnosis, then "métastatique au niveau osseux"; the study's answer is ``T1b N0 M1``, stade ``IV``):

  - ``stade_tumeur = IV`` is grounded when the report has a TNM with ``M1`` or an affirmed metastasis
    (every M1 solid tumour is stage IV in the TNM staging, 8th edition);
  - ``TNM = T.. N.. M1`` (``M0``) is grounded when the report writes that ``T.. N..`` pair and has an
    affirmed metastasis (a denied one); a sub-category (``M1a``) is never inferred.

Each function returns ``None`` (grounded) or a short reason that never quotes the report.
"""

from __future__ import annotations

import re
import unicodedata

from neuraltext.data.dates import find_dates
from neuraltext.clinical.schema import (DATE_KEYS, ENUMS, LIST_KEYS, MET_SITES, TNM_PATTERN, normalize_text,
                                        normalize_tnm)

__all__ = ["NEGATION_CUES", "METASTASIS", "is_negated", "affirmed", "denied", "metastatic", "grounding_problem"]

#: Words that negate what follows them in a clause (French clinical writing).
NEGATION_CUES = ("pas", "absence", "sans", "aucun", "aucune", "ni", "non", "jamais", "exclu", "exclue", "exclues")
_CUE = re.compile(r"(?<![\w-])(?:" + "|".join(NEGATION_CUES) + r")(?![\w-])")
_CLAUSE_END = ".;:,\n!?()"
_CUE_WINDOW = 4  # words before a mention searched for a cue
# "non à petites cellules" names a lung cancer; "non muté" qualifies a gene: neither negates what follows
_NOT_A_CUE = re.compile(r"non[ -]à petites cellules|non[ -]mut[ée]\w*")
_ANSWERED_NO = re.compile(r"[^.;\n]{0,30}?[:=]\s*(?:non|n[ée]gati\w*|absente?s?)(?![\w-])"
                          r"|\s*(?:n[ée]gati\w*|absente?s?)(?![\w-])")
# Mentions of a metastasis (a site word followed by "+" is the telegraphic "osseux+")
_SITE_WORDS = "|".join(sorted({re.escape(w) for ws in MET_SITES.values() for w in ws}, key=len, reverse=True))
METASTASIS = (r"m[ée]tasta\w*|(?:localisations?|l[ée]sions?)\s+secondaires?|(?<![\w-])mt(?![\w-])"
              rf"|(?<![\w-])(?:{_SITE_WORDS})\+")
_TRIAL = r"(?<![\w-])essais?(?![\w-])"
_TN_PAIR = re.compile(r"(?<![A-Za-z])(?:y?[cp])?T(is|x|[0-4][abc]?)\s*,?\s*(?:y?[cp])?N(x|[0-3][abc]?)(?![\w])")
_STOPWORDS = frozenset("a à au aux de des du d l la le les un une et ou en sur par pour".split())


def _lower(text: str) -> str:
    return unicodedata.normalize("NFC", text).lower()


def is_negated(low: str, start: int, end: int) -> bool:
    """Is the mention ``low[start:end]`` (lower-cased text) negated in its clause? See the module doc."""
    before = low[:start]
    cut = max(before.rfind(c) for c in _CLAUSE_END)
    clause = _NOT_A_CUE.sub(" ", before[cut + 1:])
    if _CUE.search(" ".join(clause.split()[-_CUE_WINDOW:])):
        return True
    return _ANSWERED_NO.match(low, end) is not None


def affirmed(pattern: str, text: str) -> bool:
    """True when ``text`` mentions ``pattern`` (a lower-case regex) at least once without negating it."""
    low = _lower(text)
    return any(not is_negated(low, m.start(), m.end()) for m in re.finditer(pattern, low))


def denied(pattern: str, text: str) -> bool:
    """True when ``text`` mentions ``pattern`` at least once in a negated clause."""
    low = _lower(text)
    return any(is_negated(low, m.start(), m.end()) for m in re.finditer(pattern, low))


def _tnms(text: str) -> set[str]:
    return {normalize_tnm(m.group(0)) for m in re.finditer(TNM_PATTERN, text)}


def metastatic(text: str) -> bool | None:
    """``True``: the report affirms a metastasis (or has a TNM with M1); ``False``: it denies one (or has
    a TNM with M0) and affirms none; ``None``: it says neither."""
    ms = {t.split()[2][:2] for t in _tnms(text)}
    if "M1" in ms or affirmed(METASTASIS, text):
        return True
    if "M0" in ms or denied(METASTASIS, text):
        return False
    return None


def _enum_problem(key: str, value: str, text: str) -> str | None:
    """Grounding of an enumeration value (negation-aware; stage IV may be inferred)."""
    low = _lower(text)
    if key == "metastases":
        ok = metastatic(text) is (value == "présence")
    elif key == "essai_clinique":
        ok = affirmed(_TRIAL, text) if value == "oui" else denied(_TRIAL, text)
    elif key == "stade_tumeur":
        written = re.search(rf"(?:stade|st\.?)\s*{re.escape(value.lower())}(?![\w])", low) is not None
        ok = written or (value == "IV" and metastatic(text) is True)
    else:
        ok = affirmed(rf"(?<![\w-]){re.escape(value.lower())}(?![\w-])", text)
    return None if ok else f"{key} value without evidence in the report"


def _tnm_problem(value: str, text: str) -> str | None:
    """A TNM written in the report, or its T and N written and its M0/M1 inferred from the text."""
    if value in _tnms(text):
        return None
    t, n, m = value.split()
    pairs = {(f"T{p.group(1)}", f"N{p.group(2)}") for p in _TN_PAIR.finditer(text)}
    if (t, n) in pairs and m in ("M0", "M1") and metastatic(text) is (m == "M1"):
        return None
    return "TNM not in the report"


def _span(value: str, folded: str) -> bool:
    """``value`` is a whole-word span of ``folded`` and holds a content word (3+ letters, not a stopword)."""
    words = re.findall(r"\w+", value)
    if not any(len(w) >= 3 and w not in _STOPWORDS for w in words):
        return False
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", folded) is not None


def _item_in_a_line(item: str, text: str) -> bool:
    """Every content word of ``item`` is a whole word of one line of ``text`` ("carcinome épidermoïde
    ORL" in "Néoplasie ORL diagnostiquée ... : carcinome épidermoïde classé Tx N3 M0")."""
    words = [w for w in re.findall(r"\w+", item) if w not in _STOPWORDS]
    return bool(words) and any(all(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", line) for w in words)
                               for line in _lower(text).splitlines())


def grounding_problem(key: str, value, text: str) -> str | None:
    """``None`` when ``value`` is supported by ``text``; else a short reason (a possible hallucination)."""
    if value is None or value == []:
        return None
    folded = normalize_text(text)
    if key in DATE_KEYS:
        dates = {iso for _, _, iso in find_dates(text)}
        if value in dates or (len(value) == 7 and any(d.startswith(value) for d in dates)):
            return None
        return "date not in the report"
    if key == "TNM":
        return _tnm_problem(value, text)
    if key in ENUMS:
        return _enum_problem(key, value, text)
    if key == "site_metastatique":
        missing = [s for s in value if not affirmed(
            r"(?<![\w-])(?:" + "|".join(re.escape(w) for w in MET_SITES[s]) + r")(?![\w-])", text)]
        return f"site(s) not in the report: {', '.join(missing)}" if missing else None
    if key in LIST_KEYS:
        missing = [v for v in value if not (_span(v, folded) or _item_in_a_line(v, text))]
        return f"{len(missing)} item(s) not in the report" if missing else None
    return None if _span(value, folded) else "text not in the report"
