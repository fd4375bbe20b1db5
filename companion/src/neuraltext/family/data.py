"""Use case 1, the data: French teenagers' sentences about their family, coded by a psychiatrist.

The study (Journal of Medical Artificial Intelligence, 2022) labelled 1,648 sentences. Each line of
its files is a *code*, a space, then the sentence::

    jf+,js+ J'ai 2 frères et deux sœurs et je m'entend plutôt bien avec.
    si J'ai deux grandes demi-sœur du côté de mon père.

A code is a comma-separated list of *groups*; a group is one or more subject letters followed by one
valence symbol. The sentence's labels are the union over its groups, as eleven binary labels::

    valence   +  positive relationship (understanding, affection, cooperation)
              -  negative relationship (conflict, disagreement, no normal relationship)
              0  neutral relationship
              i  informative: no valence, facts about habits or living conditions
    subjects  j  the respondent ("je")     f  brother (frère)     s  sister (sœur)
              p  father (père)             m  mother (mère)       a  the family as a whole
              t  a third person

so ``jf+,js+`` -> {+, j, f, s} and ``si`` -> {i, s}. The label vector ``y`` is in {0, 1}^11 in the
order of :data:`LABELS`.

The real sentences are private. :func:`synthetic_family_sentences` writes seeded French stand-ins in
the same format, with the study's size (1,648 sentences, split 1,318 / 330, stratified on the labels)
and label frequencies close to its test set's supports (each within about 10% on average over seeds;
neutral labels mostly from neutral sentences). :func:`read_family_file` reads a real file of the
same format.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuraltext.data.files import read_text

__all__ = [
    "VALENCES",
    "SUBJECTS",
    "LABELS",
    "LABEL_NAMES",
    "STUDY_SIZES",
    "STUDY_TEST_SUPPORT",
    "CodeError",
    "FamilyFileError",
    "FamilySentences",
    "parse_code",
    "parse_line",
    "labels_to_code",
    "to_matrix",
    "read_family_file",
    "write_family_file",
    "synthetic_family_sentences",
]

VALENCES = ("+", "-", "0", "i")
SUBJECTS = ("j", "f", "s", "p", "m", "a", "t")
#: The eleven labels, in the order of the study's table (the columns of ``y``).
LABELS = VALENCES + SUBJECTS
LABEL_NAMES = {
    "+": "positive", "-": "negative", "0": "neutral", "i": "informative",
    "j": "respondent (je)", "f": "brother", "s": "sister", "p": "father", "m": "mother",
    "a": "family", "t": "third person",
}
#: The study's sizes: all labelled sentences, training and test partitions.
STUDY_SIZES = {"total": 1648, "train": 1318, "test": 330}
#: Supports of each label in the study's test set of 330 sentences (the lecture's table).
STUDY_TEST_SUPPORT = {"+": 72, "-": 63, "0": 47, "i": 146, "j": 263, "f": 36, "s": 57,
                      "p": 124, "m": 123, "a": 72, "t": 23}


# ------------------------------------------------------------------------------------ the codes
class CodeError(ValueError):
    """A code that does not follow the study's scheme."""


def parse_code(code: str) -> frozenset[str]:
    """``"jf+,js+"`` -> ``frozenset({"+", "j", "f", "s"})``: the union of the groups' labels.

    Raises :class:`CodeError` naming the offending group and the valid letters.
    """
    if not isinstance(code, str) or not code.strip():
        raise CodeError(f"empty code {code!r}: expected groups like 'jm+' or 'si', separated by commas")
    labels: set[str] = set()
    for group in code.strip().split(","):
        labels |= _parse_group(group)
    return frozenset(labels)


def _parse_group(group: str) -> set[str]:
    valid = (f"one or more subject letters {''.join(SUBJECTS)!r} followed by one valence symbol "
             f"{''.join(VALENCES)!r}")
    if len(group) < 2:
        raise CodeError(f"group {group!r} is too short: a group is {valid}")
    subjects, valence = group[:-1], group[-1]
    if valence not in VALENCES:
        raise CodeError(f"group {group!r} does not end with a valence symbol: a group is {valid}")
    bad = [c for c in subjects if c not in SUBJECTS]
    if bad:
        raise CodeError(f"group {group!r} has {''.join(bad)!r}, not a subject letter: a group is {valid}")
    return set(subjects) | {valence}


