"""Diagrams of the recurrent chapters: the unrolled RNN, the LSTM and GRU cells (chapter 4), and
encoder-decoder attention (chapter 5).
"""

from __future__ import annotations

from neuraltext.diagrams.drawing import FONTSIZE, arrow, box, new_figure

__all__ = ["unrolled_rnn", "lstm_cell", "gru_cell", "encoder_decoder_attention"]


def unrolled_rnn(steps: int = 4):
    """The RNN of equation (rnn) folded (one cell with a loop) and unrolled over ``steps`` steps."""
    width = 4.2 + 2.0 * steps
    fig, ax = new_figure(width * 0.9, 3.8, (-0.2, width), (-0.4, 4.0))
    # folded
    box(ax, (0.9, 1.8), "RNN\ncell", 1.2, 0.9, "state")
    arrow(ax, (0.9, 0.5), (0.9, 1.35))
    ax.text(0.9, 0.25, r"$x_t$", ha="center", fontsize=FONTSIZE + 2)
    arrow(ax, (0.9, 2.25), (0.9, 3.1))
    ax.text(0.9, 3.35, r"$y_t$", ha="center", fontsize=FONTSIZE + 2)
    arrow(ax, (1.5, 2.05), (1.5, 1.55), rad=-1.4)
    ax.text(2.0, 1.8, r"$W_{hh}$", ha="left", va="center", fontsize=FONTSIZE - 1)
    ax.text(2.75, 1.8, "=", fontsize=FONTSIZE + 8, ha="center", va="center")
    # unrolled
    x0 = 4.4
    for t in range(steps):
        x = x0 + 2.0 * t
        label = str(t + 1) if t < steps - 1 else "T"
        box(ax, (x, 1.8), rf"$h_{{{label}}}$", 1.2, 0.9, "state", fontsize=FONTSIZE + 2)
        box(ax, (x, 0.3), rf"$x_{{{label}}}$", 0.9, 0.5, "input", fontsize=FONTSIZE + 1)
        box(ax, (x, 3.3), rf"$y_{{{label}}}$", 0.9, 0.5, "output", fontsize=FONTSIZE + 1)
        arrow(ax, (x, 0.55), (x, 1.35), text=r"$W_{xh}$", fontsize=FONTSIZE - 2)
        arrow(ax, (x, 2.25), (x, 3.05), text=r"$W_{hy}$", fontsize=FONTSIZE - 2)
        if t < steps - 1:
            arrow(ax, (x + 0.6, 1.8), (x + 1.4, 1.8), text=r"$W_{hh}$", text_offset=(-0.3, 0.22),
                  fontsize=FONTSIZE - 2)
    ax.text(x0 - 1.0, 1.8, r"$h_0$", ha="center", va="center", fontsize=FONTSIZE + 1)
    arrow(ax, (x0 - 0.8, 1.8), (x0 - 0.6, 1.8))
    ax.set_title("The RNN unrolled through time: the same weights at every step", fontsize=FONTSIZE + 1)
    return fig


def _sigma_row(ax, xs, labels, y, kind="gate"):
    for x, label in zip(xs, labels):
        box(ax, (x, y), label, 0.9, 0.75, kind)


