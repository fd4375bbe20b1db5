"""Architecture diagrams of the course, drawn with Matplotlib from code.

Every function returns a ``matplotlib.figure.Figure``; a notebook shows it with ``plt.show()`` or
saves it with ``fig.savefig(path)``. The symbols are the chapters' (``h_t``, ``C_t``, ``\\bar h_j``,
``alpha_tj`` ...), so a change of notation is one edit here.

    from neuraltext import diagrams
    diagrams.unrolled_rnn()              # chapter 4, equation (rnn)
    diagrams.lstm_cell()                 # chapter 4, equation (lstm)
    diagrams.gru_cell()                  # chapter 4, equation (gru), reset gate before the product
    diagrams.encoder_decoder_attention() # chapter 5, equations (s2s-alpha), (s2s-context)
    diagrams.transformer_block()         # chapter 6, pre-norm or post-norm encoder block
    diagrams.bert_inputs()               # chapter 7, token + segment + position embeddings
    diagrams.decoder_only_blocks()       # chapter 8, GPT-2 beside the Llama variant
    diagrams.kv_cache()                  # chapter 8, one generation step with a KV cache
    diagrams.rlhf_steps()                # chapter 9, SFT -> reward model -> PPO, and DPO
    diagrams.ddp_diagram()               # appendix A, data-parallel training with torchrun

The drawing helpers (`box`, `arrow`, `new_figure`) are public so that later chapters can add their
own diagrams (BERT inputs, decoder-only block, RLHF steps) in the same style.
"""

from __future__ import annotations

__all__ = ["new_figure", "box", "arrow", "unrolled_rnn", "lstm_cell", "gru_cell",
           "encoder_decoder_attention", "transformer_block", "bert_inputs", "decoder_only_blocks", "kv_cache", "rlhf_steps",
           "ddp_diagram"]

# one palette for the whole book: inputs, states, gates/operations, attention, outputs
COLORS = {"input": "#dbe9f6", "state": "#fde7c8", "gate": "#d9f0d3", "op": "#f2f2f2",
          "attention": "#f6d5e5", "output": "#e5dcf2", "norm": "#fff5b8"}
FONTSIZE = 11