def labels_to_code(labels) -> str:
    """The canonical code of a label set: every subject (in :data:`SUBJECTS` order) with each
    valence, e.g. {+, j, f, s} -> ``"jfs+"`` and {+, -, j, m} -> ``"jm+,jm-"``.

    Grouping is lost when codes become labels (``jf+,js+`` and ``jfs+`` have the same labels), so
    the round trip is code -> labels -> canonical code -> the same labels.
    """
    labels = set(labels)
    unknown = labels - set(LABELS)
    if unknown:
        raise CodeError(f"unknown labels {sorted(unknown)}: allowed are {''.join(LABELS)!r}")
    valences = [v for v in VALENCES if v in labels]
    subjects = "".join(s for s in SUBJECTS if s in labels)
    if not valences or not subjects:
        raise CodeError(f"labels {sorted(labels)} need at least one valence and one subject to make a code")
    return ",".join(subjects + v for v in valences)


def parse_line(line: str) -> tuple[frozenset[str], str]:
    """``"mp- Ma maman est séparée de mon père."`` -> (labels, sentence)."""
    code, _, sentence = line.strip().partition(" ")
    if not sentence.strip():
        raise CodeError(f"no sentence after the code {code!r}: a line is '<code> <sentence>'")
    return parse_code(code), sentence.strip()


def to_matrix(label_sets) -> np.ndarray:
    """Label sets -> ``y`` of shape (n, 11), 0/1, columns in :data:`LABELS` order."""
    index = {label: j for j, label in enumerate(LABELS)}
    y = np.zeros((len(label_sets), len(LABELS)), dtype=np.int64)
    for i, labels in enumerate(label_sets):
        if isinstance(labels, str) and len(labels) > 1:  # "jm+" is a code, not a set of labels
            raise CodeError(f"label_sets[{i}] is the string {labels!r}: pass a set of labels "
                            f"(parse_code({labels!r}) makes one)")
        for label in labels:
            if label not in index:
                raise CodeError(f"label_sets[{i}] has the unknown label {label!r}: allowed are {''.join(LABELS)!r}")
            y[i, index[label]] = 1
    return y


# ------------------------------------------------------------------------------------- files
class FamilyFileError(ValueError):
    """A file in the study's format has bad lines; the message lists every one (file:line)."""


@dataclass
class FamilySentences:
    """Sentences with their label sets; ``y`` is the (n, 11) 0/1 matrix in :data:`LABELS` order."""

    sentences: list[str]
    labels: list[frozenset[str]]
    source: str = "synthetic"

    def __post_init__(self):
        if len(self.sentences) != len(self.labels):
            raise ValueError(f"{len(self.sentences)} sentences but {len(self.labels)} label sets")

    @property
    def y(self) -> np.ndarray:
        return to_matrix(self.labels)

    @property
    def codes(self) -> list[str]:
        return [labels_to_code(labels) for labels in self.labels]

    def __len__(self) -> int:
        return len(self.sentences)

    def subset(self, index) -> "FamilySentences":
        return FamilySentences([self.sentences[i] for i in index], [self.labels[i] for i in index], self.source)

    def split(self, n_test: int = STUDY_SIZES["test"], seed: int = 0,
              stratify: bool = True) -> tuple["FamilySentences", "FamilySentences"]:
        """A seeded train/test split (the study's 1,318 / 330 for 1,648 sentences), stratified on the
        eleven labels by default (``iterative-stratification``), so that every label's share in the
        test part is its share in the whole (the study's table gives its test set's supports);
        ``stratify=False``: a plain random split."""
        if not 0 < n_test < len(self):
            raise ValueError(f"n_test must be between 1 and {len(self) - 1}, got {n_test}")
        if not stratify:
            order = np.random.default_rng(seed).permutation(len(self))
            return self.subset(order[n_test:]), self.subset(order[:n_test])
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        k = max(2, round(len(self) / n_test))  # one fold of k is the test part (its size, to within a few)
        folds = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        train, test = next(folds.split(np.zeros(len(self)), self.y))
        rng = np.random.default_rng(seed)  # the stratifier's sizes can be off by a few: make them exact
        if len(test) > n_test:
            extra = rng.choice(len(test), len(test) - n_test, replace=False)
            train, test = np.concatenate([train, test[extra]]), np.delete(test, extra)
        elif len(test) < n_test:
            extra = rng.choice(len(train), n_test - len(test), replace=False)
            train, test = np.delete(train, extra), np.concatenate([test, train[extra]])
        return self.subset(sorted(train)), self.subset(sorted(test))

    def support(self) -> dict[str, int]:
        """How many sentences carry each label."""
        return dict(zip(LABELS, self.y.sum(axis=0).tolist()))

    def lines(self) -> list[str]:
        return [f"{code} {sentence}" for code, sentence in zip(self.codes, self.sentences)]