def lstm_cell():
    """The LSTM cell of equation (lstm): forget, input and output gates, candidate, cell state."""
    fig, ax = new_figure(8.4, 4.8, (-0.8, 9.6), (-0.6, 5.0))
    ax.add_patch(__import__("matplotlib.patches", fromlist=["Rectangle"]).Rectangle(
        (0.4, 0.2), 8.0, 4.0, facecolor="none", edgecolor="gray", lw=1, ls="--"))
    # cell state line (top) and hidden state line (bottom)
    arrow(ax, (-0.6, 3.7), (9.4, 3.7))
    ax.text(-0.6, 3.95, r"$C_{t-1}$", fontsize=FONTSIZE + 1)
    ax.text(9.0, 3.95, r"$C_t$", fontsize=FONTSIZE + 1)
    arrow(ax, (-0.6, 0.7), (1.2, 0.7))
    ax.text(-0.6, 0.95, r"$h_{t-1}$", fontsize=FONTSIZE + 1)
    box(ax, (1.6, -0.25), r"$x_t$", 0.7, 0.45, "input", fontsize=FONTSIZE + 1)
    arrow(ax, (1.6, 0.0), (1.6, 0.55))
    box(ax, (1.6, 0.7), r"$[h_{t-1}, x_t]$", 1.5, 0.4, "input", fontsize=FONTSIZE - 1)
    # four gates from the concatenation
    xs = [2.4, 3.6, 4.8, 6.6]
    _sigma_row(ax, xs, [r"$\sigma$" + "\n" + r"$f_t$", r"$\sigma$" + "\n" + r"$i_t$",
                        r"$\tanh$" + "\n" + r"$\tilde C_t$", r"$\sigma$" + "\n" + r"$o_t$"], 1.8)
    arrow(ax, (2.35, 0.7), (6.6, 0.7), style="-", lw=1)     # the concatenation feeds every gate
    for x in xs:
        arrow(ax, (x, 0.7), (x, 1.42), lw=1)
    # forget: multiply on the cell line
    box(ax, (2.4, 3.7), r"$\times$", 0.5, 0.5, "op", round_=True)
    arrow(ax, (2.4, 2.18), (2.4, 3.45))
    # input * candidate, added to the cell line
    box(ax, (4.2, 2.8), r"$\times$", 0.5, 0.5, "op", round_=True)
    arrow(ax, (3.6, 2.18), (4.0, 2.62))
    arrow(ax, (4.8, 2.18), (4.4, 2.62))
    box(ax, (4.2, 3.7), "+", 0.5, 0.5, "op", round_=True)
    arrow(ax, (4.2, 3.05), (4.2, 3.45))
    # output: tanh(C_t) * o_t
    box(ax, (7.6, 2.8), r"$\tanh$", 0.8, 0.45, "op")
    arrow(ax, (7.6, 3.7), (7.6, 3.03))
    box(ax, (7.6, 1.8), r"$\times$", 0.5, 0.5, "op", round_=True)
    arrow(ax, (7.6, 2.57), (7.6, 2.05))
    arrow(ax, (7.05, 1.8), (7.35, 1.8))
    arrow(ax, (7.6, 1.55), (7.6, 0.7), style="-")
    arrow(ax, (7.6, 0.7), (9.4, 0.7))
    ax.text(9.0, 0.95, r"$h_t$", fontsize=FONTSIZE + 1)
    ax.text(4.4, 4.35, "cell state: updated by $\\times f_t$ and $+\\, i_t \\tilde C_t$ only",
            ha="center", fontsize=FONTSIZE - 1, color="dimgray")
    ax.set_title("LSTM cell", fontsize=FONTSIZE + 2)
    return fig


def gru_cell(reset_after: bool = False):
    """The GRU cell of equation (gru). ``reset_after=False`` is the course's version
    (reset gate on $h_{t-1}$ before the product); True is PyTorch's (on $W_h h_{t-1}$ after it)."""
    fig, ax = new_figure(8.4, 4.8, (-0.8, 9.6), (-0.6, 5.0))
    arrow(ax, (-0.6, 3.7), (9.4, 3.7))
    ax.text(-0.6, 3.95, r"$h_{t-1}$", fontsize=FONTSIZE + 1)
    ax.text(9.0, 3.95, r"$h_t$", fontsize=FONTSIZE + 1)
    box(ax, (1.4, -0.25), r"$x_t$", 0.7, 0.45, "input", fontsize=FONTSIZE + 1)
    arrow(ax, (0.3, 3.7), (0.3, 0.7), style="-")
    arrow(ax, (0.3, 0.7), (0.75, 0.7))
    arrow(ax, (1.4, 0.0), (1.4, 0.5))
    box(ax, (1.4, 0.7), r"$[h_{t-1}, x_t]$", 1.3, 0.4, "input", fontsize=FONTSIZE - 1)
    arrow(ax, (2.05, 0.7), (5.8, 0.7), style="-", lw=1)
    _sigma_row(ax, [2.6, 4.0], [r"$\sigma$" + "\n" + r"$r_t$", r"$\sigma$" + "\n" + r"$z_t$"], 1.8)
    for x in (2.6, 4.0):
        arrow(ax, (x, 0.7), (x, 1.42), lw=1)
    # reset gate times the previous state, then the candidate
    box(ax, (2.6, 2.9), r"$\times$", 0.5, 0.5, "op", round_=True)
    arrow(ax, (2.6, 2.18), (2.6, 2.65))
    arrow(ax, (2.6, 3.7), (2.6, 3.15))
    box(ax, (5.8, 1.8), r"$\tanh$" + "\n" + r"$\tilde h_t$", 0.9, 0.75, "gate")
    if reset_after:
        formula = r"$\tilde h_t = \tanh(W_x x_t + b + r_t \ast (W_h h_{t-1} + b_{hn}))$"
    else:
        formula = r"$\tilde h_t = \tanh(W\,[r_t \ast h_{t-1}, x_t] + b)$"
    arrow(ax, (2.85, 2.9), (5.6, 2.18), text=r"$r_t \ast h_{t-1}$", text_offset=(0.5, 0.15))
    arrow(ax, (5.8, 0.7), (5.8, 1.42), lw=1, text=r"$x_t$")
    # update gate: (1 - z) h_{t-1} + z h~
    box(ax, (5.0, 3.7), r"$\times$", 0.5, 0.5, "op", round_=True)
    ax.text(5.0, 4.1, r"$1 - z_t$", ha="center", fontsize=FONTSIZE - 1)
    arrow(ax, (4.0, 2.18), (4.85, 3.48))
    box(ax, (7.4, 2.8), r"$\times$", 0.5, 0.5, "op", round_=True)
    arrow(ax, (4.45, 2.0), (7.16, 2.74), text=r"$z_t$", text_offset=(0.6, 0.05))
    arrow(ax, (6.25, 1.8), (7.25, 2.58))
    box(ax, (7.4, 3.7), "+", 0.5, 0.5, "op", round_=True)
    arrow(ax, (7.4, 3.05), (7.4, 3.45))
    ax.text(4.4, 4.6, formula, ha="center", fontsize=FONTSIZE - 1, color="dimgray")
    variant = "PyTorch's (reset after)" if reset_after else "the course's (reset before)"
    ax.set_title(f"GRU cell, {variant}", fontsize=FONTSIZE + 2, pad=14)
    return fig