def new_figure(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]):
    """A figure with one axis-free drawing area in data coordinates ``xlim`` x ``ylim``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def box(ax, center: tuple[float, float], text: str, width: float = 1.4, height: float = 0.6,
        kind: str = "op", fontsize: float = FONTSIZE, round_: bool = False):
    """A labelled box (``kind`` picks the colour from `COLORS`); returns its (x, y, w, h)."""
    from matplotlib.patches import Circle, FancyBboxPatch

    x, y = center
    if round_:
        ax.add_patch(Circle((x, y), height / 2, facecolor=COLORS[kind], edgecolor="black", lw=1.2))
    else:
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                    boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor=COLORS[kind], edgecolor="black", lw=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return (x, y, width, height)


def arrow(ax, start: tuple[float, float], end: tuple[float, float], text: str | None = None,
          color: str = "black", style: str = "-|>", rad: float = 0.0, fontsize: float = FONTSIZE - 1,
          text_offset: tuple[float, float] = (0.08, 0.0), lw: float = 1.3):
    """An arrow from ``start`` to ``end`` (data coordinates), optionally labelled at its middle."""
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=14, color=color, lw=lw,
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0))
    if text:
        mx, my = (start[0] + end[0]) / 2 + text_offset[0], (start[1] + end[1]) / 2 + text_offset[1]
        ax.text(mx, my, text, fontsize=fontsize, ha="left", va="center", color=color)


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


def transformer_block(norm_first: bool = True, decoder: bool = False):
    """An encoder block (or a decoder block with ``decoder=True``): attention and feed-forward
    sublayers, each with a residual connection and a layer norm, pre-norm or post-norm."""
    layers = [("Multi-head\nself-attention" + ("\n(causal)" if decoder else ""), "attention")]
    if decoder:
        layers.append(("Multi-head cross-attention\n(keys, values: encoder)", "attention"))
    layers.append((r"Feed-forward" + "\n" + r"$W_2\,\mathrm{act}(W_1 x + b_1) + b_2$", "gate"))
    height = 1.2 + 2.4 * len(layers)
    fig, ax = new_figure(5.6, height * 0.9, (-0.5, 6.0), (-0.4, height + 0.6))
    y = 0.0
    ax.text(2.5, y - 0.2, "x  (B, T, d_model)", ha="center", fontsize=FONTSIZE)
    y += 0.2
    for name, kind in layers:
        y_in = y
        if norm_first:
            box(ax, (2.5, y + 0.55), "LayerNorm", 1.8, 0.45, "norm")
            arrow(ax, (2.5, y), (2.5, y + 0.32))
            box(ax, (2.5, y + 1.35), name, 3.0, 0.85, kind, fontsize=FONTSIZE - 1)
            arrow(ax, (2.5, y + 0.78), (2.5, y + 0.92))
            box(ax, (2.5, y + 2.15), "+", 0.45, 0.45, "op", round_=True)
            arrow(ax, (2.5, y + 1.78), (2.5, y + 1.93))
            y_out = y + 2.37
        else:
            box(ax, (2.5, y + 0.75), name, 3.0, 0.85, kind, fontsize=FONTSIZE - 1)
            arrow(ax, (2.5, y), (2.5, y + 0.32))
            box(ax, (2.5, y + 1.5), "+", 0.45, 0.45, "op", round_=True)
            arrow(ax, (2.5, y + 1.18), (2.5, y + 1.28))
            box(ax, (2.5, y + 2.1), "LayerNorm", 1.8, 0.45, "norm")
            arrow(ax, (2.5, y + 1.72), (2.5, y + 1.88))
            y_out = y + 2.33
        # residual connection: around the sublayer, into the +
        plus_y = y + (2.15 if norm_first else 1.5)
        arrow(ax, (2.5, y_in + 0.1), (4.3, y_in + 0.1), style="-", color="tab:blue")
        arrow(ax, (4.3, y_in + 0.1), (4.3, plus_y), style="-", color="tab:blue")
        arrow(ax, (4.3, plus_y), (2.73, plus_y), color="tab:blue")
        ax.text(4.4, (y_in + plus_y) / 2, "residual", fontsize=FONTSIZE - 2, color="tab:blue",
                rotation=90, va="center")
        y = y_out
    arrow(ax, (2.5, y), (2.5, y + 0.4))
    ax.text(2.5, y + 0.5, "output  (B, T, d_model)", ha="center", fontsize=FONTSIZE)
    kind = "decoder" if decoder else "encoder"
    placement = "pre-norm" if norm_first else "post-norm"
    ax.set_title(f"Transformer {kind} block ({placement})", fontsize=FONTSIZE + 2)
    return fig


def bert_inputs(tokens_a: tuple[str, ...] = ("le", "loup", "nage"), tokens_b: tuple[str, ...] = ("il", "a", "faim")):
    """Chapter 7: BERT's input x_0 = LayerNorm(E_tok + E_seg + E_pos) for a sentence pair (A, B)."""
    tokens = ["[CLS]", *tokens_a, "[SEP]", *tokens_b, "[SEP]"]
    segments = ["A"] * (len(tokens_a) + 2) + ["B"] * (len(tokens_b) + 1)
    n, step = len(tokens), 1.25
    fig, ax = new_figure(1.05 * (n * step + 2.4), 5.0, (-2.3, n * step), (-0.3, 5.2))
    for y, label in ((4.4, "input"), (3.4, "token"), (2.3, "segment"), (1.2, "position"), (0.15, "LayerNorm")):
        ax.text(-2.2, y, label, ha="left", va="center", fontsize=FONTSIZE)
    for i, (tok, seg) in enumerate(zip(tokens, segments)):
        x = i * step + 0.4
        box(ax, (x, 4.4), tok, 1.1, 0.5, "op", fontsize=FONTSIZE - 1)
        box(ax, (x, 3.4), rf"$E_{{\mathrm{{{tok.strip('[]')}}}}}$", 1.1, 0.55, "input", fontsize=FONTSIZE - 1)
        ax.text(x, 2.85, "+", ha="center", va="center", fontsize=FONTSIZE + 2)
        box(ax, (x, 2.3), rf"$E_{seg}$", 1.1, 0.55, "gate", fontsize=FONTSIZE)
        ax.text(x, 1.75, "+", ha="center", va="center", fontsize=FONTSIZE + 2)
        box(ax, (x, 1.2), rf"$E_{{{i}}}$", 1.1, 0.55, "state", fontsize=FONTSIZE)
        arrow(ax, (x, 0.9), (x, 0.45))
        box(ax, (x, 0.15), rf"$x_{{0,{i}}}$", 1.0, 0.5, "norm", fontsize=FONTSIZE - 1)
    ax.set_title("BERT input: token + segment + position embeddings, then a layer norm", fontsize=FONTSIZE + 1)
    return fig


