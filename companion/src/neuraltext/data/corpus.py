"""A seeded synthetic French corpus with planted structure.

The course's word-embedding chapters need text in which *something* can be learned, and the
study's texts are private. This generator writes simple French sentences from templates whose slots
are filled by words that share a hidden structure:

* family members come in **gender pairs** (père/mère, frère/sœur ...) and belong to a
  **generation** (grand-parents, parents, siblings, children). Gender shows up in the context only
  through French agreement (``mon``/``ma``, ``il``/``elle``, ``content``/``contente``), generation
  through what people do (``retraite``, ``travail``, ``lycée``, ``crèche``);
* feelings are positive or negative adjectives, agreed in gender;
* medical sentences tie each **organ** to its **specialist** (poumon/pneumologue ...).

Because the structure is planted, the analogies it implies (``père : mère :: frère : sœur``,
``poumon : pneumologue :: cœur : cardiologue``) are known in advance and can be used to *evaluate*
embeddings trained on the corpus. The text is synthetic and says so; word frequencies are skewed
(Zipf-like weights on every slot) so that frequent-word subsampling has work to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import permutations

import numpy as np

__all__ = ["SyntheticCorpus", "synthetic_corpus", "FAMILY", "FEELINGS", "ORGANS"]

# (masculine, feminine, generation): generation 2 = grand-parents, 1 = parents' generation,
# 0 = the teenager's own, -1 = children.
FAMILY: list[tuple[str, str, int]] = [
    ("grand-père", "grand-mère", 2),
    ("papi", "mamie", 2),
    ("père", "mère", 1),
    ("oncle", "tante", 1),
    ("parrain", "marraine", 1),
    ("beau-père", "belle-mère", 1),
    ("frère", "sœur", 0),
    ("cousin", "cousine", 0),
    ("demi-frère", "demi-sœur", 0),
    ("fils", "fille", -1),
    ("neveu", "nièce", -1),
]

# What each generation does: the only context that separates generations.
GENERATION_CONTEXT: dict[int, list[str]] = {
    2: ["est à la retraite", "jardine tous les jours", "raconte ses souvenirs de jeunesse",
        "habite à la campagne", "tricote près du feu"],
    1: ["part au travail tôt", "rentre tard du bureau", "paie les factures",
        "conduit la voiture", "prépare le dîner après le travail"],
    0: ["révise pour le brevet", "va au lycée", "joue aux jeux vidéo",
        "sort avec ses amis", "fait ses devoirs de maths"],
    -1: ["va à la crèche", "apprend à marcher", "pleure la nuit", "joue avec ses jouets",
         "fait la sieste"],
}

# (masculine, feminine, valence)
FEELINGS: list[tuple[str, str, str]] = [
    ("content", "contente", "+"), ("heureux", "heureuse", "+"), ("fier", "fière", "+"),
    ("gentil", "gentille", "+"), ("drôle", "drôle", "+"), ("généreux", "généreuse", "+"),
    ("triste", "triste", "-"), ("énervé", "énervée", "-"), ("fâché", "fâchée", "-"),
    ("jaloux", "jalouse", "-"), ("méchant", "méchante", "-"), ("inquiet", "inquiète", "-"),
    ("fatigué", "fatiguée", "0"), ("occupé", "occupée", "0"),
]

RELATIONS_POS = ["aime", "aide", "écoute", "protège", "embrasse", "console", "admire"]
RELATIONS_NEG = ["déteste", "critique", "ignore", "engueule", "évite", "jalouse"]

# (organ, article, specialist)
ORGANS: list[tuple[str, str, str]] = [
    ("poumon", "le", "pneumologue"), ("cœur", "le", "cardiologue"), ("peau", "la", "dermatologue"),
    ("sein", "le", "sénologue"), ("rein", "le", "néphrologue"), ("foie", "le", "hépatologue"),
    ("côlon", "le", "gastro-entérologue"), ("prostate", "la", "urologue"),
    ("cerveau", "le", "neurologue"), ("sang", "le", "hématologue"),
]
TREATMENTS = ["chimiothérapie", "radiothérapie", "chirurgie", "immunothérapie", "hormonothérapie"]
EXAMS = ["scanner", "irm", "biopsie", "échographie", "radiographie"]
FINDINGS = ["un carcinome", "une tumeur", "une lésion suspecte", "des métastases", "un nodule"]


@dataclass
class SyntheticCorpus:
    """Tokenised sentences plus the structure that was planted in them.

    Attributes:
        sentences: one list of lower-case word tokens per sentence (``"."`` included).
        analogies: ``(a, b, c, d)`` quadruples meaning *a is to b as c is to d*, by section name
            (``"gender"``, ``"generation"``, ``"specialist"``), as in gensim's questions-words format.
        groups: word lists by category (``"masculine"``, ``"feminine"``, ``"organ"`` ...) for plots.
        seed: the seed that generated it.
    """

    sentences: list[list[str]]
    analogies: dict[str, list[tuple[str, str, str, str]]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    seed: int = 0

    @property
    def n_tokens(self) -> int:
        return sum(len(s) for s in self.sentences)

    def text(self) -> str:
        """The corpus as plain text, one sentence per line."""
        return "\n".join(" ".join(s) for s in self.sentences)

    def vocabulary(self) -> list[str]:
        """Distinct words, sorted."""
        return sorted({w for s in self.sentences for w in s})

    def analogy_file(self) -> str:
        """All planted analogies in gensim's ``questions-words.txt`` format (``: section`` headers)."""
        lines = []
        for section, quads in self.analogies.items():
            lines.append(f": {section}")
            lines.extend(" ".join(q) for q in quads)
        return "\n".join(lines) + "\n"

    def __len__(self) -> int:
        return len(self.sentences)

    def __repr__(self) -> str:
        return (f"SyntheticCorpus({len(self.sentences):,} sentences, {self.n_tokens:,} tokens, "
                f"{len(self.vocabulary()):,} word types, seed={self.seed})")


