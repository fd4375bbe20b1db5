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

Around the planted structure, *everyday* sentences (first names, hobbies, places, school subjects,
food, pets, transport, time expressions) and richer medical sentences (symptoms, drugs, services,
sizes, durations) give the default one-million-token corpus a vocabulary of about 1,400 word
types with a Zipf-like frequency profile. None of them carries a gender signal other than
agreement (``léa est contente``), and the generation-specific words (ages, activities) only ever
appear as generation contexts.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import permutations

import numpy as np

from neuraltext.data.lexicon import (FAMILY, GENERATION_CONTEXT, GENERATION_AGES, FEELINGS, RELATIONS_POS,
                                     RELATIONS_NEG, ORGANS, TREATMENTS, EXAMS, FINDINGS, SYMPTOMS, DRUGS,
                                     SERVICES, DURATIONS, STATES, NAMES_M, NAMES_F, HOBBIES, PLACES, CITIES,
                                     SUBJECTS, FOODS, PETS, TRANSPORT, TIMES, COUNTRIES, CLOTHES, COLORS,
                                     ACTIVITIES, WEATHER)

__all__ = ["SyntheticCorpus", "synthetic_corpus"]

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
    """Word lists by category (single-word entries only, so every word is a corpus token)."""
    def words(items):
        return [w for w in items if " " not in w]

    return {
        "masculine": [m for m, _, _ in FAMILY],
        "feminine": [f for _, f, _ in FAMILY],
        "feeling+": sorted({w for m, f, v in FEELINGS if v == "+" for w in (m, f)}),
        "feeling-": sorted({w for m, f, v in FEELINGS if v == "-" for w in (m, f)}),
        "organ": [o for o, _, _ in ORGANS],
        "specialist": [s for _, _, s in ORGANS],
        "treatment": words(TREATMENTS),
        "drug": list(DRUGS),
        "symptom": words(SYMPTOMS),
        "name_m": list(NAMES_M),
        "name_f": list(NAMES_F),
        "city": list(CITIES),
        "subject": words(SUBJECTS),
        "food": [f.split()[-1] for f in FOODS],
        "hobby": [h.split()[-1] for h in HOBBIES],
        "country": [c.split()[-1] for c in COUNTRIES],
        "clothes": [c.split()[-1] for c in CLOTHES],
    }


class _Choice:
    """A list with Zipf-like weights, sampled by inverse CDF (fast: one ``bisect`` per draw)."""

    def __init__(self, items, s: float = 1.0, rng: np.random.Generator | None = None):
        self.items = list(items)
        order = np.arange(len(self.items))
        if rng is not None:  # which item is frequent is itself seeded, not the list order
            order = rng.permutation(len(self.items))
        weights = np.empty(len(self.items))
        weights[order] = _zipf(len(self.items), s)
        self.cum = np.cumsum(weights).tolist()
        self.cum[-1] = 1.0 + 1e-12