def encoder_decoder_attention(source: str = "26/11/15", target: str = "2015"):
    """Chapter 5's model at one output step t: encoder states, scores, weights, context, decoder."""
    n = len(source)
    width = max(10.0, 1.15 * n + 5.0)
    fig, ax = new_figure(width * 0.85, 5.8, (-0.5, width), (-0.6, 6.6))
    xs = [1.0 + i * 1.15 for i in range(n)]
    for i, (x, ch) in enumerate(zip(xs, source)):
        box(ax, (x, -0.1), ch, 0.6, 0.5, "input")
        box(ax, (x, 1.2), rf"$\bar h_{{{i + 1}}}$", 0.75, 0.6, "state")
        arrow(ax, (x, 0.15), (x, 0.9), lw=1)
        if i < n - 1:
            arrow(ax, (x + 0.38, 1.35), (x + 0.77, 1.35), lw=1)      # left to right
            arrow(ax, (x + 0.77, 1.05), (x + 0.38, 1.05), lw=1)      # right to left
        arrow(ax, (x, 1.5), (xs[n // 2] + 0.4, 3.1), lw=0.8, color="gray", style="-")
    ax.text(xs[0] - 0.9, 1.2, "encoder\n(bi-GRU)", ha="right", va="center", fontsize=FONTSIZE - 1)
    box(ax, (xs[n // 2] + 0.4, 3.4), r"$\alpha_{tj} = \mathrm{softmax}_j\,\mathrm{score}(h_t, \bar h_j)$",
        5.4, 0.6, "attention")
    box(ax, (xs[n // 2] + 0.4, 4.6), r"$c_t = \sum_j \alpha_{tj} \bar h_j$", 3.4, 0.6, "attention")
    arrow(ax, (xs[n // 2] + 0.4, 3.7), (xs[n // 2] + 0.4, 4.3))
    # decoder on the right
    xd = xs[-1] + 2.2
    box(ax, (xd, 3.4), r"$h_t$" + "\ndecoder\n(GRU)", 1.4, 1.1, "state")
    arrow(ax, (xd - 0.7, 3.4), (xs[n // 2] + 3.1, 3.4), text="score", text_offset=(-0.3, 0.25))
    box(ax, (xd, 5.7), r"$\tilde h_t = \tanh(W_c[c_t; h_t])$" + "\n" + r"$p(y_t) = \mathrm{softmax}(W_s \tilde h_t)$",
        3.6, 0.9, "output", fontsize=FONTSIZE - 1)
    arrow(ax, (xs[n // 2] + 2.1, 4.6), (xd - 0.9, 5.3))
    arrow(ax, (xd, 3.95), (xd, 5.25))
    box(ax, (xd, 1.6), r"$y_{t-1}$, $c_{t-1}$", 1.5, 0.5, "input")
    arrow(ax, (xd, 1.85), (xd, 2.85))
    ax.set_title("Encoder-decoder with attention, at output step t", fontsize=FONTSIZE + 2)
    return fig