def _zipf(n: int, s: float = 0.8) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def _planted_analogies() -> dict[str, list[tuple[str, str, str, str]]]:
    gender = [(m1, f1, m2, f2) for (m1, f1, _), (m2, f2, _) in permutations(FAMILY, 2)]
    # generation: one step up the family tree, same gender (frère : père :: sœur : mère)
    steps = [
        [("frère", "père"), ("sœur", "mère"), ("cousin", "oncle"), ("cousine", "tante")],
        [("père", "grand-père"), ("mère", "grand-mère"), ("oncle", "papi"), ("tante", "mamie")],
    ]
    generation = [(a, b, c, d) for pairs in steps for (a, b), (c, d) in permutations(pairs, 2)]
    specialist = [(o1, s1, o2, s2) for (o1, _, s1), (o2, _, s2) in permutations(ORGANS, 2)]
    return {"gender": gender, "generation": generation, "specialist": specialist}


def _groups() -> dict[str, list[str]]:
    return {
        "masculine": [m for m, _, _ in FAMILY],
        "feminine": [f for _, f, _ in FAMILY],
        "feeling+": sorted({w for m, f, v in FEELINGS if v == "+" for w in (m, f)}),
        "feeling-": sorted({w for m, f, v in FEELINGS if v == "-" for w in (m, f)}),
        "organ": [o for o, _, _ in ORGANS],
        "specialist": [s for _, _, s in ORGANS],
        "treatment": list(TREATMENTS),
    }


class _Generator:
    """Fills sentence templates; every choice is drawn from one seeded NumPy generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.member_p = _zipf(len(FAMILY), 0.5)
        self.feeling_p = _zipf(len(FEELINGS), 0.6)
        self.organ_p = _zipf(len(ORGANS), 0.6)

    def pick(self, items, p=None):
        return items[self.rng.choice(len(items), p=p)]

    def member(self) -> tuple[str, str, str, int]:
        """(word, possessive, pronoun, generation) with agreement."""
        m, f, gen = self.pick(FAMILY, self.member_p)
        if self.rng.random() < 0.5:
            return m, "mon", "il", gen
        return f, "ma", "elle", gen

    def feeling(self, pronoun: str) -> str:
        m, f, _ = self.pick(FEELINGS, self.feeling_p)
        return m if pronoun == "il" else f

    def family_sentence(self) -> str:
        kind = self.rng.integers(6)
        w, poss, pron, gen = self.member()
        if kind == 0:
            return f"{poss} {w} est {self.feeling(pron)} ."
        if kind == 1:
            w2, poss2, _, _ = self.member()
            rel = self.pick(RELATIONS_POS if self.rng.random() < 0.6 else RELATIONS_NEG)
            return f"{poss} {w} {rel} {poss2} {w2} ."
        if kind == 2:
            return f"{poss} {w} {self.pick(GENERATION_CONTEXT[gen])} ."
        if kind == 3:
            return f"je trouve que {poss} {w} est très {self.feeling(pron)} ."
        if kind == 4:
            return f"{pron} {self.pick(GENERATION_CONTEXT[gen])} et {pron} est {self.feeling(pron)} ."
        rel = self.pick(RELATIONS_POS + RELATIONS_NEG)
        return f"je {rel} {poss} {w} car {pron} {self.pick(GENERATION_CONTEXT[gen])} ."

    def medical_sentence(self) -> str:
        organ, art, spec = self.pick(ORGANS, self.organ_p)
        kind = self.rng.integers(5)
        of = "du" if art == "le" else "de la"
        if kind == 0:
            w, poss, _, _ = self.member()
            return f"le {spec} examine {art} {organ} de {poss} {w} ."
        if kind == 1:
            return f"le {self.pick(EXAMS)} {of} {organ} montre {self.pick(FINDINGS)} ."
        if kind == 2:
            return f"le {spec} propose une {self.pick(TREATMENTS)} pour le cancer {of} {organ} ."
        if kind == 3:
            w, poss, _, _ = self.member()
            return f"{poss} {w} consulte le {spec} pour {art} {organ} ."
        return f"un rendez-vous chez le {spec} est prévu pour surveiller {art} {organ} ."


def synthetic_corpus(n_tokens: int = 1_000_000, seed: int = 0, medical_share: float = 0.3) -> SyntheticCorpus:
    """Generate about ``n_tokens`` tokens of synthetic French (family life and medicine).

    Args:
        n_tokens: stop once at least this many tokens are generated (default one million, a few
            seconds).
        seed: the same seed always gives the same corpus.
        medical_share: fraction of sentences about organs, exams and specialists.
    """
    if not isinstance(n_tokens, (int, np.integer)) or n_tokens < 1:
        raise ValueError(f"n_tokens must be a positive integer, got {n_tokens!r}")
    if not 0.0 <= medical_share <= 1.0:
        raise ValueError(f"medical_share must be in [0, 1], got {medical_share!r}")
    gen = _Generator(np.random.default_rng(seed))
    sentences: list[list[str]] = []
    total = 0
    while total < n_tokens:
        if gen.rng.random() < medical_share:
            s = gen.medical_sentence()
        else:
            s = gen.family_sentence()
        tokens = s.split()
        sentences.append(tokens)
        total += len(tokens)
    return SyntheticCorpus(sentences, _planted_analogies(), _groups(), seed)
