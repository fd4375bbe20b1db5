"""Writes chapter 2's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch02.py

Also tags `solution` the hidden body cell that computes only the numbers the solutions quote (the
`ex1_*`, `ex2_*`, `ex3_*` glue names), so the student notebook drops it.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import (code, exercise, exercises_intro, replace_exercises, solution, solution_end,  # noqa: E402
                solution_start, tag_solution_cell)

NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "02_cooccurrence_svd.ipynb"
HIDDEN = "# The numbers quoted in the solutions below"

CELLS = [
    exercises_intro("Exercises 1 and 2 are", "Exercises 3 to 5 are experiments with the chapter's models."),
    code("""import numpy as np

from neuraltext import labs"""),
    exercise("ex-02-cooc", "The co-occurrence matrix", r"""
Write `cooccurrence(sentences, vocabulary, window)`: `sentences` is a list of sentences, each a list
of words, and `vocabulary` a list of words (row and column $i$ are `vocabulary[i]`). Return the
`(len(vocabulary), len(vocabulary))` float64 NumPy array of {eq}`cooc-matrix`,
$C_{ij} = \#\{(s, p, q) : w_{s,p} = i,\ w_{s,q} = j,\ 0 < |p - q| \le \text{window}\}$:
pairs never cross two sentences, a word repeated near itself counts on the diagonal, and a word that
is not in the vocabulary adds nothing but still takes its position. The check compares it with
`neuraltext.cooccurrence.counts.cooccurrence_matrix(sentences, vocabulary, window).toarray()`, starting with the
lecture's toy corpus."""),
    solution_start("ex-02-cooc", "Two loops over the positions of each sentence are enough at this size:"),
    code('''def cooccurrence(sentences, vocabulary, window):
    """Symmetric counts of word pairs at most `window` positions apart in the same sentence."""
    ### BEGIN SOLUTION
    index = {w: i for i, w in enumerate(vocabulary)}
    C = np.zeros((len(vocabulary), len(vocabulary)))
    for sentence in sentences:
        for p, word in enumerate(sentence):
            if word not in index:
                continue
            for q in range(max(0, p - window), min(len(sentence), p + window + 1)):
                if q != p and sentence[q] in index:
                    C[index[word], index[sentence[q]]] += 1
    return C
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("02.cooccurrence", cooccurrence)'),
    exercise("ex-02-ppmi", "PPMI", r"""
Write `ppmi(C, alpha=1.0)` for a float64 NumPy array of counts `C` (any shape $n \times m$): with
$N = \sum_{kl} C_{kl}$, the row sums $r_i = \sum_k C_{ik}$ and the column sums $c_j = \sum_k C_{kj}$,

$$
\mathrm{PPMI}_{ij} = \max\left(0,\ \log \frac{C_{ij} / N}{(r_i / N)\, P_\alpha(j)}\right), \qquad
P_\alpha(j) = \frac{c_j^\alpha}{\sum_k c_k^\alpha},
$$

which is {eq}`cooc-ppmi` for $\alpha = 1$ (exercise {ref}`ex-02-alpha` is about $\alpha = 0.75$). An entry with
$C_{ij} = 0$ is 0, also in a row or column that is all zeros (no NaN). The check compares it with
`neuraltext.cooccurrence.counts.ppmi` on the toy matrix, a rectangular matrix and a word that never co-occurs."""),
    solution_start("ex-02-ppmi", "Compute the logarithm on the non-zero counts only:"),
    code('''def ppmi(C, alpha=1.0):
    """max(0, log(P(i, j) / (P(i) P_alpha(j)))), 0 where C is 0."""
    ### BEGIN SOLUTION
    N = C.sum()
    r = C.sum(axis=1)
    c = C.sum(axis=0) ** alpha
    p_context = c / c.sum()
    out = np.zeros_like(C)
    i, j = np.nonzero(C)
    out[i, j] = np.maximum(0.0, np.log(C[i, j] / N) - np.log(r[i] / N) - np.log(p_context[j]))
    return out
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("02.ppmi", ppmi)'),
    exercise("ex-02-window", "Window size", r"""
Change the window from 5 to 1 and to 10 and look again at the neighbours of `père` and
`poumon`. Which window favours words of the same *kind* (other family members), which favours
*topically related* words?"""),
    solution("ex-02-window", r"""
```python
for window in (1, 10):
    m = CooccurrenceSVD(window=window, n_components=SIZE["rank"]).fit(corpus.sentences)
    print(window, m.most_similar("père", 5), m.most_similar("poumon", 5))
```
Both windows keep family members together. A window of 1 only sees the immediate neighbours
(`mon`/`ma`, `le`/`la`, the next verb): the gender analogies still work
({glue:text}`ex1_window1_gender` of 110 at the default size) but the specialist ones collapse
({glue:text}`ex1_window1_specialist` of 90), because an organ and its specialist are never
adjacent. A window of 10 sees most of the sentence and links them
({glue:text}`ex1_window10_specialist` of 90): wide windows capture topics, narrow ones
grammatical roles."""),
    exercise("ex-02-alpha", "Context smoothing", r"""
Levy et al. {cite}`levy2015improving` raise the context counts to the power 0.75 before computing PPMI
(`CooccurrenceSVD(alpha=0.75)`). What does it do to the analogy scores?"""),
    solution("ex-02-alpha", r"""
```python
m = CooccurrenceSVD(window=5, n_components=SIZE["rank"], alpha=0.75).fit(corpus.sentences)
print({s: m.analogy_accuracy(q) for s, q in corpus.analogies.items()})
```
Smoothing raises the probability of rare contexts, which lowers their PMI: rare words (the
sizes in millimetres) weigh less. At the default size the specialist analogies go from
{glue:text}`analogy_PPMI_specialist` to {glue:text}`ex2_specialist` of 90, the gender ones from
{glue:text}`analogy_PPMI_gender` to {glue:text}`ex2_gender` of 110; on real text, with its long tail of rare
words, the effect is larger."""),
    exercise("ex-02-uk", "Without the singular values", r"""
The word vectors are $U_k D_k$. Try $U_k$ alone (divide `vectors_` by `singular_values_`).
Which works better for the analogies, and why might that be?"""),
    solution("ex-02-uk", r"""
```python
ppmi_model.vectors_ = ppmi_model.vectors_ / ppmi_model.singular_values_
ppmi_model._unit = ppmi_model.vectors_ / np.linalg.norm(ppmi_model.vectors_, axis=1, keepdims=True)
print({s: ppmi_model.analogy_accuracy(q) for s, q in corpus.analogies.items()})
```
Here $U_k$ alone gets {glue:text}`ex3_specialist` of 90 specialist analogies instead of
{glue:text}`analogy_PPMI_specialist`, and {glue:text}`ex3_gender` of 110 gender ones instead of
{glue:text}`analogy_PPMI_gender`. Without $D_k$ every dimension counts equally in the cosine, so
the weaker directions, where finer distinctions live, are not drowned by the first ones. Levy,
Goldberg and Dagan {cite}`levy2015improving` found on real text: the weight $D_k^p$ is a hyper-parameter,
and $p = 0$ or $p = 1/2$ often beats the textbook $p = 1$."""),
]



if __name__ == "__main__":
    replace_exercises(NOTEBOOK, CELLS)
    tag_solution_cell(NOTEBOOK, HIDDEN)
