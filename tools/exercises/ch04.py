"""Writes chapter 4's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch04.py"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import code, exercise, exercises_intro, replace_exercises, solution, solution_end, solution_start  # noqa: E402

CELLS = [
    exercises_intro("Exercises 1, 3 and 4 are", "Exercises 2, 5 and 6 are experiments with the chapter's models."),
    code("""import math

import torch
from neuraltext import labs"""),
    exercise("ex-04-perplexity", "Perplexity by hand", r"""
A model gives the four tokens of a text the probabilities 0.5, 0.25, 0.125 and 1. Set `ppl` to its
perplexity, equation {eq}`perplexity`, $\exp\{-\frac{1}{M}\mathcal{L}\}$ with $M = 4$. The check
compares it with `lm.perplexity_from_log_probs` on the four log-probabilities (to 4 significant
digits at least: compute it rather than round it)."""),
    solution_start("ex-04-perplexity", r"""
$\mathcal{L} = \log 0.5 + \log 0.25 + \log 0.125 + \log 1 = -6 \log 2$, so the perplexity is
$\exp(6 \log 2 / 4) = 2^{1.5} \approx 2.83$:"""),
    code('''### BEGIN SOLUTION
ppl = math.exp(-sum(math.log(p) for p in (0.5, 0.25, 0.125, 1.0)) / 4)   # 2 ** 1.5
### END SOLUTION'''),
    solution_end(),
    code('labs.check("04.perplexity", ppl)'),
    exercise("ex-04-forget-bias", "The forget-gate bias", r"""
Set the forget-gate block of the LSTM's bias `b` to +3 at initialisation (the first quarter of
`model.rnn.cells[0].b`) and plot `lm.gradient_vs_distance` before training. What changes, and why?"""),
    solution("ex-04-forget-bias", r"""
With $b_f = 3$, $f_t = \sigma(3 + \dots) \approx 0.95$, so the cell-state path multiplies the
gradient by about 0.95 per step instead of about 0.5: the curve becomes much flatter. This is the
usual initialisation trick {cite}`jozefowicz2015empirical`.
```python
model = lm.RNNLM(lm.LMConfig(59, cell="lstm", hidden_size=128))
with torch.no_grad():
    model.rnn.cells[0].b[:128] = 3.0   # blocks are f, i, C~, o
plt.semilogy(lm.gradient_vs_distance(model, ids))
```"""),
    exercise("ex-04-lstm", "One LSTM step", r"""
Write `lstm_step(x, h, c, W_xh, W_hh, b)` returning `(h_t, C_t)`, one step of equation {eq}`lstm`
for a batch: `x` is $x_t$ of shape `(B, I)`, `h` and `c` are $h_{t-1}$ and $C_{t-1}$ of shape
`(B, H)`. The weights are stacked as in `neuraltext.rnn.cells`: `W_xh` `(4H, I)` multiplies the input,
`W_hh` `(4H, H)` the previous hidden state, `b` `(4H,)` is the bias, and their blocks of $H$ rows are
the gates in the chapter's order $f, i, \tilde{C}, o$ (so that
$W_f \cdot [h_{t-1}, x_t] + b_f$ is the first block of `x @ W_xh.T + h @ W_hh.T + b`). The check
compares you with `rnn.LSTMCell` loaded with the same weights (itself equal to `torch.nn.LSTMCell`
after swapping the first two blocks), including saturated gates and float64 inputs."""),
    solution_start("ex-04-lstm", "All four pre-activations in one product, then one block per gate:"),
    code('''def lstm_step(x, h, c, W_xh, W_hh, b):
    """One LSTM step, gate blocks f, i, C~, o: returns (h_t, C_t), each (B, H)."""
    ### BEGIN SOLUTION
    H = h.shape[1]
    a = x @ W_xh.T + h @ W_hh.T + b                      # (B, 4H)
    f, i, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    f, i, g, o = torch.sigmoid(f), torch.sigmoid(i), torch.tanh(g), torch.sigmoid(o)
    c_t = f * c + i * g                                  # C_t = f_t * C_{t-1} + i_t * C~_t
    return o * torch.tanh(c_t), c_t                      # h_t = o_t * tanh(C_t)
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("04.lstm_step", lstm_step)'),
    exercise("ex-04-gru", "One GRU step", r"""
Write `gru_step(x, h, W_xh, W_hh, b)` returning $h_t$, one step of equation {eq}`gru` (the course's
GRU: the reset gate multiplies $h_{t-1}$ *before* the product). Shapes as in the previous exercise
with three blocks of $H$ rows, in the order $z, r, \tilde{h}$: the candidate is
$\tanh(W_{\tilde h x}\, x_t + W_{\tilde h h}\,(r_t * h_{t-1}) + b_{\tilde h})$, with $W_{\tilde h x}$,
$W_{\tilde h h}$ and $b_{\tilde h}$ the third blocks of `W_xh`, `W_hh` and `b`. The check compares you
with `rnn.GRUCell(reset_after=False)` loaded with the same weights."""),
    solution_start("ex-04-gru", r"""
The two gates come from one product; the candidate needs $r_t$ first, so its hidden part is a second
product:"""),
    code('''def gru_step(x, h, W_xh, W_hh, b):
    """One GRU step (reset gate before the product), gate blocks z, r, h~: returns h_t (B, H)."""
    ### BEGIN SOLUTION
    H = h.shape[1]
    xw = x @ W_xh.T + b                                  # input parts of the three blocks (B, 3H)
    zr = torch.sigmoid(xw[:, :2 * H] + h @ W_hh[:2 * H].T)
    z, r = zr[:, :H], zr[:, H:]
    h_tilde = torch.tanh(xw[:, 2 * H:] + (r * h) @ W_hh[2 * H:].T)
    return (1 - z) * h + z * h_tilde                     # h_t = (1 - z_t) h_{t-1} + z_t h~_t
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("04.gru_step", gru_step)'),
    exercise("ex-04-clipping", "No clipping", r"""
Train the RNN with a learning rate of 0.03, once with `clip_norm=1.0` and once with
`clip_norm=None`. Compare the gradient norms and the held-out perplexities. Does clipping help here?"""),
    solution("ex-04-clipping", r"""
Hardly, on this data. At the default size the largest gradient norm is
{glue:text}`ex3_clipped_max_grad:.1f` with clipping and {glue:text}`ex3_unclipped_max_grad:.1f` without,
and the held-out perplexities are {glue:text}`ex3_clipped_ppl:.2f` (clipped) and
{glue:text}`ex3_unclipped_ppl:.2f` (not clipped), both worse than at learning rate 0.01: the larger
learning rate hurts both, and clipping at 1 only shortens some steps. Clipping is
insurance against the rare exploding step (the RNN with $W_{hh}$ tripled, above, is where it
matters), not a way to train faster."""),
    exercise("ex-04-words", "Words instead of characters", r"""
Train the LSTM on `WordTokenizer` ids. Why can't you compare its perplexity with the character
model's?"""),
    solution("ex-04-words", r"""
Perplexity is per *token*, and a word is several characters: the word model's perplexity is over a
vocabulary of thousands of words and predicts fewer, harder tokens. Compare bits per character
instead: the total $-\log_2$ probability of the text divided by its number of characters."""),
]

if __name__ == "__main__":
    replace_exercises(Path(__file__).resolve().parents[2] / "book" / "04_rnn.ipynb", CELLS)
