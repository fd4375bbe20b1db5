"""Evaluating word vectors on the synthetic corpus's planted structure (chapter 3).

The same functions score our vectors and gensim's (both as gensim ``KeyedVectors``): the planted
analogies (3CosAdd, gensim's ``evaluate_word_analogies``) and a word-similarity list built from the
planted groups (Spearman, gensim's ``evaluate_word_pairs``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["planted_similarity_pairs", "evaluate", "gensim_test_coverage"]


def planted_similarity_pairs(groups: dict[str, list[str]], pairs_per_group: int = 20,
                             seed: int = 0) -> str:
    """A word-similarity list in ``wordsim353.tsv`` format built from the corpus's planted groups.

    Two words of the same group (two organs, two positive feelings, two cities ...) score 10, two
    words of different groups score 0: a model whose cosine similarities rank same-group pairs above
    cross-group pairs gets a high Spearman correlation. ``pairs_per_group`` pairs of each kind per
    group, drawn with a fixed seed, so every model is scored on the same list.
    """
    rng = np.random.default_rng(seed)
    names = sorted(g for g in groups if len(groups[g]) >= 2)
    if len(names) < 2:
        raise ValueError(f"need at least two groups of two or more words, got {sorted(groups)}")
    lines = ["# planted similarity: same group 10, different groups 0", "# word1\tword2\tscore"]
    for name in names:
        words = groups[name]
        others = [w for g in names if g != name for w in groups[g] if w not in set(words)]
        for _ in range(pairs_per_group):
            a, b = rng.choice(len(words), size=2, replace=False)
            lines.append(f"{words[a]}\t{words[b]}\t10")
            lines.append(f"{words[a]}\t{others[rng.integers(len(others))]}\t0")
    return "\n".join(lines) + "\n"


def _tmp_text(text: str) -> Path:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(text)
    return Path(f.name)


def evaluate(kv, corpus) -> dict[str, float]:
    """Score gensim ``KeyedVectors`` (ours via :meth:`Word2Vec.to_keyed_vectors`, or gensim's
    ``model.wv``) on the corpus's planted analogies (3CosAdd, gensim's ``evaluate_word_analogies``)
    and planted similarity list (Spearman, gensim's ``evaluate_word_pairs``)."""
    analogy_path = _tmp_text(corpus.analogy_file())
    pairs_path = _tmp_text(planted_similarity_pairs(corpus.groups))
    try:
        total, sections = kv.evaluate_word_analogies(str(analogy_path))
        _, spearman, oov = kv.evaluate_word_pairs(str(pairs_path))
    finally:
        analogy_path.unlink()
        pairs_path.unlink()
    out = {"analogy": float(total)}
    for sec in sections:
        n = len(sec["correct"]) + len(sec["incorrect"])
        if sec["section"] != "Total accuracy" and n:
            out[f"analogy/{sec['section']}"] = len(sec["correct"]) / n
    out["similarity_spearman"] = float(spearman.statistic if hasattr(spearman, "statistic") else spearman[0])
    out["similarity_oov_%"] = float(oov)
    return out


def gensim_test_coverage(vocabulary: Iterable[str]) -> dict[str, str]:
    """How much of gensim's shipped English test sets (``questions-words.txt``, ``wordsim353.tsv``)
    a vocabulary covers: questions / pairs whose words are all known (case-insensitive)."""
    from gensim.test.utils import datapath

    vocab = {w.lower() for w in vocabulary}

    def covered(name: str, comment: str, words) -> tuple[int, int]:
        n = n_ok = 0
        with open(datapath(name), encoding="utf-8") as f:
            for line in f:
                if line.startswith(comment) or not line.strip():
                    continue
                n += 1
                n_ok += all(w.lower() in vocab for w in words(line))
        return n_ok, n

    n_q_ok, n_q = covered("questions-words.txt", ":", lambda line: line.split())
    n_p_ok, n_p = covered("wordsim353.tsv", "#", lambda line: line.split("\t")[:2])
    return {"questions-words.txt": f"{n_q_ok}/{n_q} questions", "wordsim353.tsv": f"{n_p_ok}/{n_p} pairs"}