# ------------------------------------------------------------------ chapter 8: decoder-only models
def _decoder_column(ax, x: float, rows: list[tuple[str, str, bool]], title: str) -> None:
    """One column of boxes, bottom to top: embedding, (norm, attention), (norm, feed-forward), output.
    ``rows`` = (text, kind, changed); a changed box gets a thick red edge; the two residual
    connections wrap rows 1-2 and 3-4."""
    from matplotlib.patches import FancyBboxPatch

    w, h = 4.6, 0.8
    ys = [0.4 + 1.15 * i for i in range(len(rows))]
    for i, ((text, kind, changed), y) in enumerate(zip(rows, ys)):
        box(ax, (x, y), text, w, h, kind, fontsize=FONTSIZE - 1.5)
        if changed:
            ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                        facecolor="none", edgecolor="tab:red", lw=2.6))
        if i:
            arrow(ax, (x, ys[i - 1] + h / 2), (x, y - h / 2))
    for lo, hi in ((1, 2), (3, 4)):  # x = x + Sublayer(Norm(x))
        y0, y1 = (ys[lo - 1] + ys[lo]) / 2, (ys[hi] + ys[hi + 1]) / 2
        xr = x + w / 2 + 0.35
        arrow(ax, (x, y0), (xr, y0), style="-", color="tab:blue")
        arrow(ax, (xr, y0), (xr, y1), style="-", color="tab:blue")
        arrow(ax, (xr, y1), (x + 0.18, y1), color="tab:blue")
        box(ax, (x, y1), "+", 0.3, 0.3, "op", fontsize=FONTSIZE - 1, round_=True)
    top, bottom = (ys[4] + ys[5]) / 2 + 0.25, (ys[0] + ys[1]) / 2 - 0.12
    ax.add_patch(FancyBboxPatch((x - w / 2 - 0.2, bottom), w + 0.85, top - bottom, boxstyle="round,pad=0.02",
                                facecolor="none", edgecolor="grey", lw=1.0, ls="--"))
    ax.text(x - w / 2 - 0.3, (top + bottom) / 2, "x L blocks", rotation=90, ha="right", va="center",
            fontsize=FONTSIZE - 1, color="grey")
    ax.text(x, ys[-1] + 0.65, title, ha="center", fontsize=FONTSIZE, weight="bold")