class _Generator:
    """Fills sentence templates; every choice is drawn from one seeded NumPy generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self._u = iter(())  # uniform numbers, drawn from rng in blocks
        # The planted structure keeps its fixed frequency order (first = most frequent).
        self.members = _Choice(FAMILY, 0.5)
        self.feelings = _Choice(FEELINGS, 0.6)
        self.organs = _Choice(ORGANS, 0.6)
        self.generation = {g: _Choice(ctx, 0.8) for g, ctx in GENERATION_CONTEXT.items()}
        self.relations = _Choice(RELATIONS_POS + RELATIONS_NEG, 0.7)
        self.relations_pos = _Choice(RELATIONS_POS, 0.7)
        self.relations_neg = _Choice(RELATIONS_NEG, 0.7)
        # Everyday and clinical words: Zipf weights in a seeded order.
        lists = {"names_m": NAMES_M, "names_f": NAMES_F, "hobbies": HOBBIES, "places": PLACES,
                 "cities": CITIES, "subjects": SUBJECTS, "foods": FOODS, "pets": PETS,
                 "transport": TRANSPORT, "times": TIMES, "weather": WEATHER, "treatments": TREATMENTS,
                 "exams": EXAMS, "findings": FINDINGS, "symptoms": SYMPTOMS, "drugs": DRUGS,
                 "services": SERVICES, "durations": DURATIONS, "states": STATES,
                 "countries": COUNTRIES, "clothes": CLOTHES, "colors": COLORS, "activities": ACTIVITIES}
        for name, items in lists.items():
            setattr(self, name, _Choice(items, 0.9, rng))

    def random(self) -> float:
        try:
            return next(self._u)
        except StopIteration:
            self._u = iter(self.rng.random(4096).tolist())
            return next(self._u)

    def pick(self, choice: _Choice):
        return choice.items[bisect_right(choice.cum, self.random())]

    def integer(self, low: int, high: int) -> int:
        """Uniform integer in [low, high]."""
        return low + int(self.random() * (high - low + 1))

    # ---------------------------------------------------------------- people
    def member(self) -> tuple[str, str, str, int]:
        """(word, possessive, pronoun, generation) with agreement."""
        m, f, gen = self.pick(self.members)
        if self.random() < 0.5:
            return m, "mon", "il", gen
        return f, "ma", "elle", gen

    def person(self) -> tuple[str, str, str]:
        """(first name, pronoun, agreement suffix '' or 'e')."""
        if self.random() < 0.5:
            return self.pick(self.names_m), "il", ""
        return self.pick(self.names_f), "elle", "e"

    def feeling(self, pronoun: str) -> str:
        m, f, _ = self.pick(self.feelings)
        return m if pronoun == "il" else f

    # ---------------------------------------------------------------- sentences
    _FAMILY_KINDS = np.cumsum([1, 1, 1, 1, 1, 1, 0.75, 0.4, 0.4, 0.4]).tolist()

    def family_sentence(self) -> str:
        kind = bisect_right(self._FAMILY_KINDS, self.random() * self._FAMILY_KINDS[-1])
        w, poss, pron, gen = self.member()
        if kind == 0:
            return f"{poss} {w} est {self.feeling(pron)} ."
        if kind == 1:
            w2, poss2, _, _ = self.member()
            rel = self.pick(self.relations_pos if self.random() < 0.6 else self.relations_neg)
            return f"{poss} {w} {rel} {poss2} {w2} ."
        if kind == 2:
            return f"{poss} {w} {self.pick(self.generation[gen])} ."
        if kind == 3:
            return f"je trouve que {poss} {w} est très {self.feeling(pron)} ."
        if kind == 4:
            return f"{pron} {self.pick(self.generation[gen])} et {pron} est {self.feeling(pron)} ."
        if kind == 5:
            rel = self.pick(self.relations)
            return f"je {rel} {poss} {w} car {pron} {self.pick(self.generation[gen])} ."
        if kind == 6:  # age: a generation context
            return f"{poss} {w} a {self.integer(*GENERATION_AGES[gen])} ans ."
        if kind == 7:
            return f"{poss} {w} habite à {self.pick(self.cities)} ."
        if kind == 8:
            return f"{poss} {w} mange {self.pick(self.foods)} {self.pick(self.times)} ."
        return f"{self.pick(self.times)} {poss} {w} est {self.feeling(pron)} ."

    def everyday_sentence(self) -> str:
        name, pron, e = self.person()
        kind = int(self.random() * 13)
        if kind == 10:
            return f"{name} part en vacances {self.pick(self.countries)} {self.pick(self.times)} ."
        if kind == 11:
            art, garment = self.pick(self.clothes).split()
            m, f = self.pick(self.colors)
            return f"{name} porte {art} {garment} {m if art == 'un' else f} {self.pick(self.times)} ."
        if kind == 12:
            return f"{name} {self.pick(self.activities)} {self.pick(self.times)} ."
        if kind == 0:
            return f"{name} {self.pick(self.hobbies)} {self.pick(self.times)} ."
        if kind == 1:
            return f"{name} va {self.pick(self.places)} {self.pick(self.transport)} {self.pick(self.times)} ."
        if kind == 2:
            if self.random() < 0.5:
                return f"{name} habite à {self.pick(self.cities)} ."
            return f"{name} est né{e} à {self.pick(self.cities)} ."
        if kind == 3:
            mark = self.random()
            subject = self.pick(self.subjects)
            if mark < 0.4:
                return f"{name} a une bonne note en {subject} et {pron} est {self.feeling(pron)} ."
            if mark < 0.7:
                return f"{name} a une mauvaise note en {subject} ."
            return f"{name} est fort{e} en {subject} mais {pron} déteste le {self.pick(self.subjects)} ."
        if kind == 4:
            return f"{name} mange {self.pick(self.foods)} {self.pick(self.times)} ."
        if kind == 5:
            return f"{name} a {self.pick(self.pets)} et {pron} est {self.feeling(pron)} ."
        if kind == 6:
            return f"{self.pick(self.times)} {self.pick(self.weather)} alors {name} reste à la maison ."
        if kind == 7:
            return f"{name} est {self.feeling(pron)} car {pron} {self.pick(self.hobbies)} {self.pick(self.times)} ."
        if kind == 8:
            other, _, _ = self.person()
            return f"{name} et {other} vont {self.pick(self.places)} {self.pick(self.times)} ."
        return f"{name} part à {self.pick(self.cities)} {self.pick(self.transport)} {self.pick(self.times)} ."

    def medical_sentence(self) -> str:
        organ, art, spec = self.pick(self.organs)
        kind = int(self.random() * 10)
        of = "du" if art == "le" else "de la"
        if kind == 0:
            w, poss, _, _ = self.member()
            return f"le {spec} examine {art} {organ} de {poss} {w} ."
        if kind == 1:
            return f"le {self.pick(self.exams)} {of} {organ} montre {self.pick(self.findings)} ."
        if kind == 2:
            return f"le {spec} propose une {self.pick(self.treatments)} pour le cancer {of} {organ} ."
        if kind == 3:
            w, poss, _, _ = self.member()
            return f"{poss} {w} consulte le {spec} pour {art} {organ} ."
        if kind == 4:
            return f"un rendez-vous chez le {spec} est prévu pour surveiller {art} {organ} ."
        if kind == 5:
            w, poss, _, _ = self.member()
            return f"{poss} {w} se plaint de {self.pick(self.symptoms)} depuis {self.pick(self.durations)} ."
        if kind == 6:
            return (f"le {self.pick(self.exams)} {of} {organ} montre {self.pick(self.findings)} "
                    f"de {self.integer(2, 60)} mm .")
        if kind == 7:
            name, pron, e = self.person()
            return f"{name} est hospitalisé{e} en {self.pick(self.services)} depuis {self.pick(self.durations)} ."
        if kind == 8:
            return (f"le traitement par {self.pick(self.drugs)} est {self.pick(self.states)} "
                    f"et le {spec} surveille {art} {organ} .")
        name, pron, e = self.person()
        return (f"{name} prend {self.pick(self.drugs)} {self.integer(1, 4)} fois par jour "
                f"contre {self.pick(self.symptoms)} .")


def synthetic_corpus(n_tokens: int = 1_000_000, seed: int = 0, medical_share: float = 0.3) -> SyntheticCorpus:
    """Generate about ``n_tokens`` tokens of synthetic French (family life, everyday life, medicine).

    Args:
        n_tokens: stop once at least this many tokens are generated (default one million, a few
            seconds; about 1,400 word types).
        seed: the same seed always gives the same corpus.
        medical_share: fraction of sentences about organs, exams, symptoms and specialists. The other
            sentences are 60 % about family members (the planted structure), 40 % everyday life.
    """
    if not isinstance(n_tokens, (int, np.integer)) or n_tokens < 1:
        raise ValueError(f"n_tokens must be a positive integer, got {n_tokens!r}")
    if not 0.0 <= medical_share <= 1.0:
        raise ValueError(f"medical_share must be in [0, 1], got {medical_share!r}")
    gen = _Generator(np.random.default_rng(seed))
    family_cut = medical_share + 0.6 * (1.0 - medical_share)
    sentences: list[list[str]] = []
    total = 0
    while total < n_tokens:
        u = gen.random()
        if u < medical_share:
            s = gen.medical_sentence()
        elif u < family_cut:
            s = gen.family_sentence()
        else:
            s = gen.everyday_sentence()
        tokens = s.split()
        sentences.append(tokens)
        total += len(tokens)
    return SyntheticCorpus(sentences, _planted_analogies(), _groups(), seed)
