"""Writes chapter 3's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch03.py"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import code, exercise, exercises_intro, replace_exercises, solution, solution_end, solution_start  # noqa: E402

CELLS = [
    exercises_intro("Exercises 1 to 3 are", "Exercises 4 to 6 are experiments with the chapter's `Word2Vec`."),
    code("""import numpy as np
import torch
import torch.nn.functional as F

from neuraltext import labs"""),
    exercise("ex-03-loss", "The negative-sampling loss", r"""
Write `negative_sampling_loss(h, v_out, v_neg)` for a batch of $B$ examples: `h` of shape `(B, D)`
holds the centre words' input vectors $\mathbf{h}$, `v_out` `(B, D)` the output vectors
$\mathbf{v}_{w_O}$ of the true context words and `v_neg` `(B, k, D)` those of the $k$ noise words.
Return the loss to minimise, minus {eq}`w2v-negsampling` summed over the batch (the expectation
estimated by the $k$ samples), as a 0-dimensional tensor:

$$
-\sum_{b=1}^{B} \Big[\log \sigma(\mathbf{v}_{w_O}^\top \mathbf{h}) + \sum_{i=1}^{k} \log \sigma(-\mathbf{v}_{w_i}^\top \mathbf{h})\Big].
$$

The check compares it with `neuraltext.word2vec.model.sgns_loss`, among others on large scores (where
$\log(\sigma(x))$ computed naively becomes $-\infty$), on zero vectors and with $k = 0$."""),
    solution_start("ex-03-loss", "Two batched dot products, then `F.logsigmoid`, which stays finite for large scores:"),
    code('''def negative_sampling_loss(h, v_out, v_neg):
    """-sum_b [log sigma(v_O . h) + sum_i log sigma(-v_i . h)], a 0-dimensional tensor."""
    ### BEGIN SOLUTION
    pos = (v_out * h).sum(dim=-1)                          # (B,)
    neg = (v_neg @ h.unsqueeze(-1)).squeeze(-1)            # (B, k)
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(dim=-1)).sum()
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("03.negative_sampling_loss", negative_sampling_loss)'),
    exercise("ex-03-gradients", "Its gradient, by hand", r"""
Write `negative_sampling_gradients(h, v_out, v_neg)` returning the gradients of the same loss with
respect to `h`, `v_out` and `v_neg` (same shapes as the inputs), from {eq}`w2v-gradient`: with
$g_O = 1 - \sigma(\mathbf{v}_{w_O}^\top \mathbf{h})$ and $g_i = -\sigma(\mathbf{v}_{w_i}^\top \mathbf{h})$,
the gradients of $L$ are $g_j \mathbf{h}$ for each $\mathbf{v}_j$ and $\sum_j g_j \mathbf{v}_j$ for
$\mathbf{h}$, and the loss is $-L$. Write them in closed form, without autograd (you may use autograd
afterwards to test yourself). The check compares the tuple `(d_h, d_v_out, d_v_neg)` with
`neuraltext.word2vec.model.sgns_gradients`, which the chapter checked against autograd."""),
    solution_start("ex-03-gradients", "The same scores as the loss, then the three products of {eq}`w2v-gradient`, negated:"),
    code('''def negative_sampling_gradients(h, v_out, v_neg):
    """Gradients of negative_sampling_loss: (d_h, d_v_out, d_v_neg), shapes (B, D), (B, D), (B, k, D)."""
    ### BEGIN SOLUTION
    pos = (v_out * h).sum(dim=-1)                          # (B,)
    neg = (v_neg @ h.unsqueeze(-1)).squeeze(-1)            # (B, k)
    g_out = 1 - torch.sigmoid(pos)                         # y - sigma, y = 1
    g_neg = -torch.sigmoid(neg)                            # y - sigma, y = 0
    d_h = -(g_out[:, None] * v_out + (g_neg[:, :, None] * v_neg).sum(dim=1))
    d_v_out = -g_out[:, None] * h
    d_v_neg = -g_neg[:, :, None] * h[:, None, :]
    return d_h, d_v_out, d_v_neg
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("03.negative_sampling_gradients", negative_sampling_gradients)'),
    exercise("ex-03-noise", "The noise distribution", r"""
Write `noise_distribution(counts, exponent=0.75)`: for a 1-D NumPy array of word counts $U(w)$,
return the float64 array $P_n(w) = U(w)^{\text{exponent}} / \sum_{w'} U(w')^{\text{exponent}}$, the
distribution the noise words are drawn from ($3/4$ by default). The check compares it with
`neuraltext.word2vec.model.noise_distribution`, also with the exponents 0 (uniform) and 1 (unigram)."""),
    solution_start("ex-03-noise", "Power, then normalise; the float64 cast keeps integer counts from being raised as integers:"),
    code('''def noise_distribution(counts, exponent=0.75):
    """U(w)^exponent, normalised to sum to 1 (float64)."""
    ### BEGIN SOLUTION
    p = np.asarray(counts, dtype=np.float64) ** exponent
    return p / p.sum()
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("03.noise_distribution", noise_distribution)'),
    exercise("ex-03-sample", "No sub-sampling", r"""
Train with `sample=0` (no sub-sampling). What happens to the training time and to the analogy
scores?"""),
    solution("ex-03-sample", r"""
`Word2Vec(sample=0, epochs=SIZE["epochs"], workers=WORKERS).fit(corpus)`: the frequent words
`.`, `le`, `est`, `mon`, `ma` are no longer dropped (the table above keeps only 10-22% of their
occurrences), so there are many more training pairs and training takes longer; compare the
analogy scores: most of the extra updates only teach that function words appear everywhere."""),
    exercise("ex-03-exponent", "The noise exponent", r"""
Change the noise exponent `ns_exponent` from 0.75 to 0 (uniform noise) and to 1 (unigram noise).
Which section of the analogies suffers most?"""),
    solution("ex-03-exponent", r"""
`Word2Vec(ns_exponent=0.0, ...)` and `ns_exponent=1.0`. With uniform noise the frequent function
words are almost never negatives, so the model no longer learns that they are uninformative;
with unigram noise the rare words are almost never negatives. Compare the sections of
`evaluate(...)`: the rare organ and specialist words are the most sensitive."""),
    exercise("ex-03-cbow", "CBOW's learning rate", r"""
The word2vec code gives every CBOW context word the full gradient $\partial L / \partial \mathbf{h}$
instead of $\frac{1}{|C|}\partial L / \partial \mathbf{h}$, the true gradient of the mean. Why does
our CBOW default use a larger learning rate (0.2) than our skip-gram (0.05)?"""),
    solution("ex-03-cbow", r"""
With the true gradient, each of the $|C| \approx 4$ to $10$ context words receives a $|C|$ times
smaller step than in the word2vec code; a larger learning rate compensates. The output side
then also moves faster than gensim's; the table above shows how our CBOW compares with gensim's."""),
]

if __name__ == "__main__":
    replace_exercises(Path(__file__).resolve().parents[2] / "book" / "03_word2vec.ipynb", CELLS)
