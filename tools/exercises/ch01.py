"""Writes chapter 1's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch01.py

Also tags `solution` the hidden body cell that computes only the numbers the solutions quote (the
`ex1_*`, `ex2_*` glue names), so the student notebook drops it.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import (code, exercise, exercises_intro, replace_exercises, solution, solution_end,  # noqa: E402
                solution_start, tag_solution_cell)

NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "01_tokens.ipynb"
HIDDEN = "# The numbers quoted in the solutions below"

CELLS = [
    exercises_intro("Exercises 1 to 3 are", "Exercises 4 to 6 are experiments with the chapter's tokenizers."),
    code("""from collections import Counter

import numpy as np

from neuraltext import labs"""),
    exercise("ex-01-pair", "The pair BPE merges next", r"""
Write `most_frequent_pair(words, counts)`: `words` is a list of chunks, each a list of token ids, and
chunk `words[w]` occurs `counts[w]` times in the corpus. Return the pair of ids that BPE merges next,
{eq}`tok-bpe-merge`: $(a, b)^\star = \arg\max_{(a, b)} \sum_{w} n_w \, \#\{i : w_i = a,\ w_{i+1} = b\}$,
as a tuple `(a, b)`. Every adjacent pair counts, overlapping ones too (`[9, 9, 9]` holds `(9, 9)`
twice), and a tie goes to the smallest pair of ids (compare `a` first, then `b`), the rule of
`BPETokenizer` and of the `tokenizers` library. The check compares your pair with the first merge
that `BPETokenizer`'s training loop learns from the same chunks."""),
    solution_start("ex-01-pair", "Count with a `Counter`, then take the smallest of the pairs with the top count:"),
    code('''def most_frequent_pair(words, counts):
    """The pair of adjacent ids with the largest weighted count; ties to the smallest pair."""
    ### BEGIN SOLUTION
    pairs = Counter()
    for ids, n in zip(words, counts):
        for pair in zip(ids, ids[1:]):
            pairs[pair] += n
    best = max(pairs.values())
    return min(pair for pair, c in pairs.items() if c == best)
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("01.most_frequent_pair", most_frequent_pair)'),
    exercise("ex-01-merge", "One merge", r"""
Write `merge_pair(ids, pair, new_id)`: return a new list in which every occurrence of `pair = (a, b)`
in `ids` is replaced by `new_id`, scanning left to right without overlaps, so that
`merge_pair([0, 0, 0, 1], (0, 0), 4) == [4, 0, 1]`. This is what one BPE step does inside every chunk
once the pair is chosen. The check compares your list with the merge `BPETokenizer` applies, on
runs of equal ids, absent pairs, a one-id and an empty chunk."""),
    solution_start("ex-01-merge", "One pass, jumping over the second id of each merged pair:"),
    code('''def merge_pair(ids, pair, new_id):
    """ids with each non-overlapping (a, b), from the left, replaced by new_id."""
    ### BEGIN SOLUTION
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("01.merge_pair", merge_pair)'),
    exercise("ex-01-tfidf", "The TF-IDF matrix", r"""
Write `tfidf(docs)` for a list of documents, each a list of tokens: return the `(len(docs), n_terms)`
float64 NumPy array of the lecture's weights {eq}`tok-tf-idf` and {eq}`tok-tfidf`,
$\mathrm{tf}_{t,d} \cdot \log\big(|D| / |\{d_j \in D : t \in d_j\}|\big)$ (natural logarithm, raw counts
for tf), one column per distinct term in sorted order (`sorted(set(...))`). The check compares it with
`TfIdf().fit_transform(docs).toarray()`, among others on one document and on an empty document."""),
    solution_start("ex-01-tfidf", "Count into a dense matrix, then scale each column by its idf:"),
    code('''def tfidf(docs):
    """(documents x sorted terms) matrix of tf * log(|D| / df), float64."""
    ### BEGIN SOLUTION
    terms = sorted({t for doc in docs for t in doc})
    column = {t: j for j, t in enumerate(terms)}
    tf = np.zeros((len(docs), len(terms)))
    for i, doc in enumerate(docs):
        for t in doc:
            tf[i, column[t]] += 1
    df = (tf > 0).sum(axis=0)
    return tf * np.log(len(docs) / df)
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("01.tfidf", tfidf)'),
    exercise("ex-01-vocab-size", "BPE vocabulary size", r"""
Train `BPETokenizer` with `vocab_size` 400, 1,000 and 3,000 on the same texts and compare the
compression (characters per token). What limits it?"""),
    solution("ex-01-vocab-size", r"""
```python
for v in (400, 1000, 3000):
    tok = BPETokenizer(vocab_size=v).train(texts)
    print(v, len(tok.merges_), round(tok.compression(texts[:5000]), 2))
```
The vocabulary must first hold the 5 special tokens, the 256 byte tokens and the 81 characters
of the corpus, so 400 leaves room for only {glue:text}`ex1_merges_400` merges
({glue:text}`ex1_compression_400:.1f` characters per token); 1,000 gives
{glue:text}`ex1_compression_1000:.1f` and 3,000 {glue:text}`ex1_compression_3000:.1f`, close to the
5.0 of whole words. The limit is the word
tokenizer's: merges never cross a chunk, so a token is at most one word (with its space), and
once the frequent words are whole, each new merge gains less."""),
    exercise("ex-01-unk", "Rare words", r"""
`WordTokenizer(min_freq=5)` drops rare words. What fraction of the corpus tokens become `<unk>`?"""),
    solution("ex-01-unk", r"""
```python
tok = WordTokenizer(min_freq=5).fit(texts)
ids = [i for t in texts for i in tok.encode(t)]
print(np.mean(np.array(ids) == tok.vocab.unk_id))
```
{glue:text}`ex2_unk_percent:.1f` % of the tokens (on the default 200,000 words), although
{glue:text}`ex2_dropped_types` word types are dropped: rare words are many in the vocabulary but
few in the text."""),
    exercise("ex-01-idf", "Two idfs", r"""
Show on the three-document example that the lecture's TF-IDF gives the word `le` a zero weight
while scikit-learn's default `TfidfVectorizer()` does not. Which one would you use for a
classifier, and why?"""),
    solution("ex-01-idf", r"""
`TfIdf().fit_transform(docs)` has a zero column for `le` ($\log 3/3 = 0$), while
`TfidfVectorizer()` gives it $\log(4/4) + 1 = 1$ before normalising each row. For a linear
classifier the difference is small (a word in every document carries no class information
either way), but the smoothed version never divides by zero on unseen terms and the l2 norm makes
long and short sentences comparable."""),
]



if __name__ == "__main__":
    replace_exercises(NOTEBOOK, CELLS)
    tag_solution_cell(NOTEBOOK, HIDDEN)
