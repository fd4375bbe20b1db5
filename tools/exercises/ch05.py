"""Writes chapter 5's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch05.py"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import code, exercise, exercises_intro, replace_exercises, solution, solution_end, solution_start  # noqa: E402

CELLS = [
    exercises_intro("Exercises 1 to 3 are", "Exercises 4 to 6 are experiments with the chapter's model and data."),
    code("""import torch
from neuraltext import labs"""),
    exercise("ex-05-additive", "Additive attention", r"""
Write `additive_attention(h_t, h_bar, W_1, W_2, b_2, v_a, mask)` returning `(c_t, alpha)` for a batch:
the decoder states `h_t` `(B, D_q)`, the encoder states `h_bar` `(B, S, D_v)`, and `mask` `(B, S)`,
True on the real source positions (padding comes after them). The score is the table's additive one,
with the bias that `AdditiveAttention` puts on $W_2$:
$e_{tj} = \mathbf{v}_a^\top \tanh(W_1 \mathbf{h}_t + W_2 \bar{\mathbf{h}}_j + \mathbf{b}_2)$, with `W_1`
`(A, D_q)`, `W_2` `(A, D_v)`, `b_2` and `v_a` `(A,)`. A padded position gets score $-\infty$, hence
weight 0; then `alpha` `(B, S)` is equation {eq}`s2s-alpha` and `c_t` `(B, D_v)` equation
{eq}`s2s-context`. The check compares you with `seq2seq.AdditiveAttention` loaded with the same
weights, including a source of one position and scores large enough to overflow a naive softmax."""),
    solution_start("ex-05-additive", r"""
$W_2 \bar{\mathbf{h}}_j$ for every $j$ at once, broadcast against $W_1 \mathbf{h}_t$; `torch.softmax`
subtracts the maximum, so large scores do not overflow, and $e^{-\infty} = 0$ removes the padding:"""),
    code('''def additive_attention(h_t, h_bar, W_1, W_2, b_2, v_a, mask):
    """Bahdanau's score, masked softmax over source positions, context: returns (c_t (B, D_v), alpha (B, S))."""
    ### BEGIN SOLUTION
    hidden = torch.tanh((h_t @ W_1.T)[:, None, :] + h_bar @ W_2.T + b_2)   # (B, S, A)
    scores = hidden @ v_a                                                     # (B, S)
    scores = scores.masked_fill(~mask, float("-inf"))
    alpha = torch.softmax(scores, dim=-1)
    c_t = (alpha[:, :, None] * h_bar).sum(dim=1)                              # (B, D_v)
    return c_t, alpha
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("05.additive_attention", additive_attention)'),
    exercise("ex-05-luong", "Luong's scores", r"""
Write `luong_score(h_t, h_bar, W_a=None)` returning the scores `(B, S)` of the decoder states `h_t`
`(B, D_q)` against the encoder states `h_bar` `(B, S, D_v)`: the dot score
$\mathbf{h}_t^\top \bar{\mathbf{h}}_j$ when `W_a` is `None` (then $D_q = D_v$), else the general score
$\mathbf{h}_t^\top W_a \bar{\mathbf{h}}_j$ with `W_a` `(D_q, D_v)`. The check compares you with
`seq2seq.DotAttention` and `seq2seq.GeneralAttention` (loaded with the same $W_a$)."""),
    solution_start("ex-05-luong", r"""
The general score is the dot score on $W_a \bar{\mathbf{h}}_j$ (which is what `GeneralAttention.project_keys`
computes once per source):"""),
    code('''def luong_score(h_t, h_bar, W_a=None):
    """Dot score h_t . h_bar_j, or general score h_t . (W_a h_bar_j): returns (B, S)."""
    ### BEGIN SOLUTION
    keys = h_bar if W_a is None else h_bar @ W_a.T      # (B, S, D_q)
    return (keys @ h_t[:, :, None])[:, :, 0]
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("05.luong_scores", luong_score)'),
    exercise("ex-05-exact-match", "Exact match", r"""
Write `my_exact_match(preds, targets)`: the fraction (a float in $[0, 1]$) of predicted strings equal,
character for character, to their target, the metric of the chapter's tables. The check compares you
with `neuraltext.data.exact_match`, including near misses (a trailing space, a missing zero)."""),
    solution_start("ex-05-exact-match", "A prediction counts only if it is the same string:"),
    code('''def my_exact_match(preds, targets):
    """Fraction of predictions equal to their target, character for character."""
    ### BEGIN SOLUTION
    return sum(p == t for p, t in zip(preds, targets)) / len(targets)
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("05.exact_match", my_exact_match)'),
    exercise("ex-05-scores", "Dot and general scores in the model", r"""
Train the model with `attention="dot"` and `attention="general"` (same size and budget). How do they
compare with the additive score, in exact match and in parameters?"""),
    solution("ex-05-scores", r"""
```python
for attention in ["dot", "general"]:
    torch.manual_seed(0)
    m = Seq2Seq(Seq2SeqConfig(len(src_vocab), len(tgt_vocab), hidden_size=SIZE["hidden_size"], attention=attention))
    train_seq2seq(m, splits.train.pairs(), src_vocab, tgt_vocab, epochs=SIZE["epochs"])
    print(attention, m.num_parameters(), exact_match(translate(m, splits.test.sources, src_vocab, tgt_vocab),
                                                     splits.test.targets))
```
The dot score has no parameters of its own: its model has {glue:text}`params_dot` parameters, the same
as the baseline without attention ({glue:text}`params_none`); the general score adds $W_a$
({glue:text}`params_general`), the additive one $W_1, W_2, \mathbf{v}_a$ ({glue:text}`params_additive`).
Expect all three near the attention column of the table above; differences of a few tenths of a
percent are within seed-to-seed noise, so compare several seeds before concluding."""),
    exercise("ex-05-dashes", "A held-out format", r"""
Make the held-out format `dd-mm-yyyy` learnable *without* training on it: what single change to the
training data would let the model know what `-` is?"""),
    solution("ex-05-dashes", r"""
Any training source containing `-` gives its embedding a gradient, so it stops being a random
vector; whether the model then treats it like `/` and `.` depends on the contexts it saw it in, so try
it rather than assume it. The cheapest sure fix is outside the network: map `-` to `/` before the model
(a one-line normalisation of the input). Training on the format itself works too, but then it is no
longer held out."""),
    exercise("ex-05-bare", "Bare dates only", r"""
Train the attention model on bare dates only (`date_splits(..., p_context=0.0)`), then test it on
dates inside clinical phrases. What happens, and why?"""),
    solution("ex-05-bare", r"""
```python
bare = date_splits(n_train=SIZE["n_train"], n_test=SIZE["n_test"], seed=0, p_context=0.0)
torch.manual_seed(0)
m = Seq2Seq(Seq2SeqConfig(len(src_vocab), len(tgt_vocab), hidden_size=SIZE["hidden_size"]))
train_seq2seq(m, bare.train.pairs(), src_vocab, tgt_vocab, epochs=SIZE["epochs"])
print(exact_match(translate(m, splits.test.sources, src_vocab, tgt_vocab), splits.test.targets))
```
Expect near-perfect exact match on bare test dates and a clear drop on the dates that sit inside a
phrase (compare `exact_match_by` on `splits.test.formats`, or group by source length as above). The
model never learned to ignore words: it sees only dates in training, so the characters of a phrase
push it to invent days and years from the context. Training data should look like the inputs the
model will meet."""),
]

if __name__ == "__main__":
    replace_exercises(Path(__file__).resolve().parents[2] / "book" / "05_seq2seq_attention.ipynb", CELLS)
