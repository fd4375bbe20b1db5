"""Chapter 1's exercises: one BPE step (the most frequent pair, then its merge) and the course's TF-IDF.

The references are the package's own code: the merge loop of :class:`~neuraltext.tokenize.BPETokenizer`
asked for a single merge (so the tie rule is the package's: the smallest pair of ids), its in-chunk
merge, and :class:`~neuraltext.tokenize.TfIdf` (checked against scikit-learn in the chapter).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from neuraltext.labs.check import Case, Exercise
from neuraltext.tokenize import BPETokenizer, TfIdf
from neuraltext.tokenize.bpe import _merge

_BASE = 0x4E00  # ids are spelled as distinct characters to run the package's trainer on them


def _most_frequent_pair_reference(words, counts):
    """The first merge the package's BPE trainer learns from chunks given as id lists with counts."""
    n_ids = max(max(w) for w in words if w) + 1
    itos = [chr(_BASE + i) for i in range(n_ids)]
    stoi = {c: i for i, c in enumerate(itos)}
    chunk_counts: Counter[str] = Counter()
    for w, n in zip(words, counts):
        chunk_counts["".join(itos[i] for i in w)] += n
    trainer = BPETokenizer(vocab_size=n_ids + 1, min_frequency=1, byte_fallback=False, specials=())
    merges, _ = trainer._learn_merges(chunk_counts, list(itos), dict(stoi))
    a, b = merges[0]
    return (stoi[a], stoi[b])


_AAABDAAABAC = [0, 0, 0, 1, 3, 0, 0, 0, 1, 0, 2]   # a=0, b=1, c=2, d=3
_AFTER_AA = [4, 0, 1, 3, 4, 0, 1, 0, 2]            # after merging (a, a) into 4


def _random_chunks(seed: int, n: int = 30, n_ids: int = 10):
    rng = np.random.default_rng(seed)
    words = [[int(i) for i in rng.integers(0, n_ids, size=int(rng.integers(1, 9)))] for _ in range(n)]
    return words, [int(c) for c in rng.integers(1, 21, size=n)]


def _pair_cases() -> list[Case]:
    return [
        Case("the string aaabdaaabac (a=0, b=1, c=2, d=3)", ([_AAABDAAABAC], [1])),
        Case("after the first merge: a tie between two pairs", ([_AFTER_AA], [1])),
        Case("chunk counts weigh the pairs", ([[1, 2], [1, 2], [7, 8]], [1, 1, 5])),
        Case("a run of three equal ids holds the pair twice", ([[9, 9, 9], [2, 3]], [1, 1])),
        Case("a tie: the pair seen first is not the smallest", ([[7, 5], [2, 9]], [2, 2])),
        Case("30 random chunks of 1 to 8 ids", _random_chunks(0)),
        Case("30 other random chunks", _random_chunks(1, n_ids=4)),
    ]


def _merge_reference(ids, pair, new_id):
    return _merge(list(ids), pair[0], pair[1], new_id)


def _merge_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    long = [int(i) for i in rng.integers(0, 3, size=60)]
    return [
        Case("aaabdaaabac, merge (a, a)", (_AAABDAAABAC, (0, 0), 4)),
        Case("a run of four equal ids", ([0, 0, 0, 0], (0, 0), 4)),
        Case("a run of three: left to right", ([0, 0, 0, 1], (0, 0), 4)),
        Case("alternating pair", ([1, 2, 1, 2, 1], (1, 2), 7)),
        Case("the pair is absent", ([3, 1, 2, 3], (2, 1), 9)),
        Case("one id", ([5], (5, 5), 6)),
        Case("an empty chunk", ([], (0, 1), 2)),
        Case("60 random ids from 3", (long, (1, 2), 3)),
    ]


def _tfidf_reference(docs):
    return TfIdf().fit_transform(docs).toarray()


def _tfidf_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    words = "le la un chat chien dort mange poisson lait sœur frère père".split()
    random_docs = [[str(w) for w in rng.choice(words, size=int(rng.integers(1, 8)))] for _ in range(20)]
    return [
        Case("the chapter's three documents", ([d.split() for d in ["le chat dort", "le chien dort",
                                                                     "le chat mange le poisson"]],)),
        Case("a term repeated in a document", ([["a", "a", "b"], ["b", "c"], ["c", "c", "c", "d"]],)),
        Case("accented words (columns sorted)", ([d.split() for d in ["ma sœur est contente", "mon frère est content",
                                                                       "mon père est là"]],)),
        Case("one document", ([["un", "deux", "deux"]],)),
        Case("an empty document", ([["x", "y"], [], ["y", "z"]],)),
        Case("20 random documents", (random_docs,)),
    ]


EXERCISES = [
    Exercise(
        id="01.most_frequent_pair",
        title="the pair BPE merges next",
        reference=_most_frequent_pair_reference,
        cases=_pair_cases,
        hint="count every adjacent pair of every chunk (overlapping ones too), weighted by the chunk's "
             "count; among the pairs with the largest count take the smallest (a, b).",
    ),
    Exercise(
        id="01.merge_pair",
        title="one BPE merge in a chunk",
        reference=_merge_reference,
        cases=_merge_cases,
        hint="scan left to right; when (a, b) starts at position i, emit new_id and jump to i + 2.",
    ),
    Exercise(
        id="01.tfidf",
        title="the course's TF-IDF matrix",
        reference=_tfidf_reference,
        cases=_tfidf_cases,
        rtol=1e-12, atol=1e-12,
        hint="columns are the sorted distinct terms; tf is the raw count, idf = log(|D| / df) with the "
             "natural logarithm; return a float64 NumPy array.",
    ),
]