def read_family_file(path: str | os.PathLike, encoding: str = "utf-8") -> FamilySentences:
    """Read a file in the study's format (one ``<code> <sentence>`` per line; blank lines skipped).

    Every bad line is reported, not only the first, as ``file:line: group ... (valid letters)``;
    nothing is skipped silently.
    """
    text = read_text(path, encoding)  # reports undecodable bytes by file and line
    sentences, labels, errors = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            line_labels, sentence = parse_line(line)
        except CodeError as err:
            errors.append(f"{path}:{number}: {err}")
            continue
        sentences.append(sentence)
        labels.append(line_labels)
    if errors:
        raise FamilyFileError(f"{len(errors)} bad line(s) in {path}:\n" + "\n".join(errors))
    if not sentences:
        raise FamilyFileError(f"{path} has no coded sentences")
    return FamilySentences(sentences, labels, source=str(path))


def write_family_file(data: FamilySentences, path: str | os.PathLike) -> Path:
    """Write ``data`` in the study's format (canonical codes), UTF-8."""
    path = Path(path)
    path.write_text("\n".join(data.lines()) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- synthetic data
# Each subject letter, with the ways a teenager writes it (and the verb agreement's gender).
_PEOPLE = {
    "m": ["ma mère", "maman", "ma maman", "ma mére", "ma mère"],
    "p": ["mon père", "papa", "mon papa", "mon pére", "mon beau-père"],
    "s": ["ma sœur", "ma soeur", "ma petite sœur", "ma grande sœur", "ma demi-sœur", "mes sœurs"],
    "f": ["mon frère", "mon frere", "mon petit frère", "mon grand frère", "mon demi-frère", "mes frères"],
    "a": ["ma famille", "toute la famille", "ma famille", "mes parents et moi", "tout le monde à la maison"],
    "t": ["ma grand-mère", "mon oncle", "ma tante", "le copain de ma mère", "mon parrain", "ma cousine"],
}
# Relations the respondent ("je") has with someone, by valence. {X}: the people.
_WITH_ME = {
    "+": ["je m'entends bien avec {X}", "je m'entend très bien avec {X}", "je m'entends plutôt bien avec {X}",
          "j'adore passer du temps avec {X}", "avec {X} on aime bien faire les magasins",
          "{X} me soutient toujours quand ça va pas", "je suis très proche de {X}",
          "je ne me dispute jamais avec {X}", "avec {X} on rigole beaucoup", "j'aime beaucoup {X}",
          "je peux tout dire à {X}", "{X} et moi on s'adore"],
    "-": ["je me dispute souvent avec {X}", "je ne m'entends pas du tout avec {X}",
          "je m'entend mal avec {X}", "{X} me crie dessus tout le temps", "je ne parle plus à {X}",
          "avec {X} c'est la guerre", "je supporte plus {X}", "{X} ne m'écoute jamais",
          "je ne vois plus {X} depuis des années", "j'ai pas une bonne relation avec {X}",
          "je ne suis pas proche de {X}"],
    "0": ["je m'entends normalement avec {X}", "avec {X} ça va, sans plus", "je vois {X} de temps en temps",
          "avec {X} c'est ni bien ni mal", "je parle un peu avec {X}", "je m'entends moyennement avec {X}",
          "avec {X} ça dépend des jours", "je m'entends comme tout le monde avec {X}",
          "{X} et moi on se parle normalement"],
    "i": ["j'habite avec {X}", "le week-end je vais chez {X}", "je vis chez {X} la semaine",
          "je mange avec {X} le soir", "je vais à l'école avec {X}", "je partage ma chambre avec {X}",
          "pendant les vacances je pars avec {X}"],
}
# Sentences about others only (no "je" in the relation).
_WITHOUT_ME = {
    "+": ["{X} s'entendent très bien", "{X} s'aiment beaucoup", "{X} rigolent souvent ensemble"],
    "-": ["{X} sont séparés", "{X} se disputent souvent", "{X} ne se parlent plus", "{X} sont divorcés"],
    "0": ["{X} s'entendent normalement", "{X} se voient de temps en temps"],
    "i": ["{X} travaille à l'hôpital", "{X} a fait {n} enfants", "{X} habite à {ville}", "{X} a {age} ans",
          "{X} travaille beaucoup", "{X} fait du sport le dimanche", "{X} est au lycée", "{X} est né en {year}"],
}
# A person already named in the respondent's text, referred to by a pronoun ("avec elle").
_PRONOUNS = {"m": "elle", "s": "elle", "t": "lui", "p": "lui", "f": "lui", "a": "eux"}
_OPENERS = ["", "", "", "", "Sinon ", "En fait ", "Alors ", "Bon ", "Et ", "Par contre "]
_ENDINGS = [".", ".", ".", ".", "", " !", "...", " en ce moment.", " depuis toujours.", " je crois."]
_TOWNS = ["Versailles", "Paris", "Lyon", "Marseille", "Nantes", "Lille"]
# Slips as in the study's lines ("je m'entend", "ont aime", "à fait", "demi-sœur" for the plural).
_SLIPS = [("m'entends", "m'entend"), (" on ", " ont "), (" a ", " à "), ("é", "e"), ("è", "e"),
          ("sœur", "soeur"), ("ça", "sa"), ("beaucoup", "bcp"), ("parle", "parles")]


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " et " + names[-1]


class _FamilyGenerator:
    """Draws label sets with the study's frequencies, then a sentence that expresses them."""

    # P(subject present | it is not the respondent), tuned so the label frequencies of 1,648
    # sentences come close to the study's test supports (STUDY_TEST_SUPPORT / 330).
    SUBJECT_P = {"m": 0.18, "p": 0.18, "s": 0.18, "f": 0.11, "a": 0.2, "t": 0.053}
    # P(valence of the sentence's content), tuned with the noise below to the study's supports
    # (+ 72, - 63, 0 47, i 146 of 330): the neutral sentences are neutral by their words.
    VALENCE_P = {"+": 0.19, "-": 0.165, "0": 0.085, "i": 0.455}
    # what a coder may read a valence as, instead (one of these, equally likely)
    NEIGHBOURS = {"+": ["0", "i"], "-": ["0", "i"], "0": ["+", "-"], "i": ["+", "-", "0"]}

    def __init__(self, rng: np.random.Generator, label_noise: float, pronoun_rate: float = 0.3):
        self.rng = rng
        self.label_noise = label_noise
        self.pronoun_rate = pronoun_rate

    def pick(self, items):
        return items[int(self.rng.integers(len(items)))]

    def people(self) -> list[str]:
        chosen = [s for s, p in self.SUBJECT_P.items() if self.rng.random() < p]
        if not chosen:  # every sentence is about someone
            chosen = [self.pick(["m", "p"])]
        return [s for s in SUBJECTS if s in chosen]

    def clause(self, valence: str, subjects: list[str], with_me: bool) -> str:
        names = _join([self.pick(_PEOPLE[s]) for s in subjects])
        if with_me and len(subjects) == 1 and self.rng.random() < self.pronoun_rate:
            # the person was named in an earlier sentence: only a pronoun is left to go on
            names = _PRONOUNS[subjects[0]]
        table = _WITH_ME if with_me else _WITHOUT_ME
        template = self.pick(table[valence])
        return template.format(X=names, n=int(self.rng.integers(2, 6)), age=int(self.rng.integers(8, 60)),
                               ville=self.pick(_TOWNS), year=int(self.rng.integers(1965, 2015)))

    def sentence(self) -> tuple[str, frozenset[str]]:
        valence = self._draw(self.VALENCE_P)
        subjects = self.people()
        # the respondent is in ~80% of the study's sentences (j: 263 of 330)
        with_me = self.rng.random() < (0.93 if valence != "i" else 0.62)
        if not with_me and valence != "i" and len(subjects) == 1:
            subjects = sorted({subjects[0], self.pick(["m", "p"])}, key=SUBJECTS.index)
        text = self.clause(valence, subjects, with_me)
        labels = set(subjects) | {valence} | ({"j"} if with_me else set())
        if self.rng.random() < 0.03:  # a second clause with another valence (mixed feelings)
            other = self._draw({v: p for v, p in self.VALENCE_P.items() if v != valence})
            more = self.people()
            text += self.pick([" mais ", ", par contre ", " et "]) + self.clause(other, more, True)
            labels |= set(more) | {other, "j"}
        labels = self._noisy(labels)
        text = self.pick(_OPENERS) + text
        text = text[0].upper() + text[1:] + self.pick(_ENDINGS)
        return self._slips(text), frozenset(labels)

    def _draw(self, probs: dict[str, float]) -> str:
        keys = list(probs)
        p = np.array([probs[k] for k in keys])
        return keys[int(self.rng.choice(len(keys), p=p / p.sum()))]

    def _noisy(self, labels: set[str]) -> set[str]:
        """Coders disagree: with probability ``label_noise`` a valence is read as a neighbouring one
        (:attr:`NEIGHBOURS`: positive or negative taken for neutral or informative, and back); the
        study's neutral class was the hardest, F1 0.39 at best. Most neutral labels still come from
        neutral sentences: the noise moves about as many labels out of ``0`` as into it."""
        if self.rng.random() < self.label_noise:
            valence = self.pick([v for v in VALENCES if v in labels])
            labels = (labels - {valence}) | {self.pick(self.NEIGHBOURS[valence])}
        if self.rng.random() < self.label_noise / 2:  # ... and on who is meant ("ma famille" or "a"?)
            person = self.pick([s for s in SUBJECTS if s in labels and s != "j"] or ["a"])
            labels = (labels - {person}) | {self.pick(["a", "t", "m", "p"])}
        return labels

    def _slips(self, text: str) -> str:
        for right, wrong in _SLIPS:
            if right in text and self.rng.random() < 0.12:
                text = text.replace(right, wrong, 1)
        return text


def synthetic_family_sentences(n: int = STUDY_SIZES["total"], seed: int = 0,
                               label_noise: float = 0.15) -> FamilySentences:
    """``n`` seeded synthetic sentences in the study's format (1,648 by default).

    How they are made: a valence is drawn with the study's frequencies, then the people (each with
    its own probability, the respondent in ~80% of sentences), then a French sentence from templates
    for that valence (negation included: "je ne me dispute jamais" is positive), the people's names
    varied as teenagers write them ("maman" / "ma mère" / "ma mére"), sometimes a second clause with
    another valence, spelling slips, and coder disagreement with probability ``label_noise`` (a
    valence read as a neighbouring one: positive or negative as neutral or informative, and back), so
    that no model can reach F1 = 1. Neutral labels come mostly from neutral sentences (about three in
    four at the default noise), not from the noise; some people are only a pronoun ("je m'entends
    bien avec elle": the mother or the sister?), as in a text where they were named earlier. Synthetic: say so wherever it is used.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of sentences, got {n}")
    if not 0.0 <= label_noise < 1.0:
        raise ValueError(f"label_noise must be in [0, 1), got {label_noise}")
    gen = _FamilyGenerator(np.random.default_rng(seed), label_noise)
    pairs = [gen.sentence() for _ in range(n)]
    return FamilySentences([s for s, _ in pairs], [labels for _, labels in pairs], source=f"synthetic(seed={seed})")
