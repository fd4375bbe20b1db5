"""Use case 2, checking each answer: per-key parsing and validation, then grounding in the source.

A model's answer for one key is a string. Before it enters a patient's record it goes through

1. **parsing** into the key's form (:mod:`neuraltext.clinical.schema`): a date through the
   chapter 5 normaliser (``"26/11/15"`` -> ``2015-11-26``; ``31/02/2017`` is *not a date*), an
   enumeration matched against its allowed values, a TNM triple checked (``T1b N0 M1``), a list split
   and mapped to canonical names. Malformed output (empty, endless repetition, an impossible date, a
   value outside the enumeration) raises :class:`InvalidAnswer` with a reason -- a recorded failure
   downstream, never a crash;
2. **grounding** (:mod:`neuraltext.clinical.grounding`, re-exported here): the value must be *in
   the report* as a whole-word span, after normalisation (dates, TNM), affirmed and not negated
   (enumerations), or inferred by a stated rule (stage IV from a metastasis). A value that is not
   is kept but **flagged as a possible hallucination** -- a small model readily writes a plausible
   date that the report never gave.

Error messages name the key and the reason, never the report's text.
"""

from __future__ import annotations

import re

from neuraltext.data.dates import normalize_date
from neuraltext.clinical.grounding import grounding_problem
from neuraltext.clinical.schema import (DATE_KEYS, ENUMS, KEYS, LIST_KEYS, MET_SITES, STAGES, normalize_text,
                                        normalize_tnm)

__all__ = ["InvalidAnswer", "NOT_FOUND", "parse_answer", "is_repetitive", "grounding_problem"]

#: Answers meaning "the report does not say" (a legitimate ``None``, not a failure).
NOT_FOUND = frozenset({"", "none", "null", "non précisé", "non precise", "inconnu", "nc", "n/a", "aucun", "aucune"})
MAX_TEXT_CHARS = 200

class InvalidAnswer(ValueError):
    """An answer that cannot become a value of its key; ``reason`` is short and text-free."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


def is_repetitive(raw: str, min_repeats: int = 4) -> bool:
    """True when a piece of 2+ characters repeats ``min_repeats`` times in a row (a decoding loop)."""
    return re.search(r"(\S.{1,39}?)(?:\s*\1){%d,}" % (min_repeats - 1), raw, flags=re.S) is not None


def _clean(raw: str, all_lines: bool = False) -> str:
    """The value of an answer; its first line only unless ``all_lines`` (a list may span lines, as
    the study's own ``liste_cancers`` does)."""
    raw = raw.strip().strip("`").strip()
    # A model may answer '{"key": "value"}' or '"value"' or 'key: value': keep the value.
    m = re.fullmatch(r'\{\s*"[^"]*"\s*:\s*"?(.*?)"?\s*\}', raw, flags=re.S)
    if m:
        raw = m.group(1)
    if not all_lines:
        raw = raw.splitlines()[0] if raw else raw
    return raw.strip().strip('"').strip()


def _parse_enum(key: str, text: str) -> str:
    allowed = ENUMS[key]
    if key == "stade_tumeur":
        m = re.search(r"\b(I{1,3}V?|IV)([ABC]?)\b", text.upper().replace("STADE", ""))
        if m and m.group(0) in STAGES:
            return m.group(0)
        raise InvalidAnswer(key, f"not a stage (allowed: {', '.join(STAGES)})")
    low = normalize_text(text)
    for value in sorted(allowed, key=len, reverse=True):  # "radio-chimiothérapie" before "chimiothérapie"
        if low == value or low.startswith(value):
            return value
    if key == "metastases" and low in ("oui", "non"):
        return "présence" if low == "oui" else "absence"
    raise InvalidAnswer(key, f"not one of {', '.join(allowed)}")


def _parse_list(key: str, text: str) -> list[str]:
    parts = [normalize_text(p) for p in re.split(r"[,;/|+]|\bet\b|\n", text)]
    parts = [p for p in parts if p and p not in NOT_FOUND]
    if key == "site_metastatique":
        sites = set()
        for part in parts:
            for site, words in MET_SITES.items():
                if any(re.search(rf"\b{re.escape(w)}\b", part) for w in words):
                    sites.add(site)
        if parts and not sites:
            raise InvalidAnswer(key, f"no known metastatic site (known: {', '.join(MET_SITES)})")
        return sorted(sites)
    parts = [re.sub(r"\s*\(?\b(19|20)\d\d\)?$", "", p).strip() for p in parts]  # "(2014)" is not the name
    return sorted({p for p in parts if p})


def parse_answer(key: str, raw: str | None, truncated: bool = False):
    """The value of ``key`` in ``raw`` (a model's answer), ``None`` for "not in the report".

    Raises :class:`InvalidAnswer` for malformed answers; ``truncated`` (generation stopped at its token
    limit) with a repetitive answer is an endless repetition.
    """
    if raw is None:
        raise InvalidAnswer(key, "no answer")
    if not isinstance(raw, str):
        raise InvalidAnswer(key, f"answer of type {type(raw).__name__}, expected str")
    if is_repetitive(raw) or (truncated and len(raw) > MAX_TEXT_CHARS):
        raise InvalidAnswer(key, "endless repetition")
    text = _clean(raw, all_lines=key in LIST_KEYS)
    if normalize_text(text) in NOT_FOUND:
        return [] if key in LIST_KEYS else None
    if key in DATE_KEYS:
        iso = normalize_date(text)
        if iso is None:
            raise InvalidAnswer(key, "not a valid date")
        return iso
    if key in ENUMS:
        return _parse_enum(key, text)
    if key == "TNM":
        tnm = normalize_tnm(text)
        if tnm is None:
            raise InvalidAnswer(key, "not a TNM triple (expected e.g. T1b N0 M1)")
        return tnm
    if key in LIST_KEYS:
        return _parse_list(key, text)
    if not any(key in keys for keys in KEYS.values()):
        raise InvalidAnswer(key, "unknown key")
    value = normalize_text(text)
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidAnswer(key, f"longer than {MAX_TEXT_CHARS} characters")
    return value
