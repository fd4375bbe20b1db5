"""Dates as French clinical reports write them, and their ISO form: a seeded synthetic task.

Oncology reports date everything (biopsy, surgery, tumour board) and write those dates in a dozen
ways: ``le 24 février 2017``, ``26/11/15``, ``24.08.2018``, ``novembre 2015``, ``en février 2017``.
A patient table needs one form, ISO 8601: ``2017-02-24``, or ``2017-02`` (``YYYY-MM``) when the day
is not given. This module provides

* a **seeded generator** of (source, target) pairs, optionally embedded in short clinical phrases
  (``"Biopsie mammaire le 24 février 2017."`` -> ``"2017-02-24"``): :func:`date_pairs`;
* **train/test splits** whose test dates are never seen in training, plus **held-out formats** (never
  seen in training at all) for a generalisation test: :func:`date_splits`;
* the **exact-match** metric (a prediction counts only if every character is right):
  :func:`exact_match`, :func:`exact_match_by`;
* **character vocabularies** for the source and the target: :func:`source_vocab`,
  :func:`target_vocab` (the course's one :class:`~neuraltext.tokenize.Vocab`, from characters);
* a **rule-based reference normaliser**, :func:`normalize_date` (``str -> str | None``), that returns
  ``None`` -- "not a date" -- for empty or date-free text and for impossible dates such as
  ``31/02/2017``, instead of crashing or inventing a date. :func:`find_dates` returns every date found
  with its position. The clinical extraction use case reuses both.

Two-digit years follow one pivot, :data:`YEAR_PIVOT`: ``yy < 50`` is ``20yy``, else ``19yy``. The
generator draws dates between 1990 and 2029, where that rule is never ambiguous.

The data are synthetic (templates and a fixed seed); no real report was used.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from neuraltext.vocab import BOS, EOS, PAD, UNK, Vocab  # noqa: F401 (re-exported names)

__all__ = [
    "MONTHS",
    "WEEKDAYS",
    "FORMATS",
    "DAY_FORMATS",
    "MONTH_FORMATS",
    "HELD_OUT_FORMATS",
    "CLINICAL_TEMPLATES",
    "YEAR_PIVOT",
    "DateSet",
    "DateSplits",
    "date_pairs",
    "date_splits",
    "format_date",
    "exact_match",
    "exact_match_by",
    "CharVocab",
    "source_vocab",
    "target_vocab",
    "normalize_date",
    "find_dates",
]

MONTHS: list[str] = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                     "septembre", "octobre", "novembre", "décembre"]
# Abbreviations as reports write them (with the dot when the word is cut).
MONTH_ABBREVIATIONS: list[str] = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août",
                                  "sept.", "oct.", "nov.", "déc."]
WEEKDAYS: list[str] = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]

#: Two-digit years: ``yy < YEAR_PIVOT`` -> 20yy, else 19yy.
YEAR_PIVOT = 50
FIRST_YEAR, LAST_YEAR = 1990, 2029


def _day_word(d: dt.date, rng: random.Random) -> str:
    """'1er' for the first of the month half of the time (as French writes it), else the number."""
    if d.day == 1 and rng.random() < 0.5:
        return "1er"
    return str(d.day)


# name -> (writer, has_day). Writers take the date and a random generator (for the few choices
# that vary within a format: "1er" or "1").
FORMATS: dict[str, tuple[Callable[[dt.date, random.Random], str], bool]] = {
    "le d mois yyyy": (lambda d, r: f"le {_day_word(d, r)} {MONTHS[d.month - 1]} {d.year}", True),
    "d mois yyyy": (lambda d, r: f"{_day_word(d, r)} {MONTHS[d.month - 1]} {d.year}", True),
    "le jour d mois yyyy": (
        lambda d, r: f"le {WEEKDAYS[d.weekday()]} {_day_word(d, r)} {MONTHS[d.month - 1]} {d.year}", True),
    "d mois. yyyy": (lambda d, r: f"{_day_word(d, r)} {MONTH_ABBREVIATIONS[d.month - 1]} {d.year}", True),
    "dd/mm/yy": (lambda d, r: f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}", True),
    "dd/mm/yyyy": (lambda d, r: f"{d.day:02d}/{d.month:02d}/{d.year}", True),
    "dd.mm.yyyy": (lambda d, r: f"{d.day:02d}.{d.month:02d}.{d.year}", True),
    "dd.mm.yy": (lambda d, r: f"{d.day:02d}.{d.month:02d}.{d.year % 100:02d}", True),
    "dd-mm-yyyy": (lambda d, r: f"{d.day:02d}-{d.month:02d}-{d.year}", True),
    "mois yyyy": (lambda d, r: f"{MONTHS[d.month - 1]} {d.year}", False),
    "en mois yyyy": (lambda d, r: f"en {MONTHS[d.month - 1]} {d.year}", False),
    "mm/yyyy": (lambda d, r: f"{d.month:02d}/{d.year}", False),
}
DAY_FORMATS = tuple(name for name, (_, has_day) in FORMATS.items() if has_day)
MONTH_FORMATS = tuple(name for name, (_, has_day) in FORMATS.items() if not has_day)

#: Formats kept out of training by :func:`date_splits` by default: a new separator ("-") and the
#: abbreviated month names. Every character in them is known from other formats or phrases.
HELD_OUT_FORMATS: tuple[str, ...] = ("dd-mm-yyyy", "d mois. yyyy")

#: Short phrases of the kind oncology reports are made of; ``{}`` is where the date goes.
CLINICAL_TEMPLATES: list[str] = [
    "Biopsie mammaire {}.",
    "Patiente vue en consultation {}.",
    "Mastectomie gauche réalisée {}.",
    "RCP {} : chimiothérapie adjuvante.",
    "Date de diagnostic : {}",
    "Début de l'hormonothérapie {}.",
    "Scanner TAP {}, sans anomalie.",
    "Dernière mammographie {}.",
    "Tumorectomie {}, marges saines.",
    "Consultation d'annonce {}.",
    "Radiothérapie terminée {}.",
    "Échographie axillaire {} : normale.",
]


def format_date(date: dt.date, fmt: str, rng: random.Random | None = None) -> tuple[str, str]:
    """Write ``date`` in format ``fmt`` (a key of :data:`FORMATS`); return (source, ISO target).

    The target is ``YYYY-MM-DD`` for formats with a day and ``YYYY-MM`` for month formats.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown date format {fmt!r}; known formats: {list(FORMATS)}")
    writer, has_day = FORMATS[fmt]
    source = writer(date, rng or random.Random(0))
    target = date.isoformat() if has_day else f"{date.year:04d}-{date.month:02d}"
    return source, target