def decoder_only_blocks():
    """The 2017-style decoder-only model (GPT-2) beside a Llama-family model, bottom to top; the four
    changes of the Llama variant (RMSNorm, RoPE, SwiGLU, GQA) are outlined in red."""
    gpt = [("token embedding $W_{te}$\n+ position embedding $W_{pe}$", "input", False),
           ("LayerNorm", "norm", False),
           ("causal multi-head attention\n($h$ heads for q, k and v)", "attention", False),
           ("LayerNorm", "norm", False),
           ("feed-forward:\n$W_2\\,\\mathrm{GELU}(W_1 x + b_1) + b_2$", "gate", False),
           ("LayerNorm, then logits $D E_t$\n(tied: $D = W_{te}$)", "output", False)]
    llama = [("token embedding only\n(no position vector)", "input", True),
             ("RMSNorm (no mean, no bias)", "norm", True),
             ("causal grouped-query attention + RoPE\n($h$ query heads, $g < h$ k/v heads)",
              "attention", True),
             ("RMSNorm", "norm", True),
             ("SwiGLU:\n$W_{down}\\,(\\mathrm{SiLU}(W_{gate} x) \\odot W_{up} x)$", "gate", True),
             ("RMSNorm, then logits $D E_t$", "output", True)]
    fig, ax = new_figure(11.0, 6.2, (-1.2, 13.4), (-0.3, 7.6))
    _decoder_column(ax, 2.0, gpt, "GPT-2 (2017 block, pre-norm)")
    _decoder_column(ax, 9.6, llama, "Llama family (SmolLM2)")
    ax.set_title("Decoder-only models, bottom to top (red: what the Llama variant changes)", fontsize=FONTSIZE + 1)
    return fig


def kv_cache(n_cached: int = 5):
    """One generation step with a KV cache: the keys and values of the earlier tokens are read from
    the cache; only the new token's q, k and v are computed, and its query scores every key."""
    from matplotlib.patches import Rectangle

    xs = [0.6 + 1.1 * i for i in range(n_cached + 1)]
    fig, ax = new_figure(8.0, 4.0, (-1.8, xs[-1] + 1.2), (-0.5, 4.0))
    for y, name in ((0.0, "tokens"), (1.1, "query"), (2.1, "keys"), (3.0, "values")):
        ax.text(-1.7, y, name, va="center", fontsize=FONTSIZE)
    for i, x in enumerate(xs):
        new = i == n_cached
        label = "t" if new else f"{i + 1}"
        box(ax, (x, 0.0), rf"$w_{{{label}}}$", 0.8, 0.5, "input")
        box(ax, (x, 2.1), rf"$k_{{{label}}}$", 0.8, 0.55, "attention" if new else "op")
        box(ax, (x, 3.0), rf"$v_{{{label}}}$", 0.8, 0.55, "attention" if new else "op")
    xn = xs[-1]
    box(ax, (xn, 1.1), r"$q_t$", 0.8, 0.55, "attention")
    arrow(ax, (xn, 0.25), (xn, 0.82))
    for x in xs:  # q_t scores every key, its own included
        arrow(ax, (xn - 0.2, 1.38), (x, 1.82), color="tab:purple", lw=0.9)
    ax.add_patch(Rectangle((xs[0] - 0.5, 1.75), xs[-2] - xs[0] + 1.0, 1.62, facecolor="none",
                           edgecolor="grey", ls="--", lw=1.2))
    ax.text((xs[0] + xs[-2]) / 2, 3.55, "the cache: computed at earlier steps, read back", ha="center",
            fontsize=FONTSIZE - 1, color="grey")
    ax.text(xn, 3.55, "new", ha="center", fontsize=FONTSIZE - 1, color="tab:purple")
    ax.set_title("Generating with a KV cache: one token's q, k, v per step", fontsize=FONTSIZE + 1)
    return fig


