"""Writes chapter 6's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch06.py"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import code, exercise, exercises_intro, replace_exercises, solution, solution_end, solution_start  # noqa: E402

CELLS = [
    exercises_intro("Exercises 1 to 3 are", "Exercises 4 and 5 are experiments with the chapter's model."),
    code("""import math

import torch
from neuraltext import labs"""),
    exercise("ex-06-causal", "Attention with a causal mask", r"""
Write `causal_attention(q, k, v)` for `q`, `k` of shape `(..., T, d_k)` and `v` of shape `(..., T, d_v)`:
$\mathrm{softmax}(QK^\top / \sqrt{d_k} + M)\,V$ where $M_{ij} = -\infty$ for $j > i$, so that position
$i$ only mixes the values of positions $0, \dots, i$. Use `torch` operations only (not
`F.scaled_dot_product_attention`, which the check compares you with)."""),
    solution_start("ex-06-causal", "Mask the scores above the diagonal before the softmax:"),
    code('''def causal_attention(q, k, v):
    """softmax(q k^T / sqrt(d_k) + causal mask) v, over the last two dimensions."""
    ### BEGIN SOLUTION
    T, d_k = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)   # True where j > i
    scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("06.causal_attention", causal_attention)'),
    exercise("ex-06-layernorm", "Layer normalisation", r"""
Write `layer_norm(x, gamma, beta, eps=1e-5)`: normalise each vector of the last dimension of `x` to
mean 0 and variance 1, then scale and shift,
$\mathrm{LN}(\mathbf{x}) = \boldsymbol{\gamma} \odot \frac{\mathbf{x} - \mu}{\sqrt{\sigma^2 + \epsilon}} + \boldsymbol{\beta}$,
with $\mu$ and $\sigma^2$ the mean and the (biased) variance of $\mathbf{x}$'s entries. The check
compares it with `F.layer_norm`, including rows whose entries are all equal."""),
    solution_start("ex-06-layernorm", "The statistics run over the last dimension only, one pair per vector:"),
    code('''def layer_norm(x, gamma, beta, eps=1e-5):
    """gamma * (x - mean) / sqrt(var + eps) + beta, statistics over the last dimension."""
    ### BEGIN SOLUTION
    mu = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, unbiased=False, keepdim=True)
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("06.layer_norm", layer_norm)'),
    exercise("ex-06-positions", "Sinusoidal positions", r"""
Write `positions(max_len, d_model)` returning the `(max_len, d_model)` float32 matrix of the
sinusoidal encoding: $PE_{pos, 2i} = \sin(pos / 10000^{2i/d})$ and $PE_{pos, 2i+1} = \cos(pos / 10000^{2i/d})$."""),
    solution_start("ex-06-positions", "One angle per pair of columns, then sine in the even ones and cosine in the odd ones:"),
    code('''def positions(max_len, d_model):
    """The (max_len, d_model) sinusoidal positional encoding, float32."""
    ### BEGIN SOLUTION
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angle = pos / 10000.0 ** (two_i / d_model)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)
    return pe.float()
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("06.sinusoidal_positions", positions)'),
    exercise("ex-06-nopos", "No positions", r"""
Train the date transformer without positional encoding (set `transformer.src_pos` and
`transformer.tgt_pos` to `nn.Identity()` before training). What does the exact match become, and why?"""),
    solution("ex-06-nopos", r"""
Without positions the encoder sees a bag of characters: `24/11/15` and `15/11/24` look the same to it,
so it cannot tell the day from the year, and you should see the exact match fall sharply, most on the
all-digit formats (the decoder can still count its own output through its causal mask, but cannot read
the source in order)."""),
    exercise("ex-06-postnorm", "Post-norm", r"""
Switch the date transformer to post-norm (`norm_first=False`) with the same learning rate. Does it
still train?"""),
    solution("ex-06-postnorm", r"""
Expect post-norm to learn more slowly at this budget, or to need a lower learning rate: the gradient has
to cross a layer norm at every block, while pre-norm leaves the residual path untouched
{cite}`xiong2020prenorm`. The original transformer used post-norm with a long learning-rate warm-up."""),
]

if __name__ == "__main__":
    replace_exercises(Path(__file__).resolve().parents[2] / "book" / "06_transformer.ipynb", CELLS)