@dataclass
class DateSet:
    """Aligned lists: ``sources[i]`` is written in format ``formats[i]`` and normalises to ``targets[i]``.

    Iterating yields ``(source, target)`` pairs, so ``for src, tgt in dataset`` and ``list(dataset)``
    work as for a list of pairs; ``formats`` is there for per-format scores.
    """

    sources: list[str]
    targets: list[str]
    formats: list[str]

    def __post_init__(self):
        if not (len(self.sources) == len(self.targets) == len(self.formats)):
            raise ValueError(f"DateSet lists differ in length: {len(self.sources)} sources, "
                             f"{len(self.targets)} targets, {len(self.formats)} formats")

    def __len__(self) -> int:
        return len(self.sources)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(zip(self.sources, self.targets))

    def __getitem__(self, i: int | slice) -> tuple[str, str] | DateSet:
        """A (source, target) pair, or a smaller ``DateSet`` for a slice."""
        if isinstance(i, slice):
            return DateSet(self.sources[i], self.targets[i], self.formats[i])
        return self.sources[i], self.targets[i]

    def pairs(self) -> list[tuple[str, str]]:
        return list(zip(self.sources, self.targets))


def _all_dates() -> list[dt.date]:
    start, end = dt.date(FIRST_YEAR, 1, 1), dt.date(LAST_YEAR, 12, 31)
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def _check_formats(formats: Sequence[str]) -> list[str]:
    formats = list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown or empty date formats {unknown or formats!r}; known: {list(FORMATS)}")
    return formats


def _generate(dates: Sequence[dt.date], n: int, formats: Sequence[str], p_context: float,
              rng: random.Random) -> DateSet:
    if not 0.0 <= p_context <= 1.0:
        raise ValueError(f"p_context must lie in [0, 1], got {p_context}")
    sources, targets, fmts = [], [], []
    for _ in range(n):
        fmt = rng.choice(formats)
        source, target = format_date(rng.choice(dates), fmt, rng)
        if rng.random() < p_context:
            source = rng.choice(CLINICAL_TEMPLATES).format(source)
        sources.append(source)
        targets.append(target)
        fmts.append(fmt)
    return DateSet(sources, targets, fmts)