def rlhf_steps():
    """RLHF's three steps (Ouyang et al. 2022), left to right: supervised fine-tuning on
    demonstrations, a reward model fitted to pairwise preferences, PPO against the reward model with
    a KL penalty to the frozen SFT model. DPO replaces steps 2 and 3 by one loss on the pairs."""
    fig, ax = new_figure(12.0, 4.6, (-0.4, 14.4), (-2.0, 3.6))
    cols = [(2.0, "1. SFT", [("demonstrations $(x, y)$", "input"), ("pre-trained LM", "state"),
                             ("$-\\log \\pi(y \\mid x)$ on $y$ only", "op"), ("SFT model $\\pi_{ref}$", "output")]),
            (7.0, "2. reward model", [("pairs $(x, y_w, y_l)$", "input"), ("SFT model + scalar head", "state"),
                                      ("$-\\log \\sigma(r_w - r_l)$", "op"), ("reward model $r_\\phi$", "output")]),
            (12.0, "3. PPO", [("prompts $x$, samples $y \\sim \\pi_\\theta$", "input"),
                              ("policy $\\pi_\\theta$ (from SFT)", "state"),
                              ("$r_\\phi - \\beta\\,\\mathrm{KL}(\\pi_\\theta \\| \\pi_{ref})$,\nclipped objective", "op"),
                              ("aligned policy", "output")])]
    for x, title, rows in cols:
        ax.text(x, 3.3, title, ha="center", fontsize=FONTSIZE + 1, weight="bold")
        for i, (text, kind) in enumerate(rows):
            y = 2.5 - 1.05 * i
            box(ax, (x, y), text, 3.6, 0.7, kind, fontsize=FONTSIZE - 1)
            if i:
                arrow(ax, (x, y + 0.7), (x, y + 0.35))
    arrow(ax, (3.8, -0.65), (5.2, -0.65), None, color="tab:blue")
    arrow(ax, (8.8, -0.65), (10.2, 0.4), None, color="tab:green")
    ax.text(9.1, -0.95, "scores", color="tab:green", fontsize=FONTSIZE - 1)
    ax.text(2.0, -1.3, "$\\pi_{ref}$ stays frozen: the KL anchor of step 3", ha="center", color="tab:blue",
            fontsize=FONTSIZE - 1)
    ax.text(7.0, -1.85, "DPO: steps 2 and 3 in one loss on the pairs (no reward model, no sampling)",
            ha="center", color="tab:red", fontsize=FONTSIZE - 1)
    return fig


def ddp_diagram(n_processes: int = 2):
    """Data-parallel training (``DistributedDataParallel`` under ``torchrun``): each process holds a
    full copy of the model and its own shard of every global batch; after the backward pass the
    gradients are averaged over the processes (all-reduce), so every copy takes the same step."""
    width = 4.2
    xs = [2.1 + width * p for p in range(n_processes)]
    fig, ax = new_figure(1.6 + 4.2 * n_processes, 6.0, (-0.2, xs[-1] + 2.3), (-1.0, 6.3))
    box(ax, ((xs[0] + xs[-1]) / 2, 5.7), "global batch of $P \\cdot B$ examples (DistributedSampler)",
        width * n_processes - 0.4, 0.55, "input")
    for p, x in enumerate(xs):
        arrow(ax, (x, 5.4), (x, 4.95), f"shard {p}", text_offset=(0.1, 0.0))
        box(ax, (x, 4.3), f"process {p}: model copy $\\theta$\nforward on $B$ examples", 3.4, 0.8, "state")
        arrow(ax, (x, 3.88), (x, 3.35))
        box(ax, (x, 3.05), f"backward: $g_{p}$", 3.4, 0.55, "gate")
        arrow(ax, (x, 2.76), (x, 1.95))
        box(ax, (x, 0.0), "optimiser step\n$\\theta \\leftarrow \\theta - \\eta\\, g$", 3.4, 0.8, "output")
    box(ax, ((xs[0] + xs[-1]) / 2, 1.55), "all-reduce: $g = \\frac{1}{P} \\sum_p g_p$  (gloo on CPUs, nccl on GPUs)",
        width * n_processes - 0.4, 0.7, "attention")
    for x in xs:
        arrow(ax, (x, 1.2), (x, 0.42))
    ax.text((xs[0] + xs[-1]) / 2, -0.75, "identical steps keep the copies identical; rank 0 logs and saves",
            ha="center", fontsize=FONTSIZE - 1, color="tab:blue")
    ax.set_title(f"Data-parallel training on {n_processes} processes (torchrun + DistributedDataParallel)",
                 fontsize=FONTSIZE + 1)
    return fig