def date_pairs(n: int, seed: int = 0, formats: Sequence[str] | None = None,
               p_context: float = 0.5) -> DateSet:
    """``n`` seeded (source, target) pairs, dates drawn uniformly in 1990-2029.

    ``formats``: names from :data:`FORMATS` (default: all), drawn uniformly. ``p_context``: the
    probability that the date is embedded in a short clinical phrase from
    :data:`CLINICAL_TEMPLATES` rather than given alone.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return _generate(_all_dates(), n, _check_formats(formats or list(FORMATS)), p_context,
                     random.Random(seed))


@dataclass
class DateSplits:
    """``train`` and ``test`` use the training formats; ``held_out`` uses only the held-out formats.

    The months of ``test`` and ``held_out`` never occur in ``train`` (the test measures
    generalisation to new dates, ``held_out`` to new dates *and* new ways of writing them).
    """

    train: DateSet
    test: DateSet
    held_out: DateSet
    train_formats: list[str]
    held_out_formats: list[str] = field(default_factory=list)


def date_splits(n_train: int = 20_000, n_test: int = 2_000, seed: int = 0,
                held_out_formats: Sequence[str] = HELD_OUT_FORMATS, p_context: float = 0.5,
                n_held_out: int | None = None, test_fraction_dates: float = 0.2) -> DateSplits:
    """Seeded train / test / held-out-format splits with disjoint calendar months.

    The 480 months of 1990-2029 are shuffled once with ``seed``; a fraction ``test_fraction_dates``
    of them is reserved for ``test`` and ``held_out``, the rest for ``train``. No test date -- not
    even its month and year, so not ``novembre 2015`` either -- is seen in training. ``held_out_formats`` never appear
    in ``train`` or ``test``; ``held_out`` has ``n_held_out`` pairs (default ``n_test``) written only in
    them (empty when no format is held out).
    """
    held = _check_formats(held_out_formats) if held_out_formats else []
    train_formats = [f for f in FORMATS if f not in held]
    if not train_formats:
        raise ValueError("every format is held out: nothing left to train on")
    if not 0.0 < test_fraction_dates < 1.0:
        raise ValueError(f"test_fraction_dates must lie in (0, 1), got {test_fraction_dates}")
    rng = random.Random(seed)
    months = sorted({(d.year, d.month) for d in _all_dates()})
    rng.shuffle(months)
    test_months = set(months[: int(len(months) * test_fraction_dates)])
    test_days = [d for d in _all_dates() if (d.year, d.month) in test_months]
    train_days = [d for d in _all_dates() if (d.year, d.month) not in test_months]
    train = _generate(train_days, n_train, train_formats, p_context, rng)
    test = _generate(test_days, n_test, train_formats, p_context, rng)
    n_held = n_test if n_held_out is None else n_held_out
    held_out = (_generate(test_days, n_held, held, p_context, rng) if held
                else DateSet([], [], []))
    return DateSplits(train, test, held_out, train_formats, held)


# --------------------------------------------------------------------------------------------
# Metric


def exact_match(preds: Sequence[str], targets: Sequence[str]) -> float:
    """Fraction of predictions equal, character for character, to their target (0.0 .. 1.0)."""
    if len(preds) != len(targets):
        raise ValueError(f"exact_match: {len(preds)} predictions but {len(targets)} targets")
    if not targets:
        raise ValueError("exact_match: no targets to score")
    return sum(p == t for p, t in zip(preds, targets)) / len(targets)


def exact_match_by(preds: Sequence[str], targets: Sequence[str],
                   groups: Sequence) -> dict:
    """Exact match within each group (e.g. ``groups=dataset.formats``, or input lengths)."""
    if not (len(preds) == len(targets) == len(groups)):
        raise ValueError(f"exact_match_by: {len(preds)} predictions, {len(targets)} targets, "
                         f"{len(groups)} groups")
    hits, counts = defaultdict(int), defaultdict(int)
    for p, t, g in zip(preds, targets, groups):
        hits[g] += p == t
        counts[g] += 1
    return {g: hits[g] / counts[g] for g in counts}


# --------------------------------------------------------------------------------------------
# Character vocabularies

_FRENCH_LETTERS = "àâäçéèêëîïôöùûüÿœæÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸŒÆ"
SOURCE_CHARS = string.ascii_letters + string.digits + _FRENCH_LETTERS + " .,:;/-'()"
TARGET_CHARS = string.digits + "-"


def CharVocab(chars: str) -> Vocab:  # noqa: N802 (the name of the class it replaced)
    """The vocabulary of a fixed alphabet: :meth:`neuraltext.tokenize.Vocab.from_characters`.

    One ``Vocab`` class serves every chapter, with the same special tokens and ids as chapter 1
    (``<pad>`` 0, ``<unk>`` 1, ``<s>`` 2, ``</s>`` 3, ``<mask>`` 4): ``<s>`` starts the decoder's
    input, ``</s>`` ends a sequence. ``pad_id``/``bos_id``/``eos_id``/``unk_id``, ``encode(text,
    bos=, eos=)``, ``decode(ids) -> str`` and ``batch(texts)`` work as the date models expect.
    """
    return Vocab.from_characters(chars)


def source_vocab() -> Vocab:
    """Vocabulary of the source side: letters (with French accents), digits, punctuation."""
    return CharVocab(SOURCE_CHARS)


def target_vocab() -> Vocab:
    """Vocabulary of the target side: the eleven characters of ISO dates (digits and '-')."""
    return CharVocab(TARGET_CHARS)


# --------------------------------------------------------------------------------------------
# Rule-based reference normaliser


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


# Month word (accents stripped, lower case) -> month number; full names and usual abbreviations.
_MONTH_WORDS: dict[str, int] = {}
for _i, _name in enumerate(MONTHS, start=1):
    _MONTH_WORDS[_strip_accents(_name)] = _i
for _i, _abbr in enumerate(MONTH_ABBREVIATIONS, start=1):
    _MONTH_WORDS[_strip_accents(_abbr.rstrip("."))] = _i
_MONTH_WORDS.update({"fev": 2, "janv": 1, "sep": 9, "dec": 12, "juil": 7, "aou": 8})
_MONTH_RE = "|".join(sorted(_MONTH_WORDS, key=len, reverse=True))
_WEEKDAY_RE = "|".join(WEEKDAYS)

# Patterns run on lower-case, accent-stripped text (same length as the original, so spans map back).
_PATTERNS: list[tuple[str, re.Pattern]] = [
    # 24 fevrier 2017, 1er mars 2016, mardi 24 fevr. 2017
    ("day_month_name", re.compile(
        rf"\b(?:(?:{_WEEKDAY_RE})\s+)?(?P<d>\d{{1,2}})(?:er)?\s+(?P<m>{_MONTH_RE})\.?\s+(?P<y>\d{{4}}|\d{{2}})\b")),
    # 24/08/2018, 24.08.18, 24-08-2018
    ("numeric", re.compile(r"(?<![\d/.\-])(?P<d>\d{1,2})(?P<sep>[/.\-])(?P<m>\d{1,2})(?P=sep)"
                           r"(?P<y>\d{4}|\d{2})(?![\d/\-]|\.\d)")),
    # 2017-02-24 (already ISO)
    ("iso", re.compile(r"(?<![\d\-])(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?![\d\-])")),
    # novembre 2015, fevr. 2017
    ("month_name", re.compile(rf"\b(?P<m>{_MONTH_RE})\.?\s+(?P<y>\d{{4}})\b")),
    # 11/2015
    ("month_numeric", re.compile(r"(?<![\d/.\-])(?P<m>\d{1,2})[/.](?P<y>\d{4})(?![\d/]|\.\d)")),
]


def _fold_char(c: str) -> str:
    """One character, lower case and without its accent ('É' -> 'e'); unchanged if that is not 1 char."""
    base = unicodedata.normalize("NFD", c)[0].lower()
    return base if len(base) == 1 else c


def _year(text: str) -> int:
    y = int(text)
    if len(text) == 2:
        y += 2000 if y < YEAR_PIVOT else 1900
    return y


def _month(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    return _MONTH_WORDS.get(text.rstrip("."))


def find_dates(text: str) -> list[tuple[int, int, str]]:
    """Every date expression in ``text``: ``(start, end, iso)`` sorted by position.

    ``iso`` is ``YYYY-MM-DD`` when the day is written, ``YYYY-MM`` otherwise. Candidates that are not
    real calendar dates (``31/02/2017``, month 13) are dropped, not repaired. A year alone is not
    returned (too ambiguous: ages, sizes, counts). Returns ``[]`` for empty or date-free text.
    """
    if not isinstance(text, str):
        raise TypeError(f"find_dates expects a str, got {type(text).__name__}")
    folded = "".join(_fold_char(c) for c in text)  # same length as text: spans map back
    found: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for _, pattern in _PATTERNS:
        for m in pattern.finditer(folded):
            start, end = m.span()
            if any(start < e and s < end for s, e in taken):
                continue  # a longer, earlier-pattern match already covers this text
            taken.append((start, end))  # even if invalid: "32 janvier 2017" is not read as "janvier 2017"
            month = _month(m.group("m"))
            year = _year(m.group("y"))
            if month is None or not 1 <= month <= 12:
                continue
            if "d" in m.groupdict() and m.group("d") is not None:
                try:
                    iso = dt.date(year, month, int(m.group("d"))).isoformat()
                except ValueError:
                    continue  # 31/02, day 0 ...: not a date, and not repaired
            else:
                iso = f"{year:04d}-{month:02d}"
            found.append((start, end, iso))
    return sorted(found)


def normalize_date(text: str) -> str | None:
    """The first date in ``text`` in ISO form, or ``None`` when there is no date ("not a date").

    >>> normalize_date("le 24 février 2017"), normalize_date("26/11/15"), normalize_date("en novembre 2015")
    ('2017-02-24', '2015-11-26', '2015-11')
    >>> normalize_date(""), normalize_date("pas de date ici"), normalize_date("31/02/2017")
    (None, None, None)

    Non-string input raises ``TypeError``; every string gets an answer.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize_date expects a str, got {type(text).__name__}")
    dates = find_dates(text)
    return dates[0][2] if dates else None
